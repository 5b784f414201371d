//! Fulfilment: each seller sees, ships and delivers only their own shop's sub-orders, the
//! order's status follows its sub-orders, and nobody reads or moves what is not theirs.

use api::order::{ListOrdersRequest, ShipSubOrderRequest, SubOrderDelivered, SubOrderShipped};
use rpc::ErrorCode;
use testkit::callers::admin;
use uuid::Uuid;

use crate::helpers::{
    TestApp, VISA_DECLINED, bad_fields, expect_error, not_found_shape, sub_order_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_seller_ships_and_delivers_their_own_sub_order_and_the_order_follows() {
    let app = TestApp::spawn().await;
    let (north, south) = (app.seller().await, app.seller().await);
    let lamp = app.product(&north, "Lamp", 2500, 5).await;
    let rug = app.product(&south, "Rug", 10_000, 3).await;
    let customer = app.customer().await;
    let order = app.paid_order(&customer, &[&lamp, &rug], 1).await;
    let (n, s) = (sub_order_of(&order, &north), sub_order_of(&order, &south));
    // A checkout that failed leaves a failed sub-order in the north shop.
    let declined = app.customer_with(VISA_DECLINED, "US").await;
    app.add_to_cart(&declined, &lamp, 1).await;
    let failed = app.checkout(&declined).await;
    assert_eq!(failed.status, "failed");
    let failed_sub = sub_order_of(&failed, &north);

    // Each seller lists their own shop's live sub-orders; failed ones only when asked for.
    let listed = app
        .shop_sub_orders(&north.ctx, &north.shop_id, "")
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [n.id.as_str()]
    );
    assert_eq!(listed[0].lines.len(), 1);
    assert_eq!(listed[0].lines[0].product_id, lamp.id);
    let listed = app
        .shop_sub_orders(&south.ctx, &south.shop_id, "")
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [s.id.as_str()]
    );
    let listed = app
        .shop_sub_orders(&north.ctx, &north.shop_id, "failed")
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [failed_sub.id.as_str()]
    );

    // North ships: its sub-order is on its way, the order partly.
    let shipped = app
        .ship(&north, n, "UPS", "1Z999AA10123456784")
        .await
        .unwrap();
    assert_eq!(shipped.status, "shipped");
    assert_eq!(
        (shipped.carrier.as_str(), shipped.tracking_number.as_str()),
        ("UPS", "1Z999AA10123456784")
    );
    assert!(shipped.shipped_at.is_some());
    assert!(shipped.delivered_at.is_none());
    let seen = app.get_order(&customer.ctx, &order.id).await.unwrap();
    assert_eq!(seen.status, "partially_shipped");
    assert_eq!(sub_order_of(&seen, &south).status, "paid");

    // Shipping again with the same carrier and tracking number answers the same.
    let again = app
        .ship(&north, n, "UPS", "1Z999AA10123456784")
        .await
        .unwrap();
    assert_eq!(again.status, "shipped");
    assert_eq!(again.shipped_at, shipped.shipped_at);
    // With another tracking number, it is refused and nothing changes.
    let error = expect_error(
        app.ship(&north, n, "UPS", "1Z999AA10999999999").await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("1Z999AA10123456784"), "{error}");
    let still = app.get_sub_order(&north.ctx, &n.id).await.unwrap();
    assert_eq!(still.tracking_number, "1Z999AA10123456784");

    // South ships: the whole order is on its way.
    app.ship(&south, s, "DHL", "JD014600006281230704")
        .await
        .unwrap();
    assert_eq!(
        app.get_order(&customer.ctx, &order.id)
            .await
            .unwrap()
            .status,
        "shipped"
    );

    // Delivered one by one: the order is delivered once both are.
    let delivered = app.deliver(&north.ctx, n).await.unwrap();
    assert_eq!(delivered.status, "delivered");
    assert!(delivered.delivered_at.is_some());
    assert_eq!(
        app.get_order(&customer.ctx, &order.id)
            .await
            .unwrap()
            .status,
        "shipped"
    );
    app.deliver(&south.ctx, s).await.unwrap();
    let done = app.get_order(&customer.ctx, &order.id).await.unwrap();
    assert_eq!(done.status, "delivered");
    assert!(done.sub_orders.iter().all(|s| s.status == "delivered"));

    // Every move is in the history, by the seller, naming the sub-order.
    let north_id = north.ctx.principal().unwrap().user_id.clone();
    let moves: Vec<(&str, &str)> = done
        .history
        .iter()
        .filter(|h| h.sub_order_id == n.id)
        .map(|h| (h.status.as_str(), h.actor.as_str()))
        .collect();
    assert_eq!(moves, [("shipped", "seller"), ("delivered", "seller")]);
    assert!(
        done.history
            .iter()
            .filter(|h| h.sub_order_id == n.id)
            .all(|h| h.actor_id == north_id)
    );
    let order_moves: Vec<&str> = done
        .history
        .iter()
        .filter(|h| h.sub_order_id.is_empty())
        .map(|h| h.status.as_str())
        .collect();
    assert_eq!(
        order_moves,
        [
            "pending",
            "paid",
            "partially_shipped",
            "shipped",
            "delivered"
        ]
    );

    // suborder.shipped and suborder.delivered, with the shipment and the order's status.
    let events: Vec<SubOrderShipped> = app
        .published(&api::order::events::SUBORDER_SHIPPED, 2)
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "shipping again published nothing more");
    let first = events[0].sub_order.as_ref().unwrap();
    assert_eq!(first.id, n.id);
    assert_eq!(
        (first.carrier.as_str(), first.tracking_number.as_str()),
        ("UPS", "1Z999AA10123456784")
    );
    assert_eq!(events[0].order_status, "partially_shipped");
    let second = events[1].sub_order.as_ref().unwrap();
    assert_eq!(
        (second.id.as_str(), second.carrier.as_str()),
        (s.id.as_str(), "DHL")
    );
    assert_eq!(events[1].order_status, "shipped");
    let events: Vec<SubOrderDelivered> = app
        .published(&api::order::events::SUBORDER_DELIVERED, 2)
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| (
                e.sub_order.as_ref().unwrap().id.as_str(),
                e.order_status.as_str()
            ))
            .collect::<Vec<_>>(),
        [(n.id.as_str(), "shipped"), (s.id.as_str(), "delivered")]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_and_delivering_out_of_turn_or_with_bad_details_are_refused() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer().await;
    let order = app.paid_order(&customer, &[&lamp], 1).await;
    let sub = sub_order_of(&order, &seller);
    let declined = app.customer_with(VISA_DECLINED, "US").await;
    app.add_to_cart(&declined, &lamp, 1).await;
    let failed = app.checkout(&declined).await;
    assert_eq!(failed.status, "failed");

    // Delivered before it shipped.
    let error = expect_error(
        app.deliver(&seller.ctx, sub).await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("paid"), "{error}");
    // A failed order's sub-order never ships.
    expect_error(
        app.ship(&seller, sub_order_of(&failed, &seller), "UPS", "1Z1")
            .await,
        ErrorCode::FailedPrecondition,
    );
    // An unknown carrier and a tracking number with spaces, both named.
    let error = expect_error(
        app.ship(&seller, sub, "Pigeon", "12 34").await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["carrier", "tracking_number"]);
    let error = expect_error(
        app.ship(&seller, sub, "UPS", "").await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["tracking_number"]);
    let error = expect_error(
        app.ship(&seller, sub, "UPS", &"9".repeat(65)).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["tracking_number"]);
    let error = expect_error(
        app.client
            .ship_sub_order(
                &seller.ctx,
                &ShipSubOrderRequest {
                    id: "not-a-uuid".into(),
                    carrier: "UPS".into(),
                    tracking_number: "1Z1".into(),
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["id"]);
    // None of it moved anything.
    let seen = app.get_order(&customer.ctx, &order.id).await.unwrap();
    assert_eq!(seen.status, "paid");
    assert_eq!(seen.sub_orders[0].status, "paid");
    assert_eq!(seen.sub_orders[0].carrier, "");
    assert!(
        app.events_of(&api::order::events::SUBORDER_SHIPPED)
            .await
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_moves_an_order_or_sub_order_that_is_not_theirs() {
    let app = TestApp::spawn().await;
    let (north, south) = (app.seller().await, app.seller().await);
    let lamp = app.product(&north, "Lamp", 2500, 5).await;
    let rug = app.product(&south, "Rug", 10_000, 3).await;
    let customer = app.customer().await;
    let order = app.paid_order(&customer, &[&lamp, &rug], 1).await;
    let n = sub_order_of(&order, &north).clone();
    let stranger = app.customer().await;
    let random = Uuid::now_v7().to_string();

    // Another customer: the order and its sub-orders answer like ids that do not exist.
    let missing_order = not_found_shape(
        &expect_error(
            app.get_order(&customer.ctx, &random).await,
            ErrorCode::NotFound,
        ),
        &random,
    );
    let missing_sub = not_found_shape(
        &expect_error(
            app.get_sub_order(&customer.ctx, &random).await,
            ErrorCode::NotFound,
        ),
        &random,
    );
    let error = app.get_order(&stranger.ctx, &order.id).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &order.id), missing_order);
    let error = app.cancel(&stranger.ctx, &order.id).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &order.id), missing_order);
    let error = app.get_sub_order(&stranger.ctx, &n.id).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &n.id), missing_sub);

    // The other shop's seller: neither north's sub-order nor north's shop.
    let error = app.get_sub_order(&south.ctx, &n.id).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &n.id), missing_sub);
    let error = app.ship(&south, &n, "UPS", "1Z1").await.unwrap_err();
    assert_eq!(not_found_shape(&error, &n.id), missing_sub);
    expect_error(
        app.shop_sub_orders(&south.ctx, &north.shop_id, "").await,
        ErrorCode::NotFound,
    );
    // A seller sees their sub-order, never the order around it.
    assert_eq!(app.get_sub_order(&north.ctx, &n.id).await.unwrap().id, n.id);
    let error = app.get_order(&north.ctx, &order.id).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &order.id), missing_order);
    // The customer reads their sub-order but cannot ship it.
    assert_eq!(
        app.get_sub_order(&customer.ctx, &n.id).await.unwrap().id,
        n.id
    );
    let error = app
        .client
        .ship_sub_order(
            &customer.ctx,
            &ShipSubOrderRequest {
                id: n.id.clone(),
                carrier: "UPS".into(),
                tracking_number: "1Z1".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(not_found_shape(&error, &n.id), missing_sub);
    expect_error(
        app.shop_sub_orders(&customer.ctx, &north.shop_id, "").await,
        ErrorCode::NotFound,
    );
    // Once shipped by north, south cannot deliver it either.
    app.ship(&north, &n, "UPS", "1Z1").await.unwrap();
    let error = app.deliver(&south.ctx, &n).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &n.id), missing_sub);
    let error = app.deliver(&customer.ctx, &n).await.unwrap_err();
    assert_eq!(not_found_shape(&error, &n.id), missing_sub);
    assert_eq!(
        app.get_sub_order(&north.ctx, &n.id).await.unwrap().status,
        "shipped"
    );

    // ListOrders: each customer sees their own, and may not name someone else.
    let mine = app
        .list_orders(&customer.ctx, ListOrdersRequest::default())
        .await
        .unwrap();
    assert_eq!(
        mine.orders
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>(),
        [order.id.as_str()]
    );
    let theirs = app
        .list_orders(&stranger.ctx, ListOrdersRequest::default())
        .await
        .unwrap();
    assert!(theirs.orders.is_empty());
    expect_error(
        app.list_orders(
            &stranger.ctx,
            ListOrdersRequest {
                user_id: customer.id.clone(),
                ..Default::default()
            },
        )
        .await,
        ErrorCode::PermissionDenied,
    );
    // Naming oneself is fine.
    let named = app
        .list_orders(
            &customer.ctx,
            ListOrdersRequest {
                user_id: customer.id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(named.orders.len(), 1);

    // An admin reads anyone's.
    let listed = app
        .list_orders(
            &admin(),
            ListOrdersRequest {
                user_id: customer.id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.orders.len(), 1);
    assert_eq!(listed.orders[0].id, order.id);
    assert_eq!(
        app.get_order(&admin(), &order.id).await.unwrap().id,
        order.id
    );
    assert_eq!(app.get_sub_order(&admin(), &n.id).await.unwrap().id, n.id);
    assert_eq!(
        app.shop_sub_orders(&admin(), &north.shop_id, "")
            .await
            .unwrap()
            .len(),
        1
    );
    // The order is still the customer's, untouched by all of it.
    let seen = app.get_order(&customer.ctx, &order.id).await.unwrap();
    assert_eq!(seen.status, "partially_shipped");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_newest_first_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 10).await;
    let customer = app.customer().await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(app.paid_order(&customer, &[&lamp], 1).await.id);
    }
    placed.reverse();

    let first = app
        .list_orders(
            &customer.ctx,
            ListOrdersRequest {
                page_size: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        first.orders.iter().map(|o| &o.id).collect::<Vec<_>>(),
        [&placed[0], &placed[1]]
    );
    assert!(!first.next_cursor.is_empty());
    let second = app
        .list_orders(
            &customer.ctx,
            ListOrdersRequest {
                page_size: 2,
                cursor: first.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        second.orders.iter().map(|o| &o.id).collect::<Vec<_>>(),
        [&placed[2]]
    );
    assert!(second.next_cursor.is_empty());
    // Lists carry no lines or history.
    assert!(first.orders[0].history.is_empty());
    // A cursor that is not one is named.
    let error = expect_error(
        app.list_orders(
            &customer.ctx,
            ListOrdersRequest {
                cursor: "garbage".into(),
                ..Default::default()
            },
        )
        .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["cursor"]);
    app.stop().await;
}
