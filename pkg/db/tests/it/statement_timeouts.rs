//! Statements nobody waits for any more are cancelled by PostgreSQL: the pool's default
//! `statement_timeout`, and a transaction bounded by the time its caller has left.

use std::time::Duration;

use db::postgres::{PoolSettings, begin_within, is_statement_timeout};

use crate::postgres::MIGRATOR;

async fn pool(statement_timeout: Duration) -> sqlx::PgPool {
    telemetry::init_for_tests();
    let database = testkit::fresh_database().await.expect("test cluster");
    let settings = PoolSettings {
        // One connection, so a later transaction reuses the one a test bounded.
        max_connections: 1,
        statement_timeout,
    };
    db::postgres::connect_with(database.url(), &settings, &MIGRATOR)
        .await
        .expect("connect")
}

async fn statement_timeout_setting(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_run_with_the_configured_statement_timeout() {
    let pool = pool(Duration::from_millis(300)).await;

    assert_eq!(statement_timeout_setting(&pool).await, "300ms");
    let error = sqlx::query("SELECT pg_sleep(30)")
        .execute(&pool)
        .await
        .expect_err("a statement longer than the pool's timeout is cancelled");
    assert!(is_statement_timeout(&error), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_statement_timeout_is_the_default_request_budget() {
    telemetry::init_for_tests();
    let database = testkit::fresh_database().await.expect("test cluster");
    let pool = db::postgres::connect(database.url(), 1, &MIGRATOR)
        .await
        .expect("connect");

    assert_eq!(statement_timeout_setting(&pool).await, "10s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_callers_budget_is_cancelled_with_a_clear_error() {
    let pool = pool(Duration::from_secs(10)).await;

    let mut tx = begin_within(&pool, Duration::from_millis(200))
        .await
        .expect("begin");
    let error = sqlx::query("SELECT pg_sleep(30)")
        .execute(&mut *tx)
        .await
        .expect_err("a statement longer than the budget is cancelled");

    assert!(is_statement_timeout(&error), "{error}");
    assert!(
        error.to_string().contains("statement timeout"),
        "PostgreSQL says why: {error}"
    );
    drop(tx);
    // The bound was the transaction's alone: the connection is back to the pool's default.
    assert_eq!(statement_timeout_setting(&pool).await, "10s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_within_the_budget_commits() {
    let pool = pool(Duration::from_secs(10)).await;
    sqlx::query("CREATE TABLE notes (body text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();

    let mut tx = begin_within(&pool, Duration::from_secs(5))
        .await
        .expect("begin");
    assert_eq!(
        sqlx::query_scalar::<_, String>("SHOW statement_timeout")
            .fetch_one(&mut *tx)
            .await
            .unwrap(),
        "5s"
    );
    sqlx::query("INSERT INTO notes (body) VALUES ('kept')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_fails_the_first_statement_instead_of_lifting_the_bound() {
    let pool = pool(Duration::from_secs(10)).await;

    // Zero would mean "no timeout" to PostgreSQL; a spent budget must not.
    let mut tx = begin_within(&pool, Duration::ZERO).await;
    let error = match &mut tx {
        Ok(tx) => sqlx::query("SELECT pg_sleep(30)")
            .execute(&mut **tx)
            .await
            .expect_err("nothing is left of the budget"),
        Err(error) => panic!("begin failed instead: {error}"),
    };
    assert!(is_statement_timeout(&error), "{error}");
}
