//! Idempotency keys: a key reaches the provider once, concurrent calls with one key make one
//! payment, a key carries one request only, and a call cut short after the provider answered
//! is finished without charging twice.

use std::sync::Arc;

use api::payment::AuthorizePaymentRequest;
use payment_service::domain::Authorization;
use rpc::ErrorCode;

use crate::helpers::{APPROVED, DECLINED, TestApp, expect_error, new_id, usd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_answers_the_same_payment_and_reaches_the_provider_once() {
    let app = TestApp::spawn().await;
    let (user, method) = app.user_with_card(APPROVED).await;
    let request = AuthorizePaymentRequest {
        idempotency_key: new_id(),
        order_id: new_id(),
        user_id: user.clone(),
        payment_method_id: method.clone(),
        amount: usd(700),
    };
    let first = app.authorize_request(&request).await.unwrap();
    let again = app.authorize_request(&request).await.unwrap();
    assert_eq!(again, first, "a retry answers what the first call answered");

    let capture_key = new_id();
    let captured = app.capture(&capture_key, &first.id, None).await.unwrap();
    let recaptured = app.capture(&capture_key, &first.id, None).await.unwrap();
    assert_eq!(recaptured, captured);

    let shown = app.get(&first.id).await;
    let operations: Vec<&str> = shown.ledger.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        operations,
        ["authorize", "capture"],
        "one provider call per key"
    );
    assert_eq!(shown.ledger[0].idempotency_key, request.idempotency_key);
    assert_eq!(shown.ledger[1].idempotency_key, capture_key);
    assert_eq!(app.provider_calls_with(&request.idempotency_key).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);

    // A decline is an answer too: its key gives it again without asking the provider.
    let (user, method) = app.user_with_card(DECLINED).await;
    let key = new_id();
    let declined = app.authorize(&key, &user, &method, 300).await.unwrap();
    let order_id = declined.order_id.clone();
    let repeated = app
        .authorize_request(&AuthorizePaymentRequest {
            idempotency_key: key.clone(),
            order_id,
            user_id: user,
            payment_method_id: method,
            amount: usd(300),
        })
        .await
        .unwrap();
    assert_eq!(repeated, declined);
    assert_eq!(app.ledger_with(&key).await.len(), 1);

    assert_eq!(app.events_for(&first.id, 2).await.len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        app.events_for(&first.id, 2).await,
        ["payment.authorized", "payment.captured"],
        "the repeats published nothing"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_authorisations_with_one_key_make_one_payment() {
    // The provider takes a while, so the ten calls overlap.
    let app =
        Arc::new(TestApp::spawn_with(|config| config.simulated_provider_latency_ms = 300).await);
    let (user, method) = app.user_with_card(APPROVED).await;
    let request = AuthorizePaymentRequest {
        idempotency_key: new_id(),
        order_id: new_id(),
        user_id: user,
        payment_method_id: method,
        amount: usd(4200),
    };
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (app, request) = (app.clone(), request.clone());
            tokio::spawn(async move { app.authorize_request(&request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().expect("every caller gets the payment"));
    }
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:#?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM payment_ledger").await, 1);
    assert_eq!(app.provider_calls_with(&request.idempotency_key).await, 1);
    assert_eq!(app.get(&answers[0].id).await.ledger.len(), 1);
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_used_for_a_different_request_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (user, method) = app.user_with_card(APPROVED).await;
    let (_, other_method) = app.user_with_card(APPROVED).await;
    let request = AuthorizePaymentRequest {
        idempotency_key: new_id(),
        order_id: new_id(),
        user_id: user.clone(),
        payment_method_id: method.clone(),
        amount: usd(1000),
    };
    let first = app.authorize_request(&request).await.unwrap();
    let different = [
        AuthorizePaymentRequest {
            amount: usd(1001),
            ..request.clone()
        },
        AuthorizePaymentRequest {
            order_id: new_id(),
            ..request.clone()
        },
        AuthorizePaymentRequest {
            payment_method_id: other_method,
            ..request.clone()
        },
    ];
    for changed in different {
        let error = expect_error(app.authorize_request(&changed).await, ErrorCode::Conflict);
        assert!(
            error.message().contains("was used for a different request"),
            "{error}"
        );
        assert!(
            error.message().contains(&request.idempotency_key),
            "{error}"
        );
    }
    // The authorisation's key is not a capture's.
    expect_error(
        app.capture(&request.idempotency_key, &first.id, None).await,
        ErrorCode::Conflict,
    );
    let capture_key = new_id();
    app.capture(&capture_key, &first.id, usd(600))
        .await
        .unwrap();
    expect_error(
        app.capture(&capture_key, &first.id, usd(500)).await,
        ErrorCode::Conflict,
    );
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(app.get(&first.id).await.ledger.len(), 2);
    assert_eq!(app.get(&first.id).await.captured, usd(600));
    app.stop().await;
}

/// The service stopped after the provider authorised and before its commit: the key is left
/// `in_progress` and the provider remembers its answer. The retry finishes the payment with
/// the provider's first authorisation, and the provider is not charged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_short_after_the_provider_answered_is_finished_without_a_second_charge() {
    let app = TestApp::spawn().await;
    let (user, method) = app.user_with_card(APPROVED).await;
    let request = AuthorizePaymentRequest {
        idempotency_key: new_id(),
        order_id: new_id(),
        user_id: user,
        payment_method_id: method,
        amount: usd(2500),
    };
    let fingerprint = Authorization::parse(&request).unwrap().fingerprint();
    let payment_id = new_id();
    sqlx::query(
        "INSERT INTO idempotency_keys \
             (idempotency_key, operation, request_fingerprint, payment_id, state) \
         VALUES ($1, 'authorize', $2, $3::uuid, 'in_progress')",
    )
    .bind(&request.idempotency_key)
    .bind(&fingerprint)
    .bind(&payment_id)
    .execute(app.db())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO simulated_provider_operations \
             (idempotency_key, operation, currency, amount_minor_units, outcome, reference) \
         VALUES ($1, 'authorize', 'USD', 2500, 'succeeded', 'sim_ch_before_the_crash')",
    )
    .bind(&request.idempotency_key)
    .execute(app.db())
    .await
    .unwrap();

    let payment = app.authorize_request(&request).await.unwrap();
    assert_eq!(payment.id, payment_id, "the id the first attempt chose");
    assert_eq!(payment.status, "authorized");
    assert_eq!(payment.provider_reference, "sim_ch_before_the_crash");
    assert_eq!(app.provider_calls_with(&request.idempotency_key).await, 1);
    assert_eq!(app.authorize_request(&request).await.unwrap(), payment);
    app.stop().await;
}
