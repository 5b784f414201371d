//! The checkout's Idempotency-Key: one key of one customer is one order, however often and
//! however concurrently the request is sent; the same key for a different checkout is refused.

use api::order::{CheckoutResponse, ListOrdersRequest};
use rpc::ErrorCode;

use crate::helpers::{TestApp, VISA_OK, bad_fields, expect_error};

fn order_id(answer: &CheckoutResponse) -> &str {
    &answer
        .order
        .as_ref()
        .expect("the answer holds the order")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_sent_ten_times_makes_one_order_and_one_charge() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 10).await;
    let customer = app.customer().await;
    app.add_to_cart(&customer, &lamp, 1).await;
    let request = app.checkout_request(&customer, "checkout-7f3a");

    // Five at once...
    let at_once = tokio::join!(
        app.checkout_with(&customer, &request),
        app.checkout_with(&customer, &request),
        app.checkout_with(&customer, &request),
        app.checkout_with(&customer, &request),
        app.checkout_with(&customer, &request),
    );
    let mut answers: Vec<CheckoutResponse> =
        [at_once.0, at_once.1, at_once.2, at_once.3, at_once.4]
            .into_iter()
            .map(|answer| answer.expect("checking out"))
            .collect();
    // ...then five in a row.
    for _ in 0..5 {
        answers.push(
            app.checkout_with(&customer, &request)
                .await
                .expect("checking out"),
        );
    }

    let id = order_id(&answers[0]).to_owned();
    assert!(answers.iter().all(|a| order_id(a) == id), "one order id");
    let order = app.settled(&customer, &id).await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    // The ones sent after it settled say so.
    assert!(answers[5..].iter().all(|a| a.http_status == 201));
    let listed = app
        .list_orders(&customer.ctx, ListOrdersRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.orders.len(), 1);
    let payments = app.payments_of(&id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(app.provider_calls(&id, "capture").await, 1);
    assert_eq!(app.provider_calls(&id, "authorize").await, 1);
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (9, 0));
    app.published(&api::order::events::ORDER_PAID, 1).await;
    assert_eq!(
        app.events_of(&api::order::events::ORDER_CREATED)
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_belongs_to_one_checkout_of_one_customer() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 10).await;
    let customer = app.customer().await;
    app.add_to_cart(&customer, &lamp, 1).await;
    let request = app.checkout_request(&customer, "shared-key");
    let first = app.checkout_with(&customer, &request).await.unwrap();
    let first_id = order_id(&first).to_owned();
    assert_eq!(app.settled(&customer, &first_id).await.status, "paid");

    // The same key for another address, or another card, is refused.
    let mut elsewhere = request.clone();
    elsewhere.shipping_address_id = app.another_address(&customer).await;
    let error = expect_error(
        app.checkout_with(&customer, &elsewhere).await,
        ErrorCode::Conflict,
    );
    assert!(error.message().contains("shared-key"), "{error}");
    let mut other_card = request.clone();
    other_card.payment_method_id = app.another_card(&customer, VISA_OK).await;
    expect_error(
        app.checkout_with(&customer, &other_card).await,
        ErrorCode::Conflict,
    );
    // So is the same key with a voucher code, or with a total the customer was shown.
    let mut with_code = request.clone();
    with_code.voucher_code = "SOMECODE".into();
    expect_error(
        app.checkout_with(&customer, &with_code).await,
        ErrorCode::Conflict,
    );
    let mut with_total = request.clone();
    with_total.expected_total = crate::helpers::usd(2500 + 500);
    expect_error(
        app.checkout_with(&customer, &with_total).await,
        ErrorCode::Conflict,
    );
    // The very same request is answered with its order.
    let again = app.checkout_with(&customer, &request).await.unwrap();
    assert_eq!(order_id(&again), first_id);
    let listed = app
        .list_orders(&customer.ctx, ListOrdersRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.orders.len(), 1);
    assert_eq!(app.provider_calls(&first_id, "capture").await, 1);

    // Another customer's same key is their own, independent order.
    let neighbour = app.customer().await;
    app.add_to_cart(&neighbour, &lamp, 2).await;
    let theirs = app
        .checkout_with(&neighbour, &app.checkout_request(&neighbour, "shared-key"))
        .await
        .unwrap();
    let their_id = order_id(&theirs).to_owned();
    assert_ne!(their_id, first_id);
    let their_order = app.settled(&neighbour, &their_id).await;
    assert_eq!(their_order.status, "paid", "{:?}", their_order.failure);
    assert_eq!(their_order.user_id, neighbour.id);
    assert_eq!(their_order.sub_orders[0].lines[0].quantity, 2);
    assert_eq!(app.provider_calls(&their_id, "capture").await, 1);
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (7, 0));

    // Without a key there is no checkout, and the answer says which field is missing.
    let error = expect_error(
        app.checkout_with(&customer, &app.checkout_request(&customer, ""))
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["idempotency_key"]);
    assert_eq!(
        app.list_orders(&customer.ctx, ListOrdersRequest::default())
            .await
            .unwrap()
            .orders
            .len(),
        1
    );
    app.stop().await;
}
