use std::time::Duration;

use rpc::{Access, Context, Endpoint, Error, ErrorCode, MethodDescriptor, Service};

use crate::support::{Echo, echo};

/// A service of its own, so that no other test in this binary adds to its series.
static COUNT: MethodDescriptor = MethodDescriptor {
    service: "metered",
    method: "count",
    subject: "metered.count",
    access: Access::Public,
    request_type: "test.Echo",
    response_type: "test.Echo",
};

enum Count {}

impl rpc::Method for Count {
    type Request = Echo;
    type Response = Echo;
    const DESCRIPTOR: &'static MethodDescriptor = &COUNT;
}

fn value(rendered: &str, series: &str) -> Option<f64> {
    rendered
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_outcome_timed_and_none_is_left_in_flight() {
    let metrics = telemetry::metrics();
    let nats = testkit::NatsServer::start().await.expect("nats-server");
    let client = nats.connect().await;
    let _running = Service::new("metered", "1.0.0")
        .endpoints([Endpoint::bind::<Count, _, _>(
            |_ctx: Context, request: Echo| async move {
                if request.text.is_empty() {
                    return Err(Error::not_found("nothing to count"));
                }
                // Both ways a request is served: answered at once, or after waiting.
                if request.sleep_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(request.sleep_ms)).await;
                }
                Ok(request)
            },
        )])
        .start(client.clone())
        .await
        .expect("service starts");
    let rpc = rpc::Client::new(client);

    let ctx = Context::background();
    for request in [
        echo("a"),
        echo("b"),
        Echo {
            text: "c".into(),
            sleep_ms: 5,
        },
    ] {
        rpc.call::<Count>(&ctx, &request).await.unwrap();
    }
    for _ in 0..2 {
        let error = rpc.call::<Count>(&ctx, &echo("")).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::NotFound);
    }

    let rendered = metrics.render();
    let labels = r#"service="metered",method="count""#;
    assert_eq!(
        value(
            &rendered,
            &format!(r#"rpc_server_requests_total{{{labels},code="ok"}}"#)
        ),
        Some(3.0),
        "{rendered}"
    );
    assert_eq!(
        value(
            &rendered,
            &format!(r#"rpc_server_requests_total{{{labels},code="not_found"}}"#)
        ),
        Some(2.0),
        "{rendered}"
    );
    assert!(
        !rendered.contains(&format!(r#"{labels},code="internal""#)),
        "an outcome that never happened has no series: {rendered}"
    );
    assert_eq!(
        value(
            &rendered,
            &format!("rpc_server_request_duration_seconds_count{{{labels}}}")
        ),
        Some(5.0),
        "{rendered}"
    );
    assert_eq!(
        value(
            &rendered,
            &format!("rpc_server_requests_in_flight{{{labels}}}")
        ),
        Some(0.0),
        "{rendered}"
    );
}
