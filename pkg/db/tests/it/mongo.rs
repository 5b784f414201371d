//! MongoDB tests; the ones that need a server read its URL from MONGODB_URL.

use std::time::{Duration, Instant};

fn mongodb_url() -> String {
    std::env::var("MONGODB_URL").expect("MONGODB_URL is set for the ignored MongoDB tests")
}

#[tokio::test]
#[ignore = "needs MongoDB: set MONGODB_URL"]
async fn connect_pings_and_the_check_passes() {
    let client = db::mongo::connect(&mongodb_url()).await.expect("connect");
    let check = db::mongo::check(client);
    assert_eq!(check.name(), "mongodb");
    assert_eq!(check.check().await, Ok(()));
}

#[tokio::test]
async fn a_missing_server_fails_quickly_without_printing_the_password() {
    let port = crate::unused_port();
    let url = format!("mongodb://app:hunter2secret@127.0.0.1:{port}/?directConnection=true");

    let started = Instant::now();
    let error = db::mongo::connect(&url)
        .await
        .expect_err("nothing listens there");
    let message = format!("{error:#}");

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
}
