use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("tests/migrations");

/// The URL of a database on the test cluster that does not exist yet.
async fn missing_database_url(name: &str) -> String {
    telemetry::init_for_tests();
    let existing = testkit::fresh_database()
        .await
        .expect("test PostgreSQL cluster");
    let (server, _) = existing.url().rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

async fn widget_table_exists(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass('public.widgets') IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_creates_a_missing_database_and_runs_the_migrations() {
    let name = format!("store_created_{}", uuid::Uuid::new_v4().simple());
    let url = missing_database_url(&name).await;

    let pool = db::postgres::connect(&url, 2, &MIGRATOR)
        .await
        .expect("connect");

    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(current, name);
    assert!(widget_table_exists(&pool).await);
    sqlx::query("INSERT INTO widgets (widget_id, name) VALUES (1, 'sprocket')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // A restart finds the database and the applied migration, and keeps the data.
    let pool = db::postgres::connect(&url, 2, &MIGRATOR)
        .await
        .expect("reconnect");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    let widgets: i64 = sqlx::query_scalar("SELECT count(*) FROM widgets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(widgets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_names_that_need_quoting_are_created_verbatim() {
    let name = format!("Store \"Quoted\"-{}", uuid::Uuid::new_v4().simple());
    let encoded = name.replace(' ', "%20").replace('"', "%22");
    let url = missing_database_url(&encoded).await;

    let pool = db::postgres::connect(&url, 1, &MIGRATOR)
        .await
        .expect("connect");

    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(current, name);
    assert!(widget_table_exists(&pool).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_both_create_and_migrate_one_database() {
    let name = format!("store_race_{}", uuid::Uuid::new_v4().simple());
    let url = missing_database_url(&name).await;

    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { db::postgres::connect(&url, 1, &MIGRATOR).await })
        })
        .collect();
    for replica in replicas {
        let pool = replica.await.unwrap().expect("every replica connects");
        assert!(widget_table_exists(&pool).await);
    }
}

#[tokio::test]
async fn a_missing_server_fails_quickly_without_printing_the_password() {
    let port = crate::unused_port();
    let url = format!("postgres://postgres:hunter2secret@127.0.0.1:{port}/product");

    let started = Instant::now();
    let error = db::postgres::connect(&url, 1, &MIGRATOR)
        .await
        .expect_err("nothing listens there");
    let message = format!("{error:#}");

    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("product"), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
}

#[tokio::test]
async fn the_readiness_check_runs_a_query() {
    let database = testkit::fresh_database().await.unwrap();
    let pool = db::postgres::connect(database.url(), 1, &MIGRATOR)
        .await
        .unwrap();
    let check = db::postgres::check(pool.clone());
    assert_eq!(check.name(), "postgres");
    assert_eq!(check.check().await, Ok(()));

    pool.close().await;
    let failure = check.check().await.expect_err("a closed pool cannot serve");
    assert!(!failure.is_empty());
}
