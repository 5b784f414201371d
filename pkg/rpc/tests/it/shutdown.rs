use std::time::Duration;

use rpc::{Context, ErrorCode};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_then_stops_taking_new_ones() {
    let (service, running) = TestService::start().await;
    let rpc = service.rpc.clone();
    let in_flight = tokio::spawn(async move {
        let request = Echo {
            text: "slow".into(),
            sleep_ms: 500,
        };
        rpc.call::<Slow>(&Context::background(), &request).await
    });
    // Let the request reach the handler before shutting down.
    while service.gauge.max.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.shutdown().await.unwrap();
    let reply = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(reply.text, "slow");

    let after = service
        .rpc
        .call::<Say>(&Context::background(), &echo("late"))
        .await
        .unwrap_err();
    assert_eq!(
        after.code(),
        ErrorCode::Unavailable,
        "nobody answers once stopped"
    );
}
