//! The API routes: one axum route per contract route, each forwarding to its method's NATS
//! subject.
//!
//! Per request, in this order: the access rule (nothing reaches NATS for a caller who may not
//! call), the rate limit, the request message, the NATS request with the platform headers,
//! and the reply payload passed back untouched.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::Route;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use bytes::Bytes;
use rpc::Principal;
use telemetry::propagation::{TRACEPARENT, TRACESTATE, TraceHeaders};

use crate::authentication::Authenticator;
use crate::error::{ApiCode, ApiError};
use crate::message;
use crate::rate_limit::RateLimiter;

/// What every API route needs; shared by all requests behind one `Arc`.
pub struct Forwarder {
    pub rpc: rpc::Client,
    pub authenticator: Arc<Authenticator>,
    pub rate_limiter: RateLimiter,
    /// The deadline of every request; services receive what is left of it.
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub trust_forwarded_for: bool,
    /// Ends the event streams of streaming routes when the gateway shuts down.
    pub streams_end: crate::stream::Closer,
}

/// A router with every route of `routes`, several methods sharing a path.
pub fn router(routes: &'static [Route], forwarder: Forwarder) -> anyhow::Result<Router> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<Forwarder>>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for route in routes {
        if !seen.insert((route.path, route.http_method)) {
            anyhow::bail!(
                "two contract methods claim {} {}",
                route.http_method,
                route.path
            );
        }
        let filter = method_filter(route.http_method).ok_or_else(|| {
            anyhow::anyhow!(
                "route {} {} of {}: unsupported HTTP method",
                route.http_method,
                route.path,
                route.descriptor.subject
            )
        })?;
        let handler = move |State(forwarder): State<Arc<Forwarder>>, request: Request| async move {
            forwarder.forward(route, request).await
        };
        let method_router = by_path.remove(route.path).unwrap_or_default();
        by_path.insert(route.path, method_router.merge(on(filter, handler)));
    }
    let mut router = Router::new();
    for (path, method_router) in by_path {
        router = router.route(path, method_router);
    }
    Ok(router.with_state(Arc::new(forwarder)))
}

fn method_filter(method: &str) -> Option<MethodFilter> {
    Some(match method {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        _ => return None,
    })
}

impl Forwarder {
    async fn forward(&self, route: &'static Route, request: Request) -> Response {
        let started = Instant::now();
        let (mut parts, body) = request.into_parts();
        let client_ip = self.client_ip(&parts);
        let principal = match self
            .authenticator
            .authorize(&parts.headers, route.descriptor.access)
            .await
        {
            Ok(principal) => principal,
            // A refused request spends a token of the client's address too, so guessing
            // tokens is rate limited like everything else.
            Err(refused) => {
                let decision = self
                    .rate_limiter
                    .check(route.rate_class, &format!("ip:{client_ip}"))
                    .await;
                let mut response = decision.to_error().unwrap_or(refused).into_response();
                decision.apply_headers(response.headers_mut());
                return response;
            }
        };

        let client = match &principal {
            Some(principal) => format!("user:{}", principal.user_id),
            None => format!("ip:{client_ip}"),
        };
        let decision = self.rate_limiter.check(route.rate_class, &client).await;
        let mut response = match decision.to_error() {
            Some(denied) => denied.into_response(),
            None => match self
                .call(route, &mut parts, body, principal, client_ip, started)
                .await
            {
                Ok(response) => response,
                Err(error) => error.into_response(),
            },
        };
        decision.apply_headers(response.headers_mut());
        response
    }

    async fn call(
        &self,
        route: &'static Route,
        parts: &mut Parts,
        body: Body,
        principal: Option<Principal>,
        client_ip: IpAddr,
        started: Instant,
    ) -> Result<Response, ApiError> {
        let path_params = if route.path_params.is_empty() {
            Vec::new()
        } else {
            let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, &())
                .await
                .map_err(|e| ApiError::invalid_argument(format!("bad path parameter: {e}")))?;
            params
        };
        let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::invalid_argument(format!("malformed query string: {e}")))?;
        let body = if message::has_body(route) {
            require_json(&parts.headers)?;
            read_body(body, self.body_limit_bytes).await?
        } else {
            Bytes::new()
        };
        let payload = message::build(route, &path_params, &query, body)?;

        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let trace = match client_trace(&parts.headers) {
            Some(trace) => {
                // The request span continues the client's trace (when traces are exported).
                telemetry::propagation::set_parent(&tracing::Span::current(), &trace);
                trace
            }
            None => new_trace(),
        };
        let mut context = rpc::Context::background()
            .with_request_id(request_id)
            // The deadline counts from the request's arrival, not from this call.
            .with_timeout(self.request_timeout.saturating_sub(started.elapsed()))
            .with_client_ip(client_ip.to_string())
            .with_trace(trace);
        if let Some(principal) = principal {
            context = context.with_principal(principal);
        }
        // The headers are built from nothing: whatever principal or deadline headers the
        // client sent are never forwarded.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(rpc::headers::CONTENT_TYPE, rpc::headers::JSON);
        let timeout = context.write_headers(&mut headers, self.request_timeout);

        // A streaming route listens before it reads the snapshot, so nothing falls between.
        let subscription = match &route.stream {
            Some(stream) => {
                Some(crate::stream::subscribe(self.rpc.nats(), stream, &path_params).await?)
            }
            None => None,
        };
        let reply = self
            .rpc
            .call_raw(route.descriptor.subject, headers, payload, timeout)
            .await
            .map_err(|error| {
                if ApiCode::Service(error.code()).status().is_server_error() {
                    // The request span is usually not logged (debug), so the line carries the
                    // request id itself.
                    tracing::warn!(
                        subject = route.descriptor.subject,
                        request_id = %context.request_id(),
                        %error,
                        "service call failed"
                    );
                }
                ApiError::from(error)
            })?;
        if let Some(subscription) = subscription {
            return Ok(subscription.respond(reply.payload, &self.streams_end));
        }
        let mut response = Response::new(Body::from(reply.payload));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(rpc::headers::JSON),
        );
        Ok(response)
    }

    /// The address a client's anonymous requests are counted against.
    fn client_ip(&self, parts: &Parts) -> IpAddr {
        if self.trust_forwarded_for
            && let Some(ip) = forwarded_for(&parts.headers)
        {
            return ip;
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip())
    }
}

/// Bodies must be JSON. A missing Content-Type is taken as JSON (a bare `curl --data-binary`
/// works); any other media type is refused with 415 before the body is read.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == rpc::headers::JSON
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            ApiCode::UnsupportedMediaType,
            format!("the request body must be application/json, not {essence:?}"),
        ))
    }
}

/// The whole body, or 413 past the limit. (The body-limit layer refuses a declared length
/// over the limit before this runs; this catches chunked bodies that grow past it.)
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = source {
            if e.is::<http_body_util::LengthLimitError>() {
                return ApiError::new(
                    ApiCode::PayloadTooLarge,
                    format!("the request body is larger than {limit} bytes"),
                );
            }
            source = e.source();
        }
        ApiError::invalid_argument(format!("the request body could not be read: {error}"))
    })
}

/// The W3C trace context the client sent, when it is well formed.
fn client_trace(headers: &HeaderMap) -> Option<TraceHeaders> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .filter(|v| !v.is_empty())
    };
    let traceparent = get(TRACEPARENT).filter(|t| is_valid_traceparent(t))?;
    Some(TraceHeaders {
        traceparent: Some(traceparent),
        tracestate: get(TRACESTATE),
    })
}

/// A new trace context, so that every request has a trace id that survives each hop even
/// when no OpenTelemetry exporter is configured. (With an exporter the request span's own
/// context is sent instead: see `telemetry::propagation::inject_current`.)
fn new_trace() -> TraceHeaders {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    TraceHeaders {
        traceparent: Some(format!("00-{trace_id}-{span_id}-01")),
        tracestate: None,
    }
}

/// `version-traceid-spanid-flags` with the lengths W3C Trace Context requires.
fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() >= 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "00000000000000000000000000000000"
        && parts[2] != "0000000000000000"
}

/// The last address in X-Forwarded-For: the one our own proxy saw (earlier entries are
/// whatever the client claimed).
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn json_bodies_are_required_when_a_type_is_given() {
        assert!(require_json(&headers(&[])).is_ok());
        assert!(require_json(&headers(&[("content-type", "application/json")])).is_ok());
        assert!(
            require_json(&headers(&[(
                "content-type",
                "Application/JSON; charset=utf-8"
            )]))
            .is_ok()
        );
        assert!(
            require_json(&headers(&[(
                "content-type",
                "application/merge-patch+json"
            )]))
            .is_ok()
        );
        let error = require_json(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(error.code().status(), 415);
        assert!(
            require_json(&headers(&[(
                "content-type",
                "application/x-www-form-urlencoded"
            )]))
            .is_err()
        );
    }

    #[test]
    fn client_trace_context_is_kept_when_well_formed() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let kept =
            client_trace(&headers(&[("traceparent", parent), ("tracestate", "v=1")])).unwrap();
        assert_eq!(kept.traceparent.as_deref(), Some(parent));
        assert_eq!(kept.tracestate.as_deref(), Some("v=1"));

        assert!(client_trace(&headers(&[])).is_none());
        for bad in [
            "garbage",
            "00-0000-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            assert!(
                client_trace(&headers(&[("traceparent", bad)])).is_none(),
                "{bad}"
            );
        }
        let started = new_trace().traceparent.unwrap();
        assert!(is_valid_traceparent(&started), "{started}");
        assert_ne!(started, new_trace().traceparent.unwrap());
    }

    #[test]
    fn forwarded_for_takes_the_last_valid_address() {
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "1.1.1.1, 10.0.0.7")])),
            Some(IpAddr::from([10, 0, 0, 7]))
        );
        assert_eq!(
            forwarded_for(&headers(&[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "2.2.2.2, junk")
            ])),
            Some(IpAddr::from([2, 2, 2, 2]))
        );
        assert_eq!(forwarded_for(&headers(&[])), None);
    }

    #[test]
    fn every_contract_route_has_a_supported_method() {
        for route in api::ROUTES {
            assert!(method_filter(route.http_method).is_some(), "{}", route.path);
            assert_ne!(
                route.descriptor.access,
                rpc::Access::Internal,
                "{}",
                route.path
            );
        }
    }
}
