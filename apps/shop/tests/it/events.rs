//! Domain events: each change is published once, through the outbox, after it commits.

use api::shop::events::{SHOP_CREATED, SHOP_STATUS_CHANGED, SHOP_UPDATED};
use api::shop::{ShopCreated, ShopStatusChanged, ShopUpdated, UpdateShopRequest};
use async_nats::jetstream::message::StreamMessage;
use events::headers;

use crate::helpers::{TestApp, User, admin, shop};

fn header(message: &StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_a_shop_is_published_once() {
    let app = TestApp::spawn().await;
    let seller = User::seller();
    let opened = app.open(&seller, shop("Evented")).await;
    let updated = app
        .client
        .update_shop(
            &seller.ctx(),
            &UpdateShopRequest {
                id: opened.id.clone(),
                description: Some("Now with events.".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let approver = admin();
    let approved = app
        .client
        .approve_shop(
            &approver,
            &api::shop::ApproveShopRequest {
                id: opened.id.clone(),
            },
        )
        .await
        .unwrap();
    // Approving again changes nothing, and publishes nothing.
    app.approve(&opened.id).await.unwrap();

    let created = app.published(&SHOP_CREATED, 1).await;
    assert_eq!(
        created[0].subject.as_str(),
        events::names::subject(&SHOP_CREATED, &opened.id).unwrap()
    );
    assert_eq!(header(&created[0], headers::PRODUCER), "shop");
    assert_eq!(header(&created[0], headers::AGGREGATE_ID), opened.id);
    let event: ShopCreated = serde_json::from_slice(&created[0].payload).unwrap();
    assert_eq!(event.shop.unwrap(), opened);

    let updates = app.published(&SHOP_UPDATED, 1).await;
    let event: ShopUpdated = serde_json::from_slice(&updates[0].payload).unwrap();
    assert_eq!(event.shop.unwrap(), updated);

    let changes = app.published(&SHOP_STATUS_CHANGED, 1).await;
    let event: ShopStatusChanged = serde_json::from_slice(&changes[0].payload).unwrap();
    assert_eq!(event.shop.unwrap(), approved);
    assert_eq!(event.previous_status, "pending");
    assert_eq!(
        event.changed_by,
        approver.principal().unwrap().user_id,
        "the admin who approved it"
    );

    // Everything is published, and nothing twice.
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT event_name, published_at IS NOT NULL FROM events_outbox ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    all_published(&app).await;
    assert_eq!(app.events_of(&SHOP_STATUS_CHANGED).await.len(), 1);
    assert_eq!(app.events_of(&SHOP_CREATED).await.len(), 1);
    app.stop().await;
}

/// Waits until the relay has marked every outbox row published.
async fn all_published(app: &TestApp) {
    let started = std::time::Instant::now();
    loop {
        let unpublished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events_outbox WHERE published_at IS NULL")
                .fetch_one(app.db())
                .await
                .unwrap();
        if unpublished == 0 {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{unpublished} events still unpublished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_publishes_nothing() {
    let app = TestApp::spawn().await;
    let refused = app
        .client
        .create_shop(&User::customer().ctx(), &shop("Not Allowed"))
        .await;
    assert!(refused.is_err());
    let invalid = app
        .client
        .create_shop(
            &User::seller().ctx(),
            &api::shop::CreateShopRequest {
                currency: "XYZ".into(),
                ..shop("Bad Money")
            },
        )
        .await;
    assert!(invalid.is_err());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events_outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    app.stop().await;
}
