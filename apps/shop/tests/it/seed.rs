//! The demo shop.

use api::shop::events::SHOP_CREATED;
use shop_service::seed::{DEMO_SHOP_NAME, seed_demo_shop};
use vocab::demo;

use crate::helpers::{TestApp, anonymous};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_again_adds_nothing_and_keeps_changes() {
    let app = TestApp::spawn_with(|config| config.seed_demo_shop = true).await;

    // A second replica starting with the same flag against the same database.
    let second = app.start_replica().await;
    assert!(
        !seed_demo_shop(app.db()).await.unwrap(),
        "a third run adds nothing"
    );

    let shop = app
        .get(&anonymous(), demo::DEMO_SHOP_SLUG)
        .await
        .expect("the demo shop is public");
    assert_eq!(shop.id, demo::DEMO_SHOP_ID);
    assert_eq!(shop.owner_id, demo::DEMO_SELLER_ID);
    assert_eq!(shop.name, DEMO_SHOP_NAME);
    assert_eq!(shop.currency, demo::DEMO_SHOP_CURRENCY);
    assert_eq!(shop.contact_email, demo::DEMO_SELLER_EMAIL);
    assert_eq!(shop.status, "active");
    assert_eq!(app.stored_shops().await, 1);
    let created = app.published(&SHOP_CREATED, 1).await;
    assert_eq!(created.len(), 1);
    let outbox_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events_outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(
        outbox_rows, 1,
        "one shop.created, from the first seeding only"
    );

    // A change made since survives seeding.
    sqlx::query("UPDATE shops SET name = 'Renamed Demo' WHERE id = $1::uuid")
        .bind(demo::DEMO_SHOP_ID)
        .execute(app.db())
        .await
        .unwrap();
    assert!(!seed_demo_shop(app.db()).await.unwrap());
    assert_eq!(
        app.get(&anonymous(), demo::DEMO_SHOP_ID)
            .await
            .unwrap()
            .name,
        "Renamed Demo"
    );
    second.stop().await;
    app.stop().await;
}
