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
