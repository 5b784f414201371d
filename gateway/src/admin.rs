//! The gateway's own routes: health and the OpenAPI document on the public port, and on the
//! admin port (kept off the public one) health, metrics, the OpenAPI document and a page that
//! renders it.

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use redis::aio::ConnectionManager;
use serde_json::json;
use sha2::Digest as _;

/// How long a readiness check may wait for a dependency.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// The page that renders /openapi.json: one inline style and one inline script, nothing
/// loaded from elsewhere.
pub const DOCS_HTML: &str = include_str!("docs.html");

#[derive(Clone)]
struct Dependencies {
    nats: async_nats::Client,
    redis: ConnectionManager,
}

/// What the public port serves beside the API: the health probes (load balancers probe the
/// port they send traffic to) and the OpenAPI document.
pub fn public_router(nats: async_nats::Client, redis: ConnectionManager) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .with_state(Dependencies { nats, redis })
}

/// The admin port: the health probes, the Prometheus scrape, the OpenAPI document and the
/// page rendering it.
pub fn admin_router(nats: async_nats::Client, redis: ConnectionManager) -> Router {
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

/// The docs page, with a content security policy that allows exactly its own inline style
/// and script (by hash) and fetching from its own origin, and nothing else.
async fn docs() -> Response {
    (
        [(header::CONTENT_SECURITY_POLICY, DOCS_POLICY.clone())],
        Html(DOCS_HTML),
    )
        .into_response()
}

static DOCS_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = docs_content_security_policy(DOCS_HTML);
    HeaderValue::from_str(&policy).expect("a policy of ASCII hashes is a valid header value")
});

/// The policy of a page whose only code is its inline `<style>` and `<script>` elements.
pub fn docs_content_security_policy(html: &str) -> String {
    let hashes = |tag: &str| {
        inline_elements(html, tag)
            .map(|content| format!("'sha256-{}'", sha256_base64(content)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style"),
    )
}

/// The contents of every `<tag>...</tag>` element (without attributes) of `html`.
fn inline_elements<'a>(html: &'a str, tag: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = html;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let length = rest[start..].find(&close)?;
        let content = &rest[start..start + length];
        rest = &rest[start + length + close.len()..];
        Some(content)
    })
}

fn sha256_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_policy_names_the_pages_one_style_and_one_script() {
        let policy =
            docs_content_security_policy("<style>a{}</style><p>x</p><script>go()</script>");
        assert!(
            policy.contains(&format!("script-src 'sha256-{}';", sha256_base64("go()"))),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("style-src 'sha256-{}';", sha256_base64("a{}"))),
            "{policy}"
        );
        assert!(policy.starts_with("default-src 'none';"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(
            DOCS_HTML.matches("<script").count() == 1,
            "one script, inline"
        );
        assert!(
            DOCS_HTML.matches("<style").count() == 1,
            "one style, inline"
        );
    }
}
