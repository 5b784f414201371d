//! What a code saves, or why it does not apply: EvaluateVoucher (the checkout's) and
//! CheckVoucher without a cart.

use api::voucher::{CheckVoucherRequest, CreateVoucherRequest, UpdateVoucherRequest};
use chrono::Utc;
use rpc::ErrorCode;

use crate::helpers::{TestApp, anonymous, customer, expect_error, new_id, subtotal, usd, voucher};

fn at(offset: chrono::Duration) -> Option<api::Timestamp> {
    api::timestamp(Utc::now() + offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discounts_follow_percent_fixed_minimum_and_cap() {
    let app = TestApp::spawn().await;
    let shop = new_id();
    app.create(CreateVoucherRequest {
        percent_off: 15,
        ..voucher("FIFTEEN")
    })
    .await;
    app.create(CreateVoucherRequest {
        percent_off: 50,
        max_discount_minor_units: 1000,
        ..voucher("HALF-CAPPED")
    })
    .await;
    app.create(CreateVoucherRequest {
        kind: "fixed".into(),
        percent_off: 0,
        amount_off_minor_units: 500,
        min_order_minor_units: 2000,
        ..voucher("FIVE_OFF")
    })
    .await;

    let fifteen = app
        .evaluate(
            "fifteen",
            "",
            "USD",
            vec![subtotal(&shop, 1999), subtotal(&new_id(), 1)],
        )
        .await;
    assert!(fifteen.applies, "{fifteen:?}");
    assert_eq!(fifteen.reason, "");
    assert_eq!(fifteen.code, "FIFTEEN");
    assert_eq!(
        fifteen.discount,
        usd(300),
        "15% of the whole cart (20.00), rounded down"
    );
    let small = app
        .evaluate("FIFTEEN", "", "USD", vec![subtotal(&shop, 1999)])
        .await;
    assert_eq!(small.discount, usd(299), "15% of 19.99 is 2.9985");

    let capped = app
        .evaluate("half-capped", "", "USD", vec![subtotal(&shop, 5000)])
        .await;
    assert_eq!(capped.discount, usd(1000));
    let under_cap = app
        .evaluate("half-capped", "", "USD", vec![subtotal(&shop, 1001)])
        .await;
    assert_eq!(under_cap.discount, usd(500));

    let fixed = app
        .evaluate("five_off", "", "USD", vec![subtotal(&shop, 2000)])
        .await;
    assert!(fixed.applies, "{fixed:?}");
    assert_eq!(fixed.discount, usd(500));
    let below = app
        .evaluate("five_off", "", "USD", vec![subtotal(&shop, 1999)])
        .await;
    assert!(!below.applies);
    assert_eq!(below.reason, "below_minimum");
    assert!(below.message.contains("20.00 USD"), "{}", below.message);
    assert_eq!(below.discount, usd(0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_a_code_does_not_apply() {
    let app = TestApp::spawn().await;
    let shop = new_id();
    let cart = || vec![subtotal(&shop, 5000)];
    let reason = |evaluation: api::voucher::VoucherEvaluation| {
        assert!(!evaluation.applies, "{evaluation:?}");
        assert!(!evaluation.message.is_empty(), "{evaluation:?}");
        evaluation.reason
    };

    let missing = app.evaluate("NoSuchCode", "", "USD", cart()).await;
    assert_eq!(missing.code, "NoSuchCode", "the code as asked");
    assert_eq!(reason(missing), "not_found");

    app.create(voucher("OFF")).await;
    app.update(UpdateVoucherRequest {
        code: "off".into(),
        status: Some("disabled".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        reason(app.evaluate("OFF", "", "USD", cart()).await),
        "disabled"
    );

    app.create(CreateVoucherRequest {
        valid_from: at(chrono::Duration::hours(1)),
        ..voucher("LATER")
    })
    .await;
    assert_eq!(
        reason(app.evaluate("LATER", "", "USD", cart()).await),
        "not_started"
    );

    app.create(CreateVoucherRequest {
        valid_from: at(chrono::Duration::hours(-2)),
        valid_until: at(chrono::Duration::hours(-1)),
        ..voucher("BYGONE")
    })
    .await;
    assert_eq!(
        reason(app.evaluate("BYGONE", "", "USD", cart()).await),
        "expired"
    );

    app.create(CreateVoucherRequest {
        usage_limit: 1,
        ..voucher("ONLY-ONE")
    })
    .await;
    app.reserve("ONLY-ONE", &new_id(), &new_id(), 100, 60)
        .await
        .unwrap();
    assert_eq!(
        reason(app.evaluate("ONLY-ONE", "", "USD", cart()).await),
        "exhausted",
        "a held use counts"
    );

    app.create(CreateVoucherRequest {
        per_user_limit: 1,
        ..voucher("ONCE-EACH")
    })
    .await;
    let user = new_id();
    app.reserve("ONCE-EACH", &user, &new_id(), 100, 60)
        .await
        .unwrap();
    assert_eq!(
        reason(app.evaluate("ONCE-EACH", &user, "USD", cart()).await),
        "already_used"
    );
    assert!(
        app.evaluate("ONCE-EACH", &new_id(), "USD", cart())
            .await
            .applies,
        "another user may"
    );
    assert!(
        app.evaluate("ONCE-EACH", "", "USD", cart()).await.applies,
        "a guest's limit is checked at the order"
    );

    app.create(voucher("DOLLARS")).await;
    let wrong_currency = app.evaluate("DOLLARS", "", "EUR", cart()).await;
    assert!(wrong_currency.message.contains("USD"), "{wrong_currency:?}");
    assert_eq!(reason(wrong_currency), "wrong_currency");
    assert_eq!(
        reason(app.evaluate("DOLLARS", "", "USD", vec![]).await),
        "empty_cart"
    );

    app.create(CreateVoucherRequest {
        min_order_minor_units: 5001,
        ..voucher("BIG-SPENDER")
    })
    .await;
    assert_eq!(
        reason(app.evaluate("BIG-SPENDER", "", "USD", cart()).await),
        "below_minimum"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_a_code_without_a_cart_judges_the_code_alone() {
    let app = TestApp::spawn().await;
    app.create(CreateVoucherRequest {
        min_order_minor_units: 10_000,
        ..voucher("Welcome")
    })
    .await;
    let check = |code: &str| CheckVoucherRequest {
        code: code.into(),
        cart_token: String::new(),
    };

    let checked = app
        .client
        .check_voucher(&anonymous(), &check("WELCOME"))
        .await
        .unwrap();
    assert!(checked.applies, "{checked:?}");
    assert_eq!(checked.reason, "");
    assert_eq!(checked.code, "Welcome");
    assert_eq!(checked.discount, usd(0));
    assert_eq!(checked.description, "The Welcome voucher.");
    assert!(
        checked.message.contains("cart was not considered"),
        "{}",
        checked.message
    );

    expect_error(
        app.client
            .check_voucher(&anonymous(), &check("unknown"))
            .await,
        ErrorCode::NotFound,
    );

    app.create(CreateVoucherRequest {
        valid_from: at(chrono::Duration::hours(-2)),
        valid_until: at(chrono::Duration::hours(-1)),
        ..voucher("Brief")
    })
    .await;
    let expired = app
        .client
        .check_voucher(&anonymous(), &check("brief"))
        .await
        .unwrap();
    assert!(!expired.applies);
    assert_eq!(expired.reason, "expired");
    assert_eq!(expired.message, "This voucher has expired.");

    // A signed-in caller's cart is asked for; with no cart service answering, the caller is
    // told so rather than given an answer that ignores their cart.
    let error = app
        .client
        .check_voucher(&customer(), &check("Welcome"))
        .await
        .unwrap_err();
    assert_ne!(error.code(), ErrorCode::Internal, "{error}");
    app.stop().await;
}
