//! A write whose caller gave up does not keep working in the database.

use std::time::Duration;

use rpc::ErrorCode;
use shop_service::domain::OwnerId;
use shop_service::store;

use crate::helpers::{TestApp, User, eventually, shop};

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
async fn an_opening_stuck_past_its_deadline_is_cancelled_in_the_database() {
    // The pool's own statement timeout is far off: only the request's deadline can end the wait.
    let app = TestApp::spawn_with(|config| config.postgres.statement_timeout_ms = 600_000).await;
    let seller = User::seller();
    // Another session holds the seller's lock, as a stuck opening of theirs would.
    let mut blocker = app.db().begin().await.unwrap();
    store::lock_owner(&mut blocker, OwnerId::from_uuid(seller.id))
        .await
        .unwrap();

    let ctx = seller.ctx().with_timeout(Duration::from_millis(500));
    let request = shop("Stuck");
    let (answer, ()) = tokio::join!(app.client.create_shop(&ctx, &request), async {
        eventually(
            Duration::from_secs(10),
            "the opening to wait for the lock",
            || async { waiting_for_locks(&app).await == 1 },
        )
        .await;
    });
    let error = answer.expect_err("the lock is held past the deadline");
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded, "{error:?}");

    // The lock is still held, yet the service's statement no longer waits for it.
    eventually(
        Duration::from_secs(10),
        "the opening to be cancelled",
        || async { waiting_for_locks(&app).await == 0 },
    )
    .await;
    blocker.rollback().await.unwrap();
    assert_eq!(app.stored_shops().await, 0, "nothing was opened");
    app.stop().await;
}
