//! A write whose caller gave up does not keep working in the database.

use std::time::Duration;

use address_service::domain::OwnerId;
use address_service::store;
use rpc::ErrorCode;

use crate::helpers::{TestApp, User, address, eventually};

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
async fn a_create_stuck_past_its_deadline_is_cancelled_in_the_database() {
    // The pool's own statement timeout is far off: only the request's deadline can end the wait.
    let app = TestApp::spawn_with(|config| config.postgres.statement_timeout_ms = 600_000).await;
    let user = User::signed_up();
    // Another session holds the user's lock, as a stuck request of theirs would.
    let mut blocker = app.db().begin().await.unwrap();
    let owner = OwnerId::parse(&user.id.to_string()).unwrap();
    store::lock_owner(&mut blocker, owner).await.unwrap();

    let ctx = user.ctx().with_timeout(Duration::from_millis(500));
    let request = address("Ada Lovelace");
    let (answer, ()) = tokio::join!(app.client.create_address(&ctx, &request), async {
        eventually(
            Duration::from_secs(10),
            "the create to wait for the lock",
            || async { waiting_for_locks(&app).await == 1 },
        )
        .await;
    });
    let error = answer.expect_err("the lock is held past the deadline");
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded, "{error:?}");

    // The lock is still held, yet the service's statement no longer waits for it.
    eventually(
        Duration::from_secs(10),
        "the create to be cancelled",
        || async { waiting_for_locks(&app).await == 0 },
    )
    .await;
    blocker.rollback().await.unwrap();
    assert_eq!(app.stored_count(&user).await, 0, "nothing was created");
    app.stop().await;
}
