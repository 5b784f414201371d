//! Request ids, the request span, the HTTP metrics and the log lines of failed requests.
//!
//! Everything here runs on every request, so it is kept cheap (the logging policy is in the
//! `telemetry` crate's documentation):
//! - The `http.request` span and the "request served" line are DEBUG under
//!   [`telemetry::REQUEST_TARGET`]: at the usual `info` filter they are not built or formatted,
//!   unless a trace exporter is configured, which still gets the span.
//! - A 5xx is logged at WARN and a slow request at INFO by [`record_metrics`], with method,
//!   route, status, latency and request id in the line itself; 4xx answers are the client's
//!   business and are only in the DEBUG line.
//! - The metric handles of a route and method are made once and kept, instead of building and
//!   looking up a label set per request. The series (names and labels) are the same.
//! - Labels take known values only, so no client can grow the number of series: the route is
//!   the matched route template or `unmatched`, the method one of the methods HTTP defines
//!   or `other`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

/// The route label of a request no route matched: raw paths would make one time series per
/// URL a scanner tries.
const UNMATCHED: &str = "unmatched";
/// The method label of a request with a method HTTP does not define (any token is a valid
/// method, so raw methods would make one series per token a client makes up).
const OTHER_METHOD: &str = "other";

/// The method as a label: one of a fixed set.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

/// A request that takes at least this long is logged at INFO even when it succeeds.
pub const SLOW_REQUEST: Duration = Duration::from_secs(1);

const REQUESTS_TOTAL: &str = "http_requests_total";
const REQUEST_DURATION: &str = "http_request_duration_seconds";

/// New request ids are UUIDv7: unique, and sortable by time in logs.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn route_of<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// The span of one HTTP request, after the HTTP semantic conventions: named
/// `{method} {route template}` (`POST /api/v1/orders/checkout`; the method alone when no route
/// matched, `HTTP` for a method HTTP does not define), kind server, with `http.request.method`,
/// `http.route`, `url.path`, `url.scheme` and the request id now, and the status (plus
/// `error.type` and an error status on a 5xx) and latency when the response is ready. DEBUG:
/// the field values are only computed when the span is wanted (a `debug` log filter for
/// [`telemetry::REQUEST_TARGET`], or an exporter).
pub fn make_span<B>(request: &axum::http::Request<B>) -> Span {
    let method = match method_label(request.method()) {
        OTHER_METHOD => "_OTHER",
        known => known,
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    tracing::debug_span!(
        target: telemetry::REQUEST_TARGET,
        "http.request",
        otel.name = %span_name(method, route),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        url.scheme = request.uri().scheme_str().unwrap_or("http"),
        request_id = %request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

/// `{method} {route}`, the method alone without a route, `HTTP` for a made-up method.
fn span_name(method: &str, route: Option<&str>) -> String {
    match (method, route) {
        ("_OTHER", _) => "HTTP".to_owned(),
        (method, Some(route)) => format!("{method} {route}"),
        (method, None) => method.to_owned(),
    }
}

pub fn on_response<B>(response: &axum::http::Response<B>, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    span.record("http.response.status_code", status);
    span.record("latency_ms", latency_ms);
    if response.status().is_server_error() {
        span.record("error.type", status);
        span.record("otel.status_code", "ERROR");
    }
    tracing::debug!(target: telemetry::REQUEST_TARGET, status, latency_ms, "request served");
}

/// Counts every request by route template, method and status, and times it; logs the ones
/// that failed on our side (5xx) or were slow.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let metrics = RouteMetrics::of(route_of(&request), method_label(request.method()));
    let request_id = request.headers().get("x-request-id").cloned();
    let response = next.run(request).await;
    let latency = started.elapsed();
    let status = response.status();
    metrics.record(status, latency);
    log_outcome(&metrics, status, latency, request_id.as_ref());
    response
}

fn log_outcome(
    metrics: &RouteMetrics,
    status: StatusCode,
    latency: Duration,
    request_id: Option<&HeaderValue>,
) {
    if !status.is_server_error() && latency < SLOW_REQUEST {
        return;
    }
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let request_id = request_id.and_then(|v| v.to_str().ok()).unwrap_or("");
    let (method, route, status) = (metrics.method, &metrics.route, status.as_u16());
    if (500..600).contains(&status) {
        tracing::warn!(
            method,
            route,
            status,
            latency_ms,
            request_id,
            "request failed"
        );
    } else {
        tracing::info!(
            method,
            route,
            status,
            latency_ms,
            request_id,
            "slow request"
        );
    }
}

/// The metric handles of one route template and method. A handle points at its series, so
/// recording through it skips hashing the labels and the registry lookup of `counter!`.
struct RouteMetrics {
    route: String,
    method: &'static str,
    duration: metrics::Histogram,
    /// One counter per status seen so far (a handful), made on first use so that a status
    /// that never happened has no series.
    requests: RwLock<Vec<(StatusCode, metrics::Counter)>>,
}

/// Route template → method label → handles. Bounded like the series: routes come from the
/// router (plus "unmatched"), methods from a fixed set (plus "other").
type RouteTable = HashMap<String, HashMap<&'static str, Arc<RouteMetrics>>>;

/// Every gateway in the process records into the one global recorder, so one table serves them
/// all.
static ROUTES: LazyLock<RwLock<RouteTable>> = LazyLock::new(RwLock::default);

impl RouteMetrics {
    fn of(route: &str, method: &'static str) -> Arc<Self> {
        let known = ROUTES
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
            .and_then(|methods| methods.get(method))
            .cloned();
        if let Some(metrics) = known {
            return metrics;
        }
        ROUTES
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_default()
            .entry(method)
            .or_insert_with(|| Arc::new(Self::new(route, method)))
            .clone()
    }

    fn new(route: &str, method: &'static str) -> Self {
        let route = route.to_owned();
        Self {
            duration: metrics::histogram!(
                REQUEST_DURATION,
                "route" => route.clone(),
                "method" => method
            ),
            requests: RwLock::default(),
            route,
            method,
        }
    }

    fn record(&self, status: StatusCode, latency: Duration) {
        self.counter(status).increment(1);
        self.duration.record(latency.as_secs_f64());
    }

    fn counter(&self, status: StatusCode) -> metrics::Counter {
        let find = |requests: &[(StatusCode, metrics::Counter)]| {
            requests
                .iter()
                .find(|(seen, _)| *seen == status)
                .map(|(_, counter)| counter.clone())
        };
        if let Some(counter) = find(&self.requests.read().unwrap_or_else(PoisonError::into_inner)) {
            return counter;
        }
        let mut requests = self
            .requests
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = find(&requests) {
            return counter;
        }
        let counter = metrics::counter!(
            REQUESTS_TOTAL,
            "route" => self.route.clone(),
            "method" => self.method,
            "status" => status.as_u16().to_string()
        );
        requests.push((status, counter.clone()));
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_fixed_set_are_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "PROPFIND", "X-ANYTHING-1234"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }

    #[test]
    fn span_names_are_the_method_and_route_template() {
        assert_eq!(
            span_name("POST", Some("/api/v1/orders/checkout")),
            "POST /api/v1/orders/checkout"
        );
        assert_eq!(span_name("GET", None), "GET");
        assert_eq!(span_name("_OTHER", Some("/api/v1/products")), "HTTP");
    }

    #[test]
    fn handles_are_made_once_per_route_and_method() {
        let rendered = telemetry::metrics();
        let first = RouteMetrics::of("/api/v1/observe-test/{id}", "GET");
        let again = RouteMetrics::of("/api/v1/observe-test/{id}", "GET");
        let other = RouteMetrics::of("/api/v1/observe-test/{id}", "DELETE");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(
            (first.route.as_str(), first.method),
            ("/api/v1/observe-test/{id}", "GET")
        );
        assert_eq!(other.method, "DELETE");

        first.record(StatusCode::OK, Duration::from_millis(1));
        first.record(StatusCode::OK, Duration::from_millis(1));
        first.record(StatusCode::NOT_FOUND, Duration::from_millis(1));
        let statuses: Vec<StatusCode> = first
            .requests
            .read()
            .unwrap()
            .iter()
            .map(|(status, _)| *status)
            .collect();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::NOT_FOUND]);

        // The series are the ones `counter!` with these labels always made.
        let rendered = rendered.render();
        let labels = r#"route="/api/v1/observe-test/{id}",method="GET""#;
        for line in [
            format!(r#"http_requests_total{{{labels},status="200"}} 2"#),
            format!(r#"http_requests_total{{{labels},status="404"}} 1"#),
            format!("http_request_duration_seconds_count{{{labels}}} 3"),
        ] {
            assert!(
                rendered.lines().any(|l| l == line),
                "no {line} in {rendered}"
            );
        }
    }
}
