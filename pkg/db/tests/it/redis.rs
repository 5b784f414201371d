use std::time::{Duration, Instant};

#[tokio::test]
async fn connect_and_check_against_a_live_server() {
    let server = testkit::RedisServer::start().await.unwrap();
    let mut conn = db::redis::connect(server.url()).await.expect("connect");

    let echoed: String = ::redis::cmd("ECHO")
        .arg("hello")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(echoed, "hello");
    let check = db::redis::check(conn);
    assert_eq!(check.name(), "redis");
    assert_eq!(check.check().await, Ok(()));

    drop(server);
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), check.check())
        .await
        .expect("the check answers while Redis is down");
    assert!(outcome.is_err(), "the check fails once Redis is gone");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_missing_server_fails_start_up_quickly_without_printing_the_password() {
    let port = crate::unused_port();
    let url = format!("redis://:hunter2secret@127.0.0.1:{port}");

    let started = Instant::now();
    let error = db::redis::connect(&url)
        .await
        .expect_err("nothing listens there");
    let message = format!("{error:#}");

    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
}

#[tokio::test]
async fn rediss_urls_connect_over_tls_verified_against_the_given_ca() {
    telemetry::init_for_tests();
    let server = testkit::RedisServer::start_tls().await.unwrap();
    assert!(server.url().starts_with("rediss://"));
    let ca = server.ca_certificate().expect("a TLS server has a CA");

    let client = db::redis::client(server.url(), Some(ca)).expect("a TLS client");
    let mut conn = db::redis::connect_client(client)
        .await
        .expect("connecting over TLS");

    let echoed: String = ::redis::cmd("ECHO")
        .arg("over tls")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(echoed, "over tls");
}

#[tokio::test]
async fn a_tls_server_whose_ca_is_not_trusted_is_refused() {
    telemetry::init_for_tests();
    let server = testkit::RedisServer::start_tls().await.unwrap();

    // The system's roots never signed the test CA.
    let error = db::redis::connect(server.url())
        .await
        .expect_err("an unknown CA must not be trusted");

    let message = format!("{error:#}");
    assert!(
        message.to_lowercase().contains("certificate") || message.contains("UnknownIssuer"),
        "{message}"
    );
}

#[tokio::test]
async fn insecure_rediss_urls_accept_a_self_signed_server() {
    telemetry::init_for_tests();
    let server = testkit::RedisServer::start_tls().await.unwrap();

    let mut conn = db::redis::connect(&format!("{}/#insecure", server.url()))
        .await
        .expect("#insecure skips verification");

    let pong: String = ::redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_connection_starts_without_the_server_and_recovers_when_it_comes() {
    telemetry::init_for_tests();
    let mut server = testkit::RedisServer::start().await.unwrap();
    server.stop();
    let client = db::redis::client(server.url(), None).unwrap();

    let conn = db::redis::connect_in_background(client).expect("no server needed to start");
    let check = db::redis::check(conn.clone());
    assert!(check.check().await.is_err(), "reported as down meanwhile");

    server.restart().await.unwrap();
    let started = Instant::now();
    while check.check().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the connection never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = conn;
    let pong: String = ::redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}
