//! The checkout saga end to end, with every service it calls running: the happy path, and
//! each refusal leaving stock, voucher uses and payments exactly as they were.

use api::order::{OrderCreated, OrderFailed, OrderPaid};

use crate::helpers::{
    TestApp, VISA_DECLINED, VISA_NO_FUNDS, VISA_PROCESSING_ERROR, minor, sub_order_of, usd,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_of_two_shops_becomes_one_paid_order_of_two_sub_orders() {
    let app = TestApp::spawn().await;
    let (north, south) = (app.seller().await, app.seller().await);
    let lamp = app.product(&north, "Lamp", 2500, 5).await;
    let rug = app.product(&south, "Rug", 10_000, 3).await;
    app.voucher("WELCOME10", 1000, 1).await;
    let customer = app.customer().await;
    app.add_to_cart(&customer, &lamp, 2).await;
    app.add_to_cart(&customer, &rug, 1).await;
    app.apply_voucher(&customer, "WELCOME10").await;

    let order = app.checkout(&customer).await;

    assert_eq!(order.status, "paid", "{:?}", order.failure);
    assert_eq!(order.user_id, customer.id);
    assert_eq!(order.currency, "USD");
    assert_eq!(order.voucher_code, "WELCOME10");
    assert_eq!(order.sub_orders.len(), 2);
    let (n, s) = (sub_order_of(&order, &north), sub_order_of(&order, &south));
    assert_eq!(n.status, "paid");
    assert_eq!(minor(&n.subtotal), 5000);
    assert_eq!(minor(&s.subtotal), 10_000);
    assert_eq!(n.lines.len(), 1);
    assert_eq!(
        (n.lines[0].quantity, minor(&n.lines[0].unit_price)),
        (2, 2500)
    );
    // The platform voucher is shared in proportion: 1000 over 5000 and 10000.
    assert_eq!((minor(&n.discount), minor(&s.discount)), (333, 667));
    // Shipping per sub-order; no tax in the US.
    assert_eq!(minor(&order.shipping), 1000);
    assert_eq!(minor(&order.tax), 0);
    assert_eq!(minor(&order.total), 15_000 - 1000 + 1000);
    // The stored figures add up, per sub-order and for the order.
    for sub in &order.sub_orders {
        assert_eq!(
            minor(&sub.total),
            minor(&sub.subtotal) - minor(&sub.discount) + minor(&sub.shipping) + minor(&sub.tax)
        );
    }
    for (field, sum) in [
        (
            minor(&order.subtotal),
            order
                .sub_orders
                .iter()
                .map(|s| minor(&s.subtotal))
                .sum::<i64>(),
        ),
        (
            minor(&order.discount),
            order.sub_orders.iter().map(|s| minor(&s.discount)).sum(),
        ),
        (
            minor(&order.total),
            order.sub_orders.iter().map(|s| minor(&s.total)).sum(),
        ),
    ] {
        assert_eq!(field, sum);
    }
    let address = order
        .shipping_address
        .as_ref()
        .expect("the address snapshot");
    assert_eq!(
        (address.city.as_str(), address.country_code.as_str()),
        ("San Francisco", "US")
    );

    // Stock committed: sold, nothing left held.
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved, lamps.available), (3, 0, 3));
    let rugs = app.availability(&rug).await;
    assert_eq!((rugs.stock, rugs.reserved), (2, 0));
    // The voucher used once, for good.
    assert_eq!(app.voucher_state("WELCOME10").await.used_count, 1);
    // One payment, captured once for the total.
    let payments = app.payments_of(&order.id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, "captured");
    assert_eq!(minor(&payments[0].captured), 15_000);
    assert_eq!(order.payment_id, payments[0].id);
    assert_eq!(app.provider_calls(&order.id, "capture").await, 1);
    // The cart is empty.
    assert!(app.cart(&customer).await.lines.is_empty());
    // The history, oldest first.
    let statuses: Vec<&str> = order.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(statuses, ["pending", "paid"]);
    // order.created, then order.paid, in order.
    let created = app.published(&api::order::events::ORDER_CREATED, 1).await;
    let paid = app.published(&api::order::events::ORDER_PAID, 1).await;
    assert!(created[0].sequence < paid[0].sequence);
    let event = serde_json::from_slice::<OrderPaid>(&paid[0].payload).unwrap();
    assert_eq!(event.order.unwrap().id, order.id);
    let event = serde_json::from_slice::<OrderCreated>(&created[0].payload).unwrap();
    assert_eq!(event.order.unwrap().status, "pending");
    assert!(
        app.events_of(&api::order::events::ORDER_FAILED)
            .await
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_fails_the_order_and_gives_everything_back() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    app.voucher("ONCE", 500, 1).await;
    for (card, provider_code) in [
        (VISA_DECLINED, "card_declined"),
        (VISA_NO_FUNDS, "insufficient_funds"),
    ] {
        let customer = app.customer_with(card, "US").await;
        app.add_to_cart(&customer, &lamp, 2).await;
        app.apply_voucher(&customer, "ONCE").await;

        let order = app.checkout(&customer).await;

        assert_eq!(order.status, "failed");
        let failure = order.failure.as_ref().expect("why it failed");
        assert_eq!(failure.code, "payment_declined");
        assert_eq!(failure.payment_failure_code, provider_code);
        assert!(order.sub_orders.iter().all(|s| s.status == "failed"));
        // Stock and voucher are back where they were; nothing was captured.
        let lamps = app.availability(&lamp).await;
        assert_eq!((lamps.stock, lamps.reserved), (5, 0));
        assert_eq!(app.voucher_state("ONCE").await.used_count, 0);
        let payments = app.payments_of(&order.id).await;
        assert!(payments.iter().all(|p| minor(&p.captured) == 0));
        // The cart is left as it was, to try another card.
        assert_eq!(app.cart(&customer).await.lines.len(), 1);
    }
    let failed = app.published(&api::order::events::ORDER_FAILED, 2).await;
    let event = serde_json::from_slice::<OrderFailed>(&failed[0].payload).unwrap();
    assert_eq!(
        event.order.unwrap().failure.unwrap().code,
        "payment_declined"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_error_is_retried_then_fails_the_order_without_a_charge() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer_with(VISA_PROCESSING_ERROR, "US").await;
    app.add_to_cart(&customer, &lamp, 1).await;

    let order = app.checkout(&customer).await;

    assert_eq!(order.status, "failed");
    assert_eq!(order.failure.as_ref().unwrap().code, "payment_failed");
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (5, 0));
    assert_eq!(app.provider_calls(&order.id, "capture").await, 0);
    // Tried more than once before giving up.
    let saga = app
        .client
        .get_saga(
            &testkit::callers::admin(),
            &api::order::GetSagaRequest {
                id: order.id.clone(),
            },
        )
        .await
        .unwrap();
    let authorize = saga
        .steps
        .iter()
        .find(|s| s.name == "authorize_payment" && s.phase == "action")
        .expect("the authorisation step");
    assert_eq!(authorize.attempts, 3);
    assert_eq!(saga.state, "compensated");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_names_the_products_and_takes_nothing() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 2).await;
    let rug = app.product(&seller, "Rug", 9000, 5).await;
    let first = app.customer().await;
    let second = app.customer().await;
    app.add_to_cart(&first, &lamp, 2).await;
    app.add_to_cart(&second, &lamp, 2).await;
    app.add_to_cart(&second, &rug, 1).await;

    assert_eq!(app.checkout(&first).await.status, "paid");
    let order = app.checkout(&second).await;

    assert_eq!(order.status, "failed");
    let failure = order.failure.as_ref().unwrap();
    assert_eq!(failure.code, "out_of_stock");
    assert_eq!(failure.product_ids, std::slice::from_ref(&lamp.id));
    let rugs = app.availability(&rug).await;
    assert_eq!((rugs.stock, rugs.reserved), (5, 0));
    assert!(app.payments_of(&order.id).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_voucher_fails_the_order_and_takes_nothing() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    app.voucher("LAST", 500, 1).await;
    let (first, second) = (app.customer().await, app.customer().await);
    for customer in [&first, &second] {
        app.add_to_cart(customer, &lamp, 1).await;
        app.apply_voucher(customer, "LAST").await;
    }
    assert_eq!(app.checkout(&first).await.status, "paid");

    let order = app.checkout(&second).await;

    assert_eq!(order.status, "failed");
    assert_eq!(order.failure.as_ref().unwrap().code, "voucher_unavailable");
    assert_eq!(app.voucher_state("LAST").await.used_count, 1);
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (4, 0));
    assert!(app.payments_of(&order.id).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_that_moved_since_the_cart_was_shown_is_refused_with_the_new_prices() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer().await;
    let shown = app.add_to_cart(&customer, &lamp, 2).await;
    let shown_total = shown.totals[0].total.clone().unwrap().minor_units + 500;
    app.reprice(&seller, &lamp, 2700).await;

    let mut request = app.checkout_request(&customer, "price-moved");
    request.expected_total = usd(shown_total);
    let answer = app.checkout_with(&customer, &request).await.unwrap();
    let order = app.settled(&customer, &answer.order.unwrap().id).await;

    assert_eq!(order.status, "failed");
    let failure = order.failure.as_ref().unwrap();
    assert_eq!(failure.code, "price_changed");
    assert_eq!(failure.price_changes.len(), 1);
    assert_eq!(failure.price_changes[0].product_id, lamp.id);
    assert_eq!(minor(&failure.price_changes[0].unit_price), 2700);
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (5, 0));
    assert!(app.payments_of(&order.id).await.is_empty());

    // With the total now shown, the same cart goes through.
    let mut request = app.checkout_request(&customer, "price-accepted");
    request.expected_total = usd(2 * 2700 + 500);
    let answer = app.checkout_with(&customer, &request).await.unwrap();
    let order = app.settled(&customer, &answer.order.unwrap().id).await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tax_is_charged_by_the_destination_country() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer_with(crate::helpers::VISA_OK, "DE").await;
    app.add_to_cart(&customer, &lamp, 1).await;

    let order = app.checkout(&customer).await;

    assert_eq!(order.status, "paid", "{:?}", order.failure);
    // 10% of (2500 + 500 shipping).
    assert_eq!(minor(&order.tax), 300);
    assert_eq!(minor(&order.total), 3300);
    assert_eq!(app.payments_of(&order.id).await[0].captured, usd(3300));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_shops_products_cannot_be_bought() {
    use api::shop::SuspendShopRequest;

    let app = TestApp::spawn().await;
    let (open, suspended) = (app.seller().await, app.seller().await);
    let lamp = app.product(&open, "Lamp", 2500, 5).await;
    let rug = app.product(&suspended, "Rug", 9000, 5).await;
    let customer = app.customer().await;
    app.add_to_cart(&customer, &lamp, 1).await;
    app.add_to_cart(&customer, &rug, 1).await;
    app.shops
        .suspend_shop(
            &testkit::callers::admin(),
            &SuspendShopRequest {
                id: suspended.shop_id.clone(),
                reason: "unpaid fees".into(),
            },
        )
        .await
        .expect("suspending a shop");

    let order = app.checkout(&customer).await;

    assert_eq!(order.status, "failed");
    let failure = order.failure.as_ref().unwrap();
    assert_eq!(failure.code, "cart_not_ready");
    assert_eq!(failure.product_ids, std::slice::from_ref(&rug.id));
    for product in [&lamp, &rug] {
        let stock = app.availability(product).await;
        assert_eq!((stock.stock, stock.reserved), (5, 0));
    }
    assert!(app.payments_of(&order.id).await.is_empty());
    app.stop().await;
}
