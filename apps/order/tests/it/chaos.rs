//! The checkout under faults the platform's fault flags inject (set through the real settings
//! service, as on a dev stack): a payment provider that fails gives everything back, and the
//! same customer pays once the fault is cleared, without a restart anywhere.

use std::time::{Duration, Instant};

use api::product::Product;
use settings::catalogue::{FAULT_PAYMENT_FAILURE_PERCENT, FAULT_PAYMENT_LATENCY_MS};

use crate::helpers::{Customer, TestApp, VISA_OK, change_setting, minor};

/// Checks out `customer`'s cart (one `product`) until the order ends `status`: a fault flag
/// reaches the services within moments, and a checkout that ran before it did is just
/// another order. Fails after 15 s.
async fn checkout_until(
    app: &TestApp,
    customer: &Customer,
    product: &Product,
    status: &str,
) -> api::order::Order {
    let started = Instant::now();
    loop {
        if app.cart(customer).await.lines.is_empty() {
            app.add_to_cart(customer, product, 1).await;
        }
        let order = app.checkout(customer).await;
        if order.status == status {
            return order;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no checkout ended {status}: the last was {}",
            order.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_payment_provider_fails_checkouts_cleanly_until_the_fault_is_cleared() {
    let mut app = TestApp::spawn().await;
    let settings = app.start_settings_service().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 50).await;
    let customer = app.customer_with(VISA_OK, "US").await;

    // Every authorisation fails, and slowly: the saga gives back what it took.
    change_setting(
        &settings,
        FAULT_PAYMENT_LATENCY_MS,
        serde_json::json!(200),
        0,
    )
    .await;
    change_setting(
        &settings,
        FAULT_PAYMENT_FAILURE_PERCENT,
        serde_json::json!(100),
        0,
    )
    .await;
    let failed = checkout_until(&app, &customer, &lamp, "failed").await;
    assert_eq!(failed.failure.as_ref().unwrap().code, "payment_declined");
    let paid_before: i64 = app
        .payments_of(&failed.id)
        .await
        .iter()
        .map(|p| minor(&p.captured))
        .sum();
    assert_eq!(paid_before, 0, "nothing captured for the failed order");
    let lamps = app.availability(&lamp).await;
    assert_eq!(lamps.reserved, 0, "the failed checkout's stock is back");
    assert_eq!(
        app.cart(&customer).await.lines.len(),
        1,
        "the cart is kept to try again"
    );

    // Cleared, the very same cart is paid.
    change_setting(
        &settings,
        FAULT_PAYMENT_FAILURE_PERCENT,
        serde_json::json!(0),
        1,
    )
    .await;
    change_setting(&settings, FAULT_PAYMENT_LATENCY_MS, serde_json::json!(0), 1).await;
    let paid = checkout_until(&app, &customer, &lamp, "paid").await;
    assert!(app.cart(&customer).await.lines.is_empty());
    let captured: i64 = app
        .payments_of(&paid.id)
        .await
        .iter()
        .map(|p| minor(&p.captured))
        .sum();
    assert_eq!(captured, minor(&paid.total));
    let lamps = app.availability(&lamp).await;
    assert_eq!(lamps.reserved, 0);
    app.stop().await;
}
