//! PostgreSQL over TLS, chosen by the URL's `sslmode` and `sslrootcert`, against a test
//! cluster whose certificate comes from a private CA.

use crate::postgres::MIGRATOR;

/// `database`'s URL with `parameters` (`sslmode=...`) added.
fn with_parameters(database: &testkit::TestDatabase, parameters: &str) -> String {
    format!("{}?{parameters}", database.url())
}

async fn connection_is_encrypted(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .expect("reading pg_stat_ssl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_servers_ca_connects_encrypted() {
    telemetry::init_for_tests();
    let database = testkit::fresh_tls_database().await.expect("TLS cluster");
    let ca = database.ca_certificate().expect("a TLS database has a CA");
    let url = with_parameters(
        &database,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );

    let pool = db::postgres::connect(&url, 2, &MIGRATOR)
        .await
        .expect("connecting with verify-full");

    assert!(connection_is_encrypted(&pool).await);
    // The migrations ran over TLS too, on their own connection.
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_server_its_roots_do_not_vouch_for() {
    telemetry::init_for_tests();
    let database = testkit::fresh_tls_database().await.expect("TLS cluster");
    // No sslrootcert: the system's roots, which never signed the test CA.
    let url = with_parameters(&database, "sslmode=verify-full");

    let error = db::postgres::connect(&url, 1, &MIGRATOR)
        .await
        .expect_err("an unknown CA must not be trusted");
    let message = format!("{error:#}");

    assert!(message.contains("sslmode=verify-full"), "{message}");
    assert!(
        message.to_lowercase().contains("certificate"),
        "the cause names the certificate: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_without_verifying() {
    telemetry::init_for_tests();
    let database = testkit::fresh_tls_database().await.expect("TLS cluster");
    let url = with_parameters(&database, "sslmode=require");

    let pool = db::postgres::connect(&url, 1, &MIGRATOR)
        .await
        .expect("connecting with require");

    assert!(connection_is_encrypted(&pool).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_against_a_server_without_tls_fails_clearly() {
    telemetry::init_for_tests();
    let database = testkit::fresh_database().await.expect("test cluster");
    let url = with_parameters(&database, "sslmode=require");

    let error = db::postgres::connect(&url, 1, &MIGRATOR)
        .await
        .expect_err("the plain cluster offers no TLS");
    let message = format!("{error:#}");

    assert!(message.contains("sslmode=require"), "{message}");
    assert!(
        message.to_lowercase().contains("tls"),
        "the cause says TLS is what failed: {message}"
    );
}
