//! A write whose caller gave up does not keep working in the database.

use std::time::Duration;

use api::product::{GetProductRequest, UpdateProductRequest};
use rpc::ErrorCode;

use crate::helpers::{TestApp, admin, anonymous, eventually, product};

/// Sessions of the service's database waiting for a lock.
async fn waiting_for_locks(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(app.db())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_stuck_past_its_deadline_is_cancelled_in_the_database() {
    // The pool's own statement timeout is far off: only the request's deadline can end the wait.
    let app = TestApp::spawn_with(|config| config.postgres.statement_timeout_ms = 600_000).await;
    let created = app.create_product(product("Teapot")).await;
    // Another session holds the product's row, as a long report or a stuck script would.
    let mut blocker = app.db().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM products WHERE id = $1::uuid FOR UPDATE")
        .bind(&created.id)
        .execute(&mut *blocker)
        .await
        .unwrap();

    let request = UpdateProductRequest {
        id: created.id.clone(),
        name: Some("Renamed teapot".into()),
        ..Default::default()
    };
    let ctx = admin().with_timeout(Duration::from_millis(500));
    let (answer, ()) = tokio::join!(app.client.update_product(&ctx, &request), async {
        eventually(
            Duration::from_secs(10),
            "the update to wait for the row",
            || async { waiting_for_locks(&app).await == 1 },
        )
        .await;
    });
    let error = answer.expect_err("the row is held past the deadline");
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded, "{error:?}");

    // The row is still held, yet the service's statement no longer waits for it.
    eventually(
        Duration::from_secs(10),
        "the update to be cancelled",
        || async { waiting_for_locks(&app).await == 0 },
    )
    .await;
    blocker.rollback().await.unwrap();
    let read = app
        .client
        .get_product(&anonymous(), &GetProductRequest { id: created.id })
        .await
        .unwrap();
    assert_eq!(read.name, "Teapot");
    app.stop().await;
}
