//! What every request meets first: its arrival time, a request id worth keeping, the security
//! headers of every answer, and load shedding.
//!
//! - [`Arrival`] is stamped before anything else runs; the deadline services get counts from
//!   it, so time spent in the gateway (and in queues after it) is part of the budget.
//! - A client's `X-Request-Id` is kept only when it is short plain text; otherwise a new one
//!   is made, so a client cannot make the gateway log, echo and forward kilobytes of it.
//! - Every answer says `nosniff`, `no-referrer`, may not be framed, and carries a content
//!   security policy: the API's allows nothing, while the docs page and the web app's pages
//!   and files set their own ([`APP_CONTENT_SECURITY_POLICY`]), which is kept. HSTS is sent
//!   only when the gateway knows clients came over HTTPS.
//! - At most `--max-in-flight` requests are handled at once; past that the answer is 503 with
//!   `Retry-After` straight away (counted in [`SHED_TOTAL`]), so overload does not turn into
//!   an unbounded queue of requests that will all time out. Health probes are never shed.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// When the request arrived, as the first layer saw it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival(pub Instant);

/// Stamps [`Arrival`] on the request.
pub async fn stamp_arrival(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Arrival(Instant::now()));
    next.run(request).await
}

/// The longest client request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client's `X-Request-Id` that is empty, longer than [`MAX_REQUEST_ID_LEN`] or not
/// printable ASCII without spaces; the request id layer then makes a new one.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let values = request.headers().get_all(X_REQUEST_ID);
    let mut values = values.iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(only), None) => is_plain_request_id(only.as_bytes()),
        // More than one: which would be the request's?
        (Some(_), Some(_)) => false,
    };
    if !keep {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    next.run(request).await
}

const X_REQUEST_ID: &str = "x-request-id";

fn is_plain_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_REQUEST_ID_LEN && value.iter().all(u8::is_ascii_graphic)
}

/// What the security headers depend on.
#[derive(Clone, Copy, Debug)]
pub struct SecurityHeaders {
    /// Clients always come over HTTPS (`--public-tls`).
    pub public_tls: bool,
    /// A proxy of ours sets `X-Forwarded-Proto` (`--trust-forwarded-for`).
    pub trust_forwarded_proto: bool,
}

/// Clients that saw HTTPS once keep to it for a year.
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");
/// Nothing the API answers is a page: no scripts, styles, frames or anything else.
pub const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
/// The web app ([`crate::web`]): its own scripts and styles (no inline code), images of its
/// own or inline data, requests to its own origin (the API) only, and never framed.
pub const APP_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// Whether the client's request came over HTTPS, as [`security_headers`] decided it (for
/// the `Secure` attribute of cookies).
#[derive(Clone, Copy, Debug)]
pub struct Https(pub bool);

/// Adds the security headers to every answer; a content security policy a handler set (the
/// docs page's) is kept. Marks the request with [`Https`].
pub async fn security_headers(
    State(settings): State<SecurityHeaders>,
    mut request: Request,
    next: Next,
) -> Response {
    let https = settings.public_tls
        || (settings.trust_forwarded_proto && forwarded_proto_is_https(request.headers()));
    request.extensions_mut().insert(Https(https));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
        );
    }
    if https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

/// Whether the proxy that appended the last `X-Forwarded-Proto` entry saw HTTPS.
fn forwarded_proto_is_https(headers: &HeaderMap) -> bool {
    static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    headers
        .get_all(&X_FORWARDED_PROTO)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Requests the gateway answered 503 because it was at `--max-in-flight`.
pub const SHED_TOTAL: &str = "gateway_requests_shed_total";

/// The requests in flight, bounded.
#[derive(Clone, Debug)]
pub struct InFlight {
    permits: Arc<Semaphore>,
}

impl InFlight {
    pub fn new(max_in_flight: usize) -> Self {
        // Registered at zero, so dashboards read 0 rather than no data before the first one.
        metrics::counter!(SHED_TOTAL).increment(0);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }
}

/// Runs the request if a slot is free, or answers 503 with `Retry-After` at once. The slot is
/// held until the response is ready (not while a streamed body is sent: an open event stream
/// holds none).
pub async fn shed_load(
    State(in_flight): State<InFlight>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/health/") {
        return next.run(request).await;
    }
    let Ok(_permit) = in_flight.permits.clone().try_acquire_owned() else {
        metrics::counter!(SHED_TOTAL).increment(1);
        return ApiError::service(
            rpc::ErrorCode::Unavailable,
            "the gateway is at capacity: retry shortly",
        )
        .into_response();
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_plain_request_id(b"my-request-7"));
        assert!(is_plain_request_id(b"0190a5c2-7c1e-7b1a-9d0e-3f2a1b4c5d6e"));
        assert!(!is_plain_request_id(b""));
        assert!(!is_plain_request_id(b"with space"));
        assert!(!is_plain_request_id(b"tab\there"));
        assert!(!is_plain_request_id("caf\u{e9}".as_bytes()));
        assert!(!is_plain_request_id(&[b'x'; MAX_REQUEST_ID_LEN + 1]));
        assert!(is_plain_request_id(&[b'x'; MAX_REQUEST_ID_LEN]));
    }

    #[test]
    fn the_last_forwarded_proto_decides() {
        let mut headers = HeaderMap::new();
        assert!(!forwarded_proto_is_https(&headers));
        headers.append("x-forwarded-proto", HeaderValue::from_static("http"));
        headers.append("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(forwarded_proto_is_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(!forwarded_proto_is_https(&headers));
    }
}
