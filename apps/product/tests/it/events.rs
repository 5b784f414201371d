//! Domain events: every change is published once, through the outbox, with its headers.

use std::time::Duration;

use api::product::events::{
    INVENTORY_COMMITTED, INVENTORY_RELEASED, INVENTORY_RESERVED, INVENTORY_RESTOCKED,
    PRODUCT_CREATED, PRODUCT_UPDATED,
};
use api::product::{
    CommitReservationRequest, CreateProductRequest, InventoryCommitted, InventoryReleased,
    InventoryReserved, InventoryRestocked, ProductCreated, ProductUpdated,
    ReleaseReservationRequest, RestockReservationRequest, UpdateProductRequest,
};
use async_nats::jetstream::message::StreamMessage;
use events::headers;
use uuid::Uuid;

use crate::helpers::{TestApp, admin, anonymous, item, product};

fn header(message: &StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_product_publishes_exactly_one_product_created_event() {
    let app = TestApp::spawn().await;
    let created = app
        .create_product(CreateProductRequest {
            initial_stock: 7,
            ..product("Evented Widget")
        })
        .await;

    let messages = app.published(&PRODUCT_CREATED, 1).await;
    // Well past the relay's poll interval: still one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages_later = app.events_of(&PRODUCT_CREATED).await;
    assert_eq!(messages_later.len(), 1, "exactly one event");
    let message = &messages[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&PRODUCT_CREATED, &created.id).unwrap()
    );
    let event_id = header(message, headers::MSG_ID);
    assert!(Uuid::parse_str(&event_id).is_ok(), "{event_id}");
    assert_eq!(header(message, headers::EVENT_ID), event_id);
    assert_eq!(header(message, headers::EVENT_TYPE), "product.created");
    assert_eq!(header(message, headers::EVENT_VERSION), "1");
    assert_eq!(header(message, headers::PRODUCER), "product");
    assert_eq!(header(message, headers::AGGREGATE_ID), created.id);
    assert_eq!(header(message, headers::CONTENT_TYPE), "application/json");
    let event: ProductCreated = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event.product.unwrap(), created);
    assert_eq!(event.initial_stock, 7);

    // The outbox row is marked published.
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events_outbox WHERE published_at IS NULL")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(unpublished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_publishes_nothing() {
    let app = TestApp::spawn().await;
    let refused = app
        .client
        .create_product(
            &admin(),
            &CreateProductRequest {
                name: String::new(),
                ..product("nameless")
            },
        )
        .await;
    assert!(refused.is_err());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events_outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_published_after_the_creation_of_the_same_product() {
    let app = TestApp::spawn().await;
    let created = app.create_product(product("Renamed Widget")).await;
    app.client
        .update_product(
            &admin(),
            &UpdateProductRequest {
                id: created.id.clone(),
                name: Some("Widget, renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let updated = app.published(&PRODUCT_UPDATED, 1).await;
    let created_message = &app.published(&PRODUCT_CREATED, 1).await[0];
    assert!(
        created_message.sequence < updated[0].sequence,
        "commit order"
    );
    let event: ProductUpdated = serde_json::from_slice(&updated[0].payload).unwrap();
    assert_eq!(event.product.unwrap().name, "Widget, renamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_publish_reserved_released_and_committed() {
    let app = TestApp::spawn().await;
    let widget = app.create_product(product("Reserved Widget")).await;

    let held = Uuid::now_v7().to_string();
    app.reserve(&held, vec![item(&widget.id, 2)], 60)
        .await
        .unwrap();
    // A retry changes nothing and publishes nothing.
    app.reserve(&held, vec![item(&widget.id, 2)], 60)
        .await
        .unwrap();
    let reserved = app.published(&INVENTORY_RESERVED, 1).await;
    let message = &reserved[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&INVENTORY_RESERVED, &held).unwrap()
    );
    assert_eq!(header(message, headers::EVENT_TYPE), "inventory.reserved");
    assert_eq!(header(message, headers::AGGREGATE_ID), held);
    let event: InventoryReserved = serde_json::from_slice(&message.payload).unwrap();
    let reservation = event.reservation.unwrap();
    assert_eq!(reservation.status, "held");
    assert_eq!(reservation.items, vec![item(&widget.id, 2)]);

    app.client
        .release_reservation(
            &anonymous(),
            &ReleaseReservationRequest {
                reservation_id: held.clone(),
            },
        )
        .await
        .unwrap();
    let released = app.published(&INVENTORY_RELEASED, 1).await;
    let event: InventoryReleased = serde_json::from_slice(&released[0].payload).unwrap();
    assert_eq!(event.reservation.unwrap().status, "released");

    let sold = Uuid::now_v7().to_string();
    app.reserve(&sold, vec![item(&widget.id, 1)], 60)
        .await
        .unwrap();
    app.client
        .commit_reservation(
            &anonymous(),
            &CommitReservationRequest {
                reservation_id: sold.clone(),
            },
        )
        .await
        .unwrap();
    let committed = app.published(&INVENTORY_COMMITTED, 1).await;
    let event: InventoryCommitted = serde_json::from_slice(&committed[0].payload).unwrap();
    assert_eq!(event.reservation.unwrap().reservation_id, sold);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.events_of(&INVENTORY_RESERVED).await.len(), 2);
    assert_eq!(app.events_of(&INVENTORY_RELEASED).await.len(), 1);
    assert_eq!(app.events_of(&INVENTORY_COMMITTED).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restock_publishes_inventory_restocked_once() {
    let app = TestApp::spawn().await;
    let widget = app.create_product(product("Returned Widget")).await;
    let reservation_id = Uuid::now_v7().to_string();
    app.reserve(&reservation_id, vec![item(&widget.id, 2)], 60)
        .await
        .unwrap();
    app.client
        .commit_reservation(
            &anonymous(),
            &CommitReservationRequest {
                reservation_id: reservation_id.clone(),
            },
        )
        .await
        .unwrap();
    let request = RestockReservationRequest {
        reservation_id: reservation_id.clone(),
    };
    app.client
        .restock_reservation(&anonymous(), &request)
        .await
        .unwrap();
    // A retry changes nothing and publishes nothing.
    app.client
        .restock_reservation(&anonymous(), &request)
        .await
        .unwrap();

    let restocked = app.published(&INVENTORY_RESTOCKED, 1).await;
    let message = &restocked[0];
    assert_eq!(
        message.subject.as_str(),
        events::names::subject(&INVENTORY_RESTOCKED, &reservation_id).unwrap()
    );
    assert_eq!(header(message, headers::EVENT_TYPE), "inventory.restocked");
    assert_eq!(header(message, headers::AGGREGATE_ID), reservation_id);
    let event: InventoryRestocked = serde_json::from_slice(&message.payload).unwrap();
    let reservation = event.reservation.unwrap();
    assert_eq!(reservation.status, "restocked");
    assert_eq!(reservation.items, vec![item(&widget.id, 2)]);
    let committed = &app.published(&INVENTORY_COMMITTED, 1).await[0];
    assert!(committed.sequence < message.sequence, "commit order");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.events_of(&INVENTORY_RESTOCKED).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reservation_publishes_inventory_expired() {
    let app = TestApp::spawn().await;
    let widget = app.create_product(product("Expiring Widget")).await;
    let reservation = Uuid::now_v7().to_string();
    app.reserve(&reservation, vec![item(&widget.id, 1)], 1)
        .await
        .unwrap();
    let expired = app
        .published(&api::product::events::INVENTORY_EXPIRED, 1)
        .await;
    let event: api::product::InventoryExpired =
        serde_json::from_slice(&expired[0].payload).unwrap();
    assert_eq!(event.reservation_id, reservation);
}
