//! Shipping and tax from the platform settings: a checkout prices with the settings service's
//! tables (not the order service's fallback flags), and a change is used by the next
//! checkout without a restart.

use std::time::{Duration, Instant};

use rpc::ErrorCode;
use serde_json::json;
use settings::catalogue::{SHIPPING_METHODS, TAX_RATES};
use uuid::Uuid;

use crate::helpers::{Customer, TestApp, VISA_OK, change_setting, minor};

/// Checks out with `method` as soon as the order service offers it (a method that is not
/// offered is refused before anything happens, so trying again is harmless), and waits until
/// the order is settled.
async fn checkout_when_offered(
    app: &TestApp,
    customer: &Customer,
    method: &str,
) -> api::order::Order {
    let started = Instant::now();
    loop {
        let mut request = app.checkout_request(customer, &Uuid::now_v7().to_string());
        request.shipping_method = method.into();
        match app.checkout_with(customer, &request).await {
            Ok(answer) => {
                let order = answer.order.expect("the answer holds the order");
                return app.settled(customer, &order.id).await;
            }
            Err(error)
                if error.code() == ErrorCode::InvalidArgument
                    && testkit::bad_fields(&error) == ["shipping_method"] =>
            {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the order service never offered {method:?}: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("checking out: {error:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_prices_with_the_settings_and_the_next_checkout_uses_a_change() {
    let mut app = TestApp::spawn().await;
    let settings = app.start_settings_service().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2000, 10).await;
    let customer = app.customer_with(VISA_OK, "US").await;

    // The flags say standard=500 and US tax 0; the settings say otherwise.
    change_setting(
        &settings,
        SHIPPING_METHODS,
        json!({
            "standard": {"amount_minor_units": 700, "currency": "USD"},
            "drone": {"amount_minor_units": 2500, "currency": "USD"},
        }),
        1,
    )
    .await;
    change_setting(&settings, TAX_RATES, json!({"US": 1000}), 1).await;

    app.add_to_cart(&customer, &lamp, 1).await;
    let order = checkout_when_offered(&app, &customer, "drone").await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    assert_eq!(minor(&order.shipping), 2500);
    // 10% of (2000 + 2500).
    assert_eq!(minor(&order.tax), 450);
    assert_eq!(minor(&order.total), 4950);

    // The next change, and the next checkout uses it.
    change_setting(
        &settings,
        SHIPPING_METHODS,
        json!({
            "standard": {"amount_minor_units": 700, "currency": "USD"},
            "rocket": {"amount_minor_units": 9900, "currency": "USD"},
        }),
        2,
    )
    .await;
    change_setting(&settings, TAX_RATES, json!({"US": 500}), 2).await;
    app.add_to_cart(&customer, &lamp, 1).await;
    let order = checkout_when_offered(&app, &customer, "rocket").await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    assert_eq!(minor(&order.shipping), 9900);
    // 5% of (2000 + 9900), rounded half up.
    assert_eq!(minor(&order.tax), 595);
    assert_eq!(minor(&order.total), 2000 + 9900 + 595);

    // "drone" is gone: the order service refuses it now.
    app.add_to_cart(&customer, &lamp, 1).await;
    let mut request = app.checkout_request(&customer, &Uuid::now_v7().to_string());
    request.shipping_method = "drone".into();
    let error = app.checkout_with(&customer, &request).await.unwrap_err();
    assert_eq!(testkit::bad_fields(&error), ["shipping_method"]);
    app.stop().await;
}
