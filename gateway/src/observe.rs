//! Request ids, the request span and the HTTP metrics.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

/// The route label of a request no route matched: raw paths would make one time series per
/// URL a scanner tries.
const UNMATCHED: &str = "unmatched";

/// New request ids are UUIDv7: unique, and sortable by time in logs.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn route_of<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned())
}

/// The span of one HTTP request: method, route template and request id now, status and
/// latency when the response is ready.
pub fn make_span<B>(request: &axum::http::Request<B>) -> Span {
    let route = route_of(request);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "http.request",
        otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        request_id = %request_id,
        http.response.status_code = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

pub fn on_response<B>(response: &axum::http::Response<B>, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    span.record("http.response.status_code", status);
    span.record("latency_ms", latency_ms);
    tracing::info!(status, latency_ms, "request served");
}

/// Counts every request by route template, method and status, and times it.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(&request);
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "http_requests_total",
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "route" => route,
        "method" => method
    )
    .record(started.elapsed().as_secs_f64());
    response
}
