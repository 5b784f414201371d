//! A private OTLP/HTTP trace receiver: what a collector would get from the platform's
//! processes, kept in memory for a test to read.
//!
//! [`OtlpReceiver::start`] listens on a random port of 127.0.0.1 and accepts
//! `POST /v1/traces` with a protobuf `ExportTraceServiceRequest` (the encoding the platform's
//! exporter sends); anything else is refused (415 for another content type, 400 for a body that
//! does not decode, 413 past [`MAX_BODY_BYTES`]). Point a process at it with
//! `OTEL_EXPORTER_OTLP_ENDPOINT=<endpoint()>` and read the spans with [`OtlpReceiver::spans`] or
//! [`OtlpReceiver::wait_for`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use tokio::sync::Notify;

/// The largest export request taken, in bytes (the SDK's batches are far smaller).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The kind of a span, as OTLP names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl From<i32> for Kind {
    fn from(value: i32) -> Self {
        match SpanKind::try_from(value) {
            Ok(SpanKind::Internal) => Kind::Internal,
            Ok(SpanKind::Server) => Kind::Server,
            Ok(SpanKind::Client) => Kind::Client,
            Ok(SpanKind::Producer) => Kind::Producer,
            Ok(SpanKind::Consumer) => Kind::Consumer,
            Ok(SpanKind::Unspecified) | Err(_) => Kind::Unspecified,
        }
    }
}

/// One received span with its resource's `service.name`; ids in lower-case hex (the parent
/// is empty for a root span), attribute values as text.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub service_name: String,
    /// The resource's `service.version`, when it has one.
    pub service_version: Option<String>,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: Kind,
    /// The status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// The attribute `key` as text, when the span has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }
}

#[derive(Default)]
struct Received {
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Notify,
}

/// An OTLP/HTTP receiver for traces; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    received: Arc<Received>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Listens on a random port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the OTLP receiver")?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Received::default());
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(received.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            addr,
            received,
            server,
        })
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`: `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in the order they arrived.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the spans received satisfy `done`, and returns them; after `timeout`,
    /// returns what arrived by then as the error, for the test to show.
    pub async fn wait_for(
        &self,
        mut done: impl FnMut(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<ReceivedSpan>, Vec<ReceivedSpan>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Registered before looking, so an export between the look and the wait wakes it.
            let arrived = self.received.arrived.notified();
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(spans);
            }
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn export(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-protobuf") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "only application/x-protobuf is taken",
        )
            .into_response();
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("undecodable: {error}")).into_response();
        }
    };
    let spans = flatten(request);
    received
        .spans
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(spans);
    received.arrived.notify_waiters();
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = resource.get("service.name").cloned().unwrap_or_default();
        let service_version = resource.get("service.version").cloned();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    service_version: service_version.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: Kind::from(span.kind),
                    status_code: span.status.map_or(0, |s| s.code),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    out
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(bytes)) => hex(bytes),
        Some(any_value::Value::ArrayValue(array)) => {
            let items: Vec<String> = array.values.iter().map(|v| text(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}
