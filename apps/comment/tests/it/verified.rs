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
