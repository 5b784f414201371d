//! The product latency fault flag: with it set (as a dev stack's settings service puts it
//! into the settings bucket), reads wait that long before answering, so a caller with a
//! shorter deadline gives up; cleared, reads answer again, without a restart.

use std::time::Duration;

use api::product::GetProductRequest;
use rpc::ErrorCode;

use crate::helpers::{TestApp, anonymous, eventually, product};

async fn set_fault_flag(app: &TestApp, key: &str, version: i64, value: serde_json::Value) {
    let bucket = settings::open_bucket(&app.jetstream)
        .await
        .expect("opening the settings bucket");
    let stored = settings::Stored { version, value };
    settings::put(&bucket, &settings::Scope::Platform, key, &stored)
        .await
        .expect("putting a setting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_fault_flag_delays_reads_past_a_short_deadline_until_it_is_cleared() {
    let app = TestApp::spawn().await;
    let created = app.create_product(product("Slow lamp")).await;
    let request = GetProductRequest {
        id: created.id.clone(),
    };
    let impatient = || anonymous().with_timeout(Duration::from_secs(2));
    app.client
        .get_product(&impatient(), &request)
        .await
        .expect("off by default");

    // The longest latency the schema allows: far past any deadline below.
    let key = settings::catalogue::FAULT_PRODUCT_LATENCY_MS;
    set_fault_flag(&app, key, 1, serde_json::json!(30_000)).await;
    eventually(Duration::from_secs(15), "reads to be delayed", || async {
        app.client
            .get_product(&impatient(), &request)
            .await
            .is_err_and(|error| error.code() == ErrorCode::DeadlineExceeded)
    })
    .await;

    set_fault_flag(&app, key, 2, serde_json::json!(0)).await;
    eventually(Duration::from_secs(15), "reads to answer again", || async {
        app.client.get_product(&impatient(), &request).await.is_ok()
    })
    .await;
    app.stop().await;
}
