//! "Verified purchase" comes from the order events (a read model), never from a call at read
//! time: it appears when order.paid arrives, before or after the review, and goes when the
//! order is cancelled.

use crate::helpers::{TestApp, customer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_purchase_appears_only_after_a_paid_order() {
    let app = TestApp::spawn().await;
    let kettle = app.product().await;
    let toaster = app.product().await;
    let (ada, bob) = (customer(), customer());

    // Written before any order: not verified.
    let review = app.review(&ada, &kettle.id, 5).await;
    assert!(!review.verified_purchase);

    // Another customer's order, and ada's order of another product, verify nothing here.
    app.paid(&bob, &[&kettle.id]).await;
    app.paid(&ada, &[&toaster.id]).await;
    assert!(
        !app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );

    // Ada's paid order of the kettle: the review she wrote before becomes verified.
    let order = app.paid(&ada, &[&kettle.id, &toaster.id]).await;
    assert!(
        app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    let listed = app.page(&kettle.id, "newest", 10, "").await.unwrap();
    assert!(listed.reviews[0].verified_purchase);

    // A review written after the payment is verified at once.
    let toaster_review = app.review(&ada, &toaster.id, 4).await;
    assert!(toaster_review.verified_purchase);

    // The order is cancelled: the kettle no longer verifies; the toaster still does, through
    // her first toaster order.
    app.cancelled(&order).await;
    assert!(
        !app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    assert!(
        app.my_review(&ada, &toaster.id)
            .await
            .unwrap()
            .verified_purchase
    );

    // Bob's review is verified by his order, which was never cancelled.
    assert!(app.review(&bob, &kettle.id, 3).await.verified_purchase);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_paid_event_after_a_cancellation_does_not_verify_again() {
    let app = TestApp::spawn().await;
    let kettle = app.product().await;
    let ada = customer();
    app.review(&ada, &kettle.id, 5).await;
    let order = app.paid(&ada, &[&kettle.id]).await;
    assert!(
        app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    app.cancelled(&order).await;
    // The same order paid again (a redrive of an old message): a void is final.
    app.publish_order_event(
        &order.id,
        &api::order::OrderPaid {
            order: Some(order.clone()),
        },
    )
    .await;
    assert!(
        !app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_seen_before_the_payment_verifies_once_the_payment_arrives() {
    let app = TestApp::spawn().await;
    let kettle = app.product().await;
    let ada = customer();
    app.review(&ada, &kettle.id, 4).await;
    let order = crate::helpers::order_of(&ada, &[&kettle.id], "paid");
    // suborder.delivered carries no customer: on its own it verifies nobody.
    let delivered = api::order::SubOrderDelivered {
        sub_order: Some(order.sub_orders[0].clone()),
        order_status: "delivered".into(),
    };
    app.publish_order_event(&order.id, &delivered).await;
    assert!(
        !app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    app.publish_order_event(
        &order.id,
        &api::order::OrderPaid {
            order: Some(order.clone()),
        },
    )
    .await;
    assert!(
        app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_order_event_is_given_up_into_the_dead_letters() {
    use api::order::events::ORDER_PAID;

    let app = TestApp::spawn().await;
    let ada = customer();
    let mut order = crate::helpers::order_of(&ada, &["not-a-product"], "paid");
    app.publish_order_event(
        &order.id,
        &api::order::OrderPaid {
            order: Some(order.clone()),
        },
    )
    .await;
    order.sub_orders.clear();
    app.publish_order_event(&order.id, &api::order::OrderPaid { order: None })
        .await;

    let durable = events::names::durable_name(api::comment::SERVICE_NAME, &ORDER_PAID).unwrap();
    let started = std::time::Instant::now();
    let letters = loop {
        let letters = events::dead_letter::list(&app.jetstream, Some(&durable))
            .await
            .unwrap();
        if letters.len() >= 2 || started.elapsed() > std::time::Duration::from_secs(10) {
            break letters;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "terminated: product_id must be a UUID",
            "terminated: the event has no order"
        ]
    );
    // A valid event after them is applied as usual.
    let kettle = app.product().await;
    app.review(&ada, &kettle.id, 5).await;
    app.paid(&ada, &[&kettle.id]).await;
    assert!(
        app.my_review(&ada, &kettle.id)
            .await
            .unwrap()
            .verified_purchase
    );
    app.stop().await;
}
