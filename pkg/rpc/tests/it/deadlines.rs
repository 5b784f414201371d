//! Deadlines travel with the request: an absolute `Emporium-Deadline` counts the time a
//! request waited in a queue, and the service's own maximum bounds what a caller may ask.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;
use rpc::{Context, ErrorCode, Limits, headers};

use crate::support::*;

fn unix_millis_in(offset: Duration) -> u64 {
    (SystemTime::now() + offset)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn with_deadline(unix_millis: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(headers::DEADLINE, unix_millis.to_string().as_str());
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_deadline_passed_in_the_queue_is_answered_without_running_its_handler() {
    let metrics = telemetry::metrics();
    let limits = Limits {
        max_in_flight_per_endpoint: 1,
        ..Limits::default()
    };
    let (service, _running) = TestService::start_with(limits).await;

    // The first request holds the endpoint's only slot until the gate opens.
    let rpc = service.rpc.clone();
    let first = tokio::spawn(async move {
        rpc.call_raw(
            GATE.subject,
            HeaderMap::new(),
            Bytes::from_static(br#"{"text":"first"}"#),
            Duration::from_secs(30),
        )
        .await
    });
    while service.gauge.entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The second waits behind it while its deadline passes. Its caller waits far longer than
    // that, so the answer it gets is the service's, not its own timeout.
    let deadline = unix_millis_in(Duration::from_millis(200));
    let rpc = service.rpc.clone();
    let second = tokio::spawn(async move {
        rpc.call_raw(
            GATE.subject,
            with_deadline(deadline),
            Bytes::from_static(br#"{"text":"second"}"#),
            Duration::from_secs(30),
        )
        .await
    });
    while unix_millis_in(Duration::ZERO) <= deadline + 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.gauge.gate.add_permits(1);

    first.await.unwrap().expect("the first request is served");
    let error = second.await.unwrap().unwrap_err();
    assert_eq!(error.code(), ErrorCode::DeadlineExceeded, "{error}");
    assert!(
        error.message().contains("taken from the queue"),
        "the service answered, not the caller's own timeout: {error}"
    );
    assert_eq!(
        service.gauge.entered.load(Ordering::SeqCst),
        1,
        "the expired request's handler never ran"
    );
    let rendered = metrics.render();
    let expired = rendered
        .lines()
        .find_map(|line| {
            line.strip_prefix(r#"rpc_server_requests_expired_total{service="echo",method="gate"}"#)
        })
        .and_then(|value| value.trim().parse::<f64>().ok());
    assert!(expired.is_some_and(|n| n >= 1.0), "{rendered}");
}

#[tokio::test]
async fn a_handler_gets_the_callers_deadline_held_to_the_services_maximum() {
    let limits = Limits {
        default_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let (service, _running) = TestService::start_with(limits).await;
    let remaining_ms = |reply: Echo| reply.text.parse::<u64>().expect("milliseconds");

    // A deadline a day away is held to the service's two seconds.
    let reply = service
        .rpc
        .call_raw(
            REMAINING.subject,
            with_deadline(unix_millis_in(Duration::from_secs(86_400))),
            Bytes::from_static(b"{}"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let reply: Echo = serde_json::from_slice(&reply.payload).unwrap();
    assert!(remaining_ms(reply) <= 2_000);

    // A typed call carries its context's deadline.
    let ctx = Context::background().with_timeout(Duration::from_millis(1_500));
    let reply = service
        .rpc
        .call::<Remaining>(&ctx, &echo(""))
        .await
        .unwrap();
    assert!(remaining_ms(reply) <= 1_500);

    // A caller that sends no deadline gets the service's.
    let reply = service
        .rpc
        .call_raw(
            REMAINING.subject,
            HeaderMap::new(),
            Bytes::from_static(b"{}"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let reply: Echo = serde_json::from_slice(&reply.payload).unwrap();
    assert!(remaining_ms(reply) <= 2_000);
}
