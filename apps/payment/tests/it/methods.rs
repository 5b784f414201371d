//! Payment methods: test cards become methods of their owner, bad cards are refused naming
//! the field, and no card number or CVC is kept anywhere.

use api::payment::CreatePaymentMethodRequest;
use chrono::Datelike;
use rpc::ErrorCode;

use crate::helpers::{
    APPROVED, DECLINED, INSUFFICIENT_FUNDS, PROCESSING_ERROR, TestApp, anonymous, bad_fields, card,
    customer, expect_error, new_id,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_cards_become_payment_methods_of_the_caller_with_brand_and_last_four() {
    let app = TestApp::spawn().await;
    let user = new_id();
    for (number, last4) in [
        ("4242 4242 4242 4242", "4242"),
        (DECLINED, "0002"),
        (INSUFFICIENT_FUNDS, "9995"),
        ("4000-0000-0000-0119", "0119"),
    ] {
        let method = app.add_card(&user, number).await;
        assert!(method.id.starts_with("pm_"), "{}", method.id);
        assert_eq!(method.user_id, user, "the owner is the caller");
        assert_eq!(method.brand, "visa");
        assert_eq!(method.last4, last4);
        assert_eq!(method.exp_month, 12);
        assert!(method.created_at.is_some());
    }
    let stored = app
        .count(&format!(
            "SELECT count(*) FROM payment_methods WHERE user_id = '{user}'"
        ))
        .await;
    assert_eq!(stored, 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_number_or_a_passed_expiry_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let caller = customer(&new_id());
    let this_year = chrono::Utc::now().year();
    let cases = [
        (card("4242424242424241"), vec!["card_number"]),
        (card("4242"), vec!["card_number"]),
        (
            CreatePaymentMethodRequest {
                exp_year: this_year - 1,
                ..card(APPROVED)
            },
            vec!["exp_year"],
        ),
        (
            CreatePaymentMethodRequest {
                card_number: "4242-4242-4242-4243".into(),
                exp_year: this_year - 1,
                ..card(APPROVED)
            },
            vec!["card_number", "exp_year"],
        ),
        (
            CreatePaymentMethodRequest {
                cvc: "12".into(),
                ..card(APPROVED)
            },
            vec!["cvc"],
        ),
    ];
    for (request, fields) in cases {
        let error = expect_error(
            app.client.create_payment_method(&caller, &request).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), fields, "{request:?}");
    }
    let month = chrono::Utc::now().month() as i32;
    if month > 1 {
        let last_month = CreatePaymentMethodRequest {
            exp_month: month - 1,
            exp_year: this_year,
            ..card(APPROVED)
        };
        let error = expect_error(
            app.client.create_payment_method(&caller, &last_month).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), ["exp_month"]);
    }
    assert_eq!(app.count("SELECT count(*) FROM payment_methods").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_card_number_is_refused_as_not_a_test_card() {
    let app = TestApp::spawn().await;
    for number in ["5555555555554444", "4111111111111111", "378282246310005"] {
        let error = expect_error(
            app.client
                .create_payment_method(&customer(&new_id()), &card(number))
                .await,
            ErrorCode::FailedPrecondition,
        );
        assert!(error.message().contains("not a test card"), "{error}");
        assert!(error.message().contains(APPROVED), "{error}");
    }
    assert_eq!(app.count("SELECT count(*) FROM payment_methods").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_caller_cannot_create_a_payment_method() {
    let app = TestApp::spawn().await;
    expect_error(
        app.client
            .create_payment_method(&anonymous(), &card(APPROVED))
            .await,
        ErrorCode::Unauthenticated,
    );
    assert_eq!(app.count("SELECT count(*) FROM payment_methods").await, 0);
    app.stop().await;
}

/// Every text and JSON column of every table, after cards were added and used in every way
/// (payments, ledger, keys, the provider's memory, the outbox): no card number, no CVC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_table_holds_a_card_number_or_a_cvc() {
    let app = TestApp::spawn().await;
    let cvc = "8317";
    let user = new_id();
    let mut methods = Vec::new();
    for number in [APPROVED, DECLINED, INSUFFICIENT_FUNDS, PROCESSING_ERROR] {
        let request = CreatePaymentMethodRequest {
            cvc: cvc.into(),
            ..card(number)
        };
        let method = app
            .client
            .create_payment_method(&customer(&user), &request)
            .await
            .unwrap();
        methods.push(method.id);
    }
    let approved = app
        .authorize(&new_id(), &user, &methods[0], 900)
        .await
        .unwrap();
    app.capture(&new_id(), &approved.id, None).await.unwrap();
    app.refund(&new_id(), &approved.id, crate::helpers::usd(100))
        .await
        .unwrap();
    let voided = app
        .authorize(&new_id(), &user, &methods[0], 500)
        .await
        .unwrap();
    app.void(&new_id(), &voided.id).await.unwrap();
    for method in &methods[1..] {
        let _ = app.authorize(&new_id(), &user, method, 700).await;
    }
    app.events_for(&approved.id, 3).await;

    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' \
           AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb') \
         ORDER BY table_name, column_name",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    let tables: std::collections::BTreeSet<&str> =
        columns.iter().map(|(table, _)| table.as_str()).collect();
    for table in [
        "payment_methods",
        "payments",
        "payment_ledger",
        "idempotency_keys",
        "simulated_provider_operations",
        "events_outbox",
    ] {
        assert!(
            tables.contains(table),
            "{table} was not searched: {tables:?}"
        );
    }
    for (table, column) in &columns {
        assert!(
            !column.contains("cvc") && !column.contains("card_number"),
            "{table}.{column}"
        );
        for number in [APPROVED, DECLINED, INSUFFICIENT_FUNDS, PROCESSING_ERROR] {
            let found = app
                .count(&format!(
                    "SELECT count(*) FROM \"{table}\" WHERE \"{column}\"::text LIKE '%{number}%' \
                     OR \"{column}\"::text LIKE '%{}%'",
                    &number[..12]
                ))
                .await;
            assert_eq!(found, 0, "{table}.{column} holds (part of) {number}");
        }
        let found = app
            .count(&format!(
                "SELECT count(*) FROM \"{table}\" WHERE \"{column}\"::text = '{cvc}'"
            ))
            .await;
        assert_eq!(found, 0, "{table}.{column} holds the CVC");
    }
    app.stop().await;
}
