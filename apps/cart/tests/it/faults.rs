//! The cart read failure fault flag: with it set (as a dev stack's settings service puts it
//! into the settings bucket), that share of cart reads fails as unavailable, and reads work
//! again once it is cleared, without a restart.

use std::time::{Duration, Instant};

use rpc::ErrorCode;

use crate::helpers::{TestApp, anonymous};

async fn set_fault_flag(app: &TestApp, key: &str, version: i64, value: serde_json::Value) {
    let bucket = settings::open_bucket(&app.jetstream)
        .await
        .expect("opening the settings bucket");
    let stored = settings::Stored { version, value };
    settings::put(&bucket, &settings::Scope::Platform, key, &stored)
        .await
        .expect("putting a setting");
}

/// Reads the cart until `done` holds for the answer; fails after 15 s.
async fn until_read(
    app: &TestApp,
    token: &str,
    what: &str,
    done: impl Fn(&Result<api::cart::Cart, rpc::Error>) -> bool,
) {
    let started = Instant::now();
    loop {
        let read = app.get(&anonymous(), token).await;
        if done(&read) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: last read {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_failure_fault_flag_fails_cart_reads_until_it_is_cleared() {
    let app = TestApp::spawn().await;
    let token = app.new_guest_cart().await;
    app.get(&anonymous(), &token).await.expect("off by default");

    let key = settings::catalogue::FAULT_CART_READ_FAILURE_PERCENT;
    set_fault_flag(&app, key, 1, serde_json::json!(100)).await;
    until_read(
        &app,
        &token,
        "reads failing",
        |read| matches!(read, Err(error) if error.code() == ErrorCode::Unavailable),
    )
    .await;
    // At 100% every read fails, and says why.
    for _ in 0..20 {
        let error = app.get(&anonymous(), &token).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::Unavailable);
        assert!(
            error.message().contains("fault flag"),
            "{}",
            error.message()
        );
    }

    set_fault_flag(&app, key, 2, serde_json::json!(0)).await;
    until_read(&app, &token, "reads working again", Result::is_ok).await;
    for _ in 0..20 {
        app.get(&anonymous(), &token).await.expect("cleared");
    }
    app.stop().await;
}
