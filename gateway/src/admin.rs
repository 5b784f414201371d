//! The gateway's own routes on the API port: health, metrics, the OpenAPI document and a
//! page that renders it.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use redis::aio::ConnectionManager;
use serde_json::json;

/// How long a readiness check may wait for a dependency.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
struct Dependencies {
    nats: async_nats::Client,
    redis: ConnectionManager,
}

pub fn router(nats: async_nats::Client, redis: ConnectionManager) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .with_state(Dependencies { nats, redis })
}

async fn live() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when NATS is connected: without it no request can be served.
///
/// Redis is checked and reported too, but a Redis outage leaves the gateway ready: rate
/// limiting fails open, and taking every replica out of the load balancer because of it would
/// stop the shop instead of just the rate limits.
async fn ready(State(dependencies): State<Dependencies>) -> Response {
    let nats = match dependencies.nats.connection_state() {
        async_nats::connection::State::Connected => "ok".to_owned(),
        other => format!("error: {other}"),
    };
    let mut redis = dependencies.redis.clone();
    let redis = match tokio::time::timeout(
        CHECK_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await
    {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: no answer within 500 ms".to_owned(),
    };
    let (status, code) = match (nats == "ok", redis == "ok") {
        (true, true) => ("ok", StatusCode::OK),
        (true, false) => ("degraded", StatusCode::OK),
        (false, _) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
    };
    (
        code,
        axum::Json(json!({"status": status, "checks": {"nats": nats, "redis": redis}})),
    )
        .into_response()
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry::metrics().render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, rpc::headers::JSON)],
        crate::openapi::document(),
    )
        .into_response()
}

/// A self-contained page (no external scripts or styles) that renders /openapi.json.
async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
