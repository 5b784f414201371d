use std::time::Duration;

use telemetry::{LogFormat, TelemetryArgs};
use testkit::{OtlpReceiver, SpanKind};

// This is the only test in this binary that installs the global subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_and_flushed_when_the_guard_drops() {
    let collector = OtlpReceiver::start()
        .await
        .expect("starting the OTLP receiver");
    let args = TelemetryArgs {
        log_format: LogFormat::Json,
        log_filter: "info".to_owned(),
        otlp_endpoint: Some(collector.endpoint()),
    };
    let guard = telemetry::init("telemetry-it-service", &args).expect("first init succeeds");
    assert!(
        telemetry::init("telemetry-it-service", &args).is_err(),
        "a second init is refused"
    );

    {
        let span = tracing::info_span!("reserve_stock_for_order");
        let _entered = span.enter();
        tracing::info!("inside the exported span");
    }
    // Request spans are DEBUG, below the log filter, and still exported.
    tracing::debug_span!(
        target: telemetry::REQUEST_TARGET,
        "rpc.server",
        otel.name = "process test.exported_request",
        otel.kind = "server",
        messaging.system = "nats",
    )
    .in_scope(|| {});

    // Shutting the exporter down blocks until the last batch is sent to the collector, which
    // runs on this runtime, so it happens off the runtime's threads.
    tokio::time::timeout(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || drop(guard)),
    )
    .await
    .expect("dropping the guard finishes")
    .unwrap();

    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let exported = spans
        .iter()
        .find(|s| s.name == "reserve_stock_for_order")
        .unwrap_or_else(|| panic!("the span was not exported; got {names:?}"));
    assert_eq!(
        exported.service_name, "telemetry_it",
        "as NATS subjects name it"
    );
    assert_eq!(
        exported.service_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(exported.kind, SpanKind::Internal);
    assert!(exported.is_root());
    assert_eq!(exported.trace_id.len(), 32);
    let request = spans
        .iter()
        .find(|s| s.name == "process test.exported_request")
        .unwrap_or_else(|| panic!("the DEBUG request span was not exported; got {names:?}"));
    assert_eq!(request.kind, SpanKind::Server, "otel.kind is the span kind");
    assert_eq!(request.attribute("messaging.system"), Some("nats"));
}
