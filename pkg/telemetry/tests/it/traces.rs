use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use telemetry::{LogFormat, TelemetryArgs};

/// What an OTLP/HTTP collector received: one (path, content type, body) per export request.
type Received = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// A stand-in OpenTelemetry collector: accepts every POST and remembers it.
async fn start_collector() -> (SocketAddr, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let content_type = headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                store
                    .lock()
                    .unwrap()
                    .push((uri.path().to_owned(), content_type, body));
                axum::http::StatusCode::OK
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

// This is the only test in this binary that installs the global subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_and_flushed_when_the_guard_drops() {
    let (collector, received) = start_collector().await;
    let args = TelemetryArgs {
        log_format: LogFormat::Json,
        log_filter: "info".to_owned(),
        otlp_endpoint: Some(format!("http://{collector}")),
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
    tracing::debug_span!(target: telemetry::REQUEST_TARGET, "rpc.server.exported_request")
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

    let received = received.lock().unwrap();
    let (path, content_type, body) = received
        .iter()
        .find(|(_, _, body)| contains(body, b"reserve_stock_for_order"))
        .unwrap_or_else(|| {
            panic!(
                "no export carried the span; got {} requests",
                received.len()
            )
        });
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    assert!(contains(body, b"service.name"));
    assert!(contains(body, b"telemetry-it-service"));
    assert!(
        received
            .iter()
            .any(|(_, _, body)| contains(body, b"rpc.server.exported_request")),
        "the DEBUG request span was not exported"
    );
}
