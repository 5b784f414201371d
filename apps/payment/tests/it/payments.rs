//! Payments through their states: every test card's outcome, capture and refunds, voids, the
//! transitions the state machine refuses, ownership of payment methods, and the events.

use api::payment::events::{PAYMENT_AUTHORIZED, PAYMENT_FAILED, PAYMENT_REFUNDED};
use api::payment::{AuthorizePaymentRequest, PaymentFailed, PaymentRefunded};
use rpc::ErrorCode;

use crate::helpers::{
    APPROVED, DECLINED, INSUFFICIENT_FUNDS, PROCESSING_ERROR, TestApp, bad_fields, expect_error,
    money, new_id, usd,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_test_card_authorises_as_its_behaviour_says() {
    let app = TestApp::spawn().await;

    let (user, method) = app.user_with_card(APPROVED).await;
    let order = new_id();
    let approved = app
        .authorize_request(&AuthorizePaymentRequest {
            idempotency_key: new_id(),
            order_id: order.clone(),
            user_id: user.clone(),
            payment_method_id: method.clone(),
            amount: usd(1250),
        })
        .await
        .unwrap();
    assert_eq!(approved.status, "authorized");
    assert_eq!(
        (approved.order_id.as_str(), approved.user_id.as_str()),
        (order.as_str(), user.as_str())
    );
    assert_eq!(approved.payment_method_id, method);
    assert_eq!(
        (approved.brand.as_str(), approved.last4.as_str()),
        ("visa", "4242")
    );
    assert_eq!(approved.amount, usd(1250));
    assert_eq!(approved.captured, usd(0));
    assert_eq!(approved.refunded, usd(0));
    assert_eq!(approved.failure_code, "");
    assert!(
        approved.provider_reference.starts_with("sim_ch_"),
        "{}",
        approved.provider_reference
    );
    assert!(uuid::Uuid::try_parse(&approved.id).is_ok());

    for (number, code) in [
        (DECLINED, "card_declined"),
        (INSUFFICIENT_FUNDS, "insufficient_funds"),
    ] {
        let (user, method) = app.user_with_card(number).await;
        let failed = app
            .authorize(&new_id(), &user, &method, 1250)
            .await
            .unwrap();
        assert_eq!(
            failed.status, "failed",
            "a decline is an answer, not an error"
        );
        assert_eq!(failed.failure_code, code);
        assert!(!failed.failure_message.is_empty());
        assert_eq!(failed.captured, usd(0));
    }

    let (user, method) = app.user_with_card(PROCESSING_ERROR).await;
    let error = expect_error(
        app.authorize(&new_id(), &user, &method, 1250).await,
        ErrorCode::Unavailable,
    );
    assert!(error.message().contains("processing"), "{error}");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_error_captures_nothing_and_its_key_may_be_tried_again() {
    let app = TestApp::spawn().await;
    let (user, method) = app.user_with_card(PROCESSING_ERROR).await;
    let key = new_id();
    let request = AuthorizePaymentRequest {
        idempotency_key: key.clone(),
        order_id: new_id(),
        user_id: user,
        payment_method_id: method,
        amount: usd(999),
    };
    for _ in 0..2 {
        expect_error(
            app.authorize_request(&request).await,
            ErrorCode::Unavailable,
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(
        app.ledger_with(&key).await,
        [
            ("authorize".to_owned(), "error".to_owned()),
            ("authorize".to_owned(), "error".to_owned())
        ],
        "each try reached the provider and is on record"
    );
    assert_eq!(
        app.provider_calls_with(&key).await,
        0,
        "the provider keeps no result for an error"
    );
    let state: String =
        sqlx::query_scalar("SELECT state FROM idempotency_keys WHERE idempotency_key = $1")
            .bind(&key)
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(state, "in_progress", "the key has no result");
    assert_eq!(app.count("SELECT count(*) FROM events_outbox").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorise_capture_part_refund_part_then_the_rest() {
    let app = TestApp::spawn().await;
    let payment = app.authorized(1000).await;

    let captured = app.capture(&new_id(), &payment.id, usd(800)).await.unwrap();
    assert_eq!(captured.status, "captured");
    assert_eq!(
        captured.captured,
        usd(800),
        "a capture of less than was held"
    );
    assert_eq!(captured.amount, usd(1000));

    let partly = app.refund(&new_id(), &payment.id, usd(300)).await.unwrap();
    assert_eq!(partly.status, "partially_refunded");
    assert_eq!(partly.refunded, usd(300));

    let error = expect_error(
        app.refund(&new_id(), &payment.id, usd(501)).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("only 5.00 USD"), "{error}");

    let rest = app.refund(&new_id(), &payment.id, None).await.unwrap();
    assert_eq!(rest.status, "refunded");
    assert_eq!(
        rest.refunded,
        usd(800),
        "no amount refunds all that is left"
    );

    let error = expect_error(
        app.refund(&new_id(), &payment.id, usd(1)).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("is refunded"), "{error}");

    let shown = app.get(&payment.id).await;
    assert_eq!(shown.status, "refunded");
    let ledger: Vec<(&str, &str, i64)> = shown
        .ledger
        .iter()
        .map(|entry| {
            (
                entry.operation.as_str(),
                entry.outcome.as_str(),
                entry.amount.as_ref().unwrap().minor_units,
            )
        })
        .collect();
    assert_eq!(
        ledger,
        [
            ("authorize", "succeeded", 1000),
            ("capture", "succeeded", 800),
            ("refund", "succeeded", 300),
            ("refund", "succeeded", 500),
        ],
        "refusals never reached the provider"
    );
    assert!(
        shown
            .ledger
            .iter()
            .all(|e| e.provider_reference.starts_with("sim_"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_lifts_the_hold_and_changes_nothing_after_one() {
    let app = TestApp::spawn().await;
    let payment = app.authorized(400).await;
    let voided = app.void(&new_id(), &payment.id).await.unwrap();
    assert_eq!(voided.status, "voided");
    assert_eq!(voided.captured, usd(0));

    let again = app.void(&new_id(), &payment.id).await.unwrap();
    assert_eq!(
        again.status, "voided",
        "voiding a voided payment changes nothing"
    );

    let error = expect_error(
        app.capture(&new_id(), &payment.id, None).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(
        error.message(),
        format!(
            "payment {} is voided; only an authorized payment can be captured",
            payment.id
        )
    );

    let (user, method) = app.user_with_card(DECLINED).await;
    let failed = app.authorize(&new_id(), &user, &method, 400).await.unwrap();
    let unchanged = app.void(&new_id(), &failed.id).await.unwrap();
    assert_eq!(unchanged.status, "failed");

    let operations: Vec<String> = app
        .get(&payment.id)
        .await
        .ledger
        .into_iter()
        .map(|entry| entry.operation)
        .collect();
    assert_eq!(
        operations,
        ["authorize", "void"],
        "one provider call per change"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transitions_amounts_and_currencies_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let payment = app.authorized(1000).await;

    let error = expect_error(
        app.refund(&new_id(), &payment.id, None).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("is authorized"), "{error}");
    let error = expect_error(
        app.capture(&new_id(), &payment.id, usd(1001)).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("authorized"), "{error}");
    let error = expect_error(
        app.capture(&new_id(), &payment.id, money(500, "EUR")).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["amount.currency"]);
    let error = expect_error(
        app.capture(&new_id(), &payment.id, usd(0)).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["amount.minor_units"]);
    expect_error(
        app.capture(&new_id(), &new_id(), None).await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.capture(&new_id(), "not-a-uuid", None).await,
        ErrorCode::InvalidArgument,
    );

    // A refused request leaves its key free: it may carry the next, different request.
    let key = new_id();
    expect_error(
        app.refund(&key, &payment.id, None).await,
        ErrorCode::FailedPrecondition,
    );
    let captured = app.capture(&key, &payment.id, None).await.unwrap();
    assert_eq!(captured.captured, usd(1000));

    let error = expect_error(
        app.void(&new_id(), &payment.id).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("is captured"), "{error}");
    let error = expect_error(
        app.capture(&new_id(), &payment.id, None).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("is captured"), "{error}");

    let shown = app.get(&payment.id).await;
    assert_eq!(shown.status, "captured");
    assert_eq!(shown.ledger.len(), 2, "authorize and capture only");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_payment_method_answers_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let (_owner, method) = app.user_with_card(APPROVED).await;
    let stranger = new_id();
    let theirs = expect_error(
        app.authorize(&new_id(), &stranger, &method, 100).await,
        ErrorCode::NotFound,
    );
    let missing = expect_error(
        app.authorize(&new_id(), &stranger, "pm_nothing", 100).await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        theirs.message().replace(&method, "<id>"),
        missing.message().replace("pm_nothing", "<id>")
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM payment_ledger").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM simulated_provider_operations")
            .await,
        0,
        "the provider was never asked"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_published_in_order() {
    let app = TestApp::spawn().await;
    let payment = app.authorized(1000).await;
    app.capture(&new_id(), &payment.id, None).await.unwrap();
    app.refund(&new_id(), &payment.id, usd(300)).await.unwrap();
    app.refund(&new_id(), &payment.id, None).await.unwrap();
    assert_eq!(
        app.events_for(&payment.id, 4).await,
        [
            "payment.authorized",
            "payment.captured",
            "payment.refunded",
            "payment.refunded"
        ]
    );
    let refunds: Vec<(i64, i64)> = app
        .published(&PAYMENT_REFUNDED, 2)
        .await
        .iter()
        .map(|message| {
            assert_eq!(
                message.subject.as_str(),
                events::names::subject(&PAYMENT_REFUNDED, &payment.id).unwrap()
            );
            let event: PaymentRefunded = serde_json::from_slice(&message.payload).unwrap();
            let payment = event.payment.unwrap();
            (
                event.amount.unwrap().minor_units,
                payment.refunded.unwrap().minor_units,
            )
        })
        .collect();
    assert_eq!(
        refunds,
        [(300, 300), (700, 1000)],
        "each refund's own amount"
    );

    let voided = app.authorized(200).await;
    app.void(&new_id(), &voided.id).await.unwrap();
    assert_eq!(
        app.events_for(&voided.id, 2).await,
        ["payment.authorized", "payment.voided"]
    );

    let (user, method) = app.user_with_card(INSUFFICIENT_FUNDS).await;
    let failed = app.authorize(&new_id(), &user, &method, 200).await.unwrap();
    assert_eq!(app.events_for(&failed.id, 1).await, ["payment.failed"]);
    let message = &app.published(&PAYMENT_FAILED, 1).await[0];
    let event: PaymentFailed = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event.payment.unwrap().failure_code, "insufficient_funds");

    // Well past the relay's poll interval: nothing else was published.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.events_of(&PAYMENT_AUTHORIZED).await.len(), 2);
    app.stop().await;
}
