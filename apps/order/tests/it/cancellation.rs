//! The cancellation saga end to end: a paid order that has not shipped is cancelled and
//! everything the checkout took (payment, stock, voucher use) is given back exactly once.

use api::order::{OrderCancelled, OrderRefunded};
use rpc::ErrorCode;
use testkit::callers::admin;

use crate::helpers::{TestApp, VISA_DECLINED, expect_error, minor, sub_order_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_paid_order_refunds_it_and_gives_back_stock_and_voucher_once() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    app.voucher("SORRY5", 500, 1).await;
    let before = app.availability(&lamp).await;
    let customer = app.customer().await;
    app.add_to_cart(&customer, &lamp, 2).await;
    app.apply_voucher(&customer, "SORRY5").await;
    let order = app.checkout(&customer).await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    assert_eq!(app.voucher_state("SORRY5").await.used_count, 1);
    assert_eq!(app.availability(&lamp).await.stock, 3);

    let answer = app.cancel(&customer.ctx, &order.id).await.unwrap();

    assert_eq!(answer.http_status, 200);
    assert_eq!(answer.order_url, format!("/api/v1/orders/{}", order.id));
    let answered = answer.order.expect("the answer holds the order");
    assert_eq!(answered.status, "refunded");
    let cancelled = app
        .until(&customer, &order.id, |o| o.status == "refunded")
        .await;
    assert!(cancelled.sub_orders.iter().all(|s| s.status == "cancelled"));
    let failure = cancelled.failure.as_ref().expect("why it was cancelled");
    assert_eq!(failure.code, "cancelled_by_customer");
    assert_eq!(failure.message, "changed my mind");
    // The payment refunded once, in full.
    let payments = app.payments_of(&order.id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, "refunded");
    assert_eq!(minor(&payments[0].refunded), minor(&order.total));
    assert_eq!(app.provider_calls(&order.id, "refund").await, 1);
    // Stock and the voucher use are back where they were before the checkout.
    let after = app.availability(&lamp).await;
    assert_eq!(
        (after.stock, after.reserved, after.available),
        (before.stock, before.reserved, before.available)
    );
    assert_eq!(app.voucher_state("SORRY5").await.used_count, 0);
    // The history: cancelled by the customer, then refunded.
    let changes: Vec<(&str, &str)> = cancelled
        .history
        .iter()
        .map(|h| (h.status.as_str(), h.actor.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("pending", "customer"),
            ("paid", "system"),
            ("cancelled", "customer"),
            ("refunded", "system")
        ]
    );
    assert_eq!(cancelled.history[2].actor_id, customer.id);
    // order.cancelled, then order.refunded.
    let cancelled_events = app.published(&api::order::events::ORDER_CANCELLED, 1).await;
    let refunded_events = app.published(&api::order::events::ORDER_REFUNDED, 1).await;
    assert!(cancelled_events[0].sequence < refunded_events[0].sequence);
    let event = serde_json::from_slice::<OrderCancelled>(&cancelled_events[0].payload).unwrap();
    let event_order = event.order.unwrap();
    assert_eq!(
        (event_order.id.as_str(), event_order.status.as_str()),
        (order.id.as_str(), "cancelled")
    );
    let event = serde_json::from_slice::<OrderRefunded>(&refunded_events[0].payload).unwrap();
    assert_eq!(event.order.unwrap().status, "refunded");

    // Cancelling again answers the same and gives nothing back twice.
    let again = app.cancel(&customer.ctx, &order.id).await.unwrap();
    assert_eq!(again.http_status, 200);
    assert_eq!(again.order.unwrap().status, "refunded");
    assert_eq!(app.provider_calls(&order.id, "refund").await, 1);
    assert_eq!(app.voucher_state("SORRY5").await.used_count, 0);
    assert_eq!(app.availability(&lamp).await.stock, before.stock);
    assert_eq!(
        app.events_of(&api::order::events::ORDER_REFUNDED)
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_shipped_failed_or_is_someone_elses_is_not_cancelled() {
    let app = TestApp::spawn().await;
    let (north, south) = (app.seller().await, app.seller().await);
    let lamp = app.product(&north, "Lamp", 2500, 5).await;
    let rug = app.product(&south, "Rug", 10_000, 3).await;
    let customer = app.customer().await;
    let order = app.paid_order(&customer, &[&lamp, &rug], 1).await;

    // Someone else's order answers like a missing one, and stays paid.
    let stranger = app.customer().await;
    expect_error(
        app.cancel(&stranger.ctx, &order.id).await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        app.get_order(&customer.ctx, &order.id)
            .await
            .unwrap()
            .status,
        "paid"
    );

    // Once part of it shipped, it can no longer be cancelled, and nothing is given back.
    app.ship(&north, sub_order_of(&order, &north), "UPS", "1Z1")
        .await
        .unwrap();
    let error = expect_error(
        app.cancel(&customer.ctx, &order.id).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("shipped"), "{error}");
    let seen = app.get_order(&customer.ctx, &order.id).await.unwrap();
    assert_eq!(seen.status, "partially_shipped");
    assert_eq!(sub_order_of(&seen, &south).status, "paid");
    assert_eq!(app.provider_calls(&order.id, "refund").await, 0);
    assert_eq!(app.payments_of(&order.id).await[0].status, "captured");
    let rugs = app.availability(&rug).await;
    assert_eq!((rugs.stock, rugs.reserved), (2, 0));
    // Not even an admin cancels it.
    expect_error(
        app.cancel(&admin(), &order.id).await,
        ErrorCode::FailedPrecondition,
    );

    // A failed order has nothing to cancel.
    let declined = app.customer_with(VISA_DECLINED, "US").await;
    app.add_to_cart(&declined, &lamp, 1).await;
    let failed = app.checkout(&declined).await;
    assert_eq!(failed.status, "failed");
    expect_error(
        app.cancel(&declined.ctx, &failed.id).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(
        app.get_order(&declined.ctx, &failed.id)
            .await
            .unwrap()
            .status,
        "failed"
    );
    assert!(
        app.events_of(&api::order::events::ORDER_CANCELLED)
            .await
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cancellations_at_once_refund_once() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer().await;
    let order = app.paid_order(&customer, &[&lamp], 2).await;

    let (first, second) = tokio::join!(
        app.cancel(&customer.ctx, &order.id),
        app.cancel(&customer.ctx, &order.id)
    );

    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.order.unwrap().id, order.id);
    assert_eq!(second.order.unwrap().id, order.id);
    let refunded = app
        .until(&customer, &order.id, |o| o.status == "refunded")
        .await;
    assert_eq!(
        refunded
            .history
            .iter()
            .filter(|h| h.status == "cancelled" && h.sub_order_id.is_empty())
            .count(),
        1
    );
    assert_eq!(app.provider_calls(&order.id, "refund").await, 1);
    // Restocked once: exactly what there was before the checkout.
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (5, 0));
    app.published(&api::order::events::ORDER_REFUNDED, 1).await;
    assert_eq!(
        app.events_of(&api::order::events::ORDER_CANCELLED)
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_and_cancelling_at_once_never_both_succeed() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 10).await;
    let mut races = Vec::new();
    for _ in 0..4 {
        let customer = app.customer().await;
        let order = app.paid_order(&customer, &[&lamp], 1).await;
        races.push((customer, order));
    }

    for (customer, order) in &races {
        let sub = sub_order_of(order, &seller);
        let (cancelled, shipped) = tokio::join!(
            app.cancel(&customer.ctx, &order.id),
            app.ship(&seller, sub, "UPS", "1Z1")
        );

        // One of them wins; the other is told it is too late, and the order shows the winner.
        match (&cancelled, &shipped) {
            (Ok(_), Err(error)) => {
                assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
                app.until(customer, &order.id, |o| o.status == "refunded")
                    .await;
                assert_eq!(app.provider_calls(&order.id, "refund").await, 1);
            }
            (Err(error), Ok(_)) => {
                assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
                let seen = app.get_order(&customer.ctx, &order.id).await.unwrap();
                assert_eq!(seen.status, "shipped");
                assert_eq!(app.provider_calls(&order.id, "refund").await, 0);
            }
            _ => panic!(
                "cancelling answered {:?} and shipping {:?}",
                cancelled
                    .as_ref()
                    .map(|a| (a.http_status, a.order.as_ref().map(|o| o.status.clone()))),
                shipped.as_ref().map(|s| s.status.clone())
            ),
        }
    }
    app.stop().await;
}
