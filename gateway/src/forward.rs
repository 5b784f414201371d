//! The API routes: one axum route per contract route, each forwarding to its method's NATS
//! subject.
//!
//! Per request, in this order: the access rule (nothing reaches NATS for a caller who may not
//! call), the rate limit, the body, the `Idempotency-Key` ([`crate::idempotency`]: a repeat
//! gets the stored answer and never reaches NATS), the request message, the NATS request with
//! the platform headers, and the reply payload passed back untouched (but for a token a
//! browser asked to get in a cookie instead: [`crate::cookies`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::Route;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use bytes::Bytes;
use rpc::Principal;
use telemetry::propagation::{TRACEPARENT, TRACESTATE, TraceHeaders};

use crate::authentication::Authenticator;
use crate::edge::Arrival;
use crate::error::{ApiCode, ApiError};
use crate::idempotency::{self, Begin, Idempotency};
use crate::live::conn::Peer;
use crate::message;
use crate::rate_limit::RateLimiter;

/// What every API route needs; shared by all requests behind one `Arc`.
pub struct Forwarder {
    pub rpc: rpc::Client,
    pub authenticator: Arc<Authenticator>,
    pub rate_limiter: RateLimiter,
    /// The records of `Idempotency-Key` requests.
    pub idempotency: Idempotency,
    /// The budget of every request from its arrival; services receive its deadline.
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub trust_forwarded_for: bool,
    /// Ends the event streams of streaming routes when the gateway shuts down.
    pub streams_end: crate::stream::Closer,
    /// The live order status fan-out ([`crate::live`]).
    pub live: Arc<crate::live::Hub>,
    pub live_settings: crate::live::Settings,
}

/// A router with every route of `routes`, several methods sharing a path.
pub fn router(routes: &'static [Route], forwarder: Arc<Forwarder>) -> anyhow::Result<Router> {
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
    Ok(router.with_state(forwarder))
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
        let arrived = request
            .extensions()
            .get::<Arrival>()
            .map_or_else(Instant::now, |arrival| arrival.0);
        let (mut parts, body) = request.into_parts();
        let client_ip = self.client_ip(&parts);
        let rate_limit_client = format!("ip:{}", rate_limit_address(client_ip));
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
                    .check(route.rate_class, &rate_limit_client)
                    .await;
                let mut response = decision.to_error().unwrap_or(refused).into_response();
                decision.apply_headers(response.headers_mut());
                return response;
            }
        };

        let client = match &principal {
            Some(principal) => format!("user:{}", principal.user_id),
            None => rate_limit_client,
        };
        let decision = self.rate_limiter.check(route.rate_class, &client).await;
        let https = parts
            .extensions
            .get::<crate::edge::Https>()
            .is_some_and(|https| https.0);
        let mut response = match decision.to_error() {
            Some(denied) => denied.into_response(),
            None => match crate::cookies::requested(route, &parts.headers, https) {
                Err(refused) => refused.into_response(),
                Ok(None) => {
                    self.serve(route, &mut parts, body, principal, client_ip, arrived)
                        .await
                }
                // The answer is kept for an Idempotency-Key as the service gave it; the
                // token moves into the cookie on the way out, replays included.
                Ok(Some(delivery)) => {
                    let response = self
                        .serve(route, &mut parts, body, principal, client_ip, arrived)
                        .await;
                    delivery.apply(response).await
                }
            },
        };
        decision.apply_headers(response.headers_mut());
        response
    }

    /// Reads the body, then calls the method once per `Idempotency-Key` (or for every
    /// request without one).
    async fn serve(
        &self,
        route: &'static Route,
        parts: &mut Parts,
        body: Body,
        principal: Option<Principal>,
        client_ip: IpAddr,
        arrived: Instant,
    ) -> Response {
        let key = match idempotency::key_of(route, &parts.headers) {
            Ok(key) => key,
            Err(refused) => return refused.into_response(),
        };
        let body = if message::has_body(route) {
            let read = match require_json(&parts.headers) {
                Ok(()) => read_body(body, self.body_limit_bytes).await,
                Err(refused) => Err(refused),
            };
            match read {
                Ok(body) => body,
                Err(refused) => return refused.into_response(),
            }
        } else {
            Bytes::new()
        };
        let Some(key) = key else {
            return self
                .call(route, parts, body, principal, client_ip, arrived)
                .await
                .unwrap_or_else(IntoResponse::into_response);
        };
        let scope = idempotency::caller_scope(principal.as_ref(), client_ip, route, &parts.headers);
        let scope = crate::cookies::scope(route, &parts.headers, scope);
        let record_key = idempotency::record_key(&key, &scope, route);
        let fingerprint = idempotency::fingerprint(route, parts.uri.query(), &parts.headers, &body);
        // The claim lasts as long as the service may work on the request: to its deadline.
        let deadline = arrived
            .checked_add(self.request_timeout)
            .unwrap_or_else(Instant::now);
        let lease = deadline.saturating_duration_since(Instant::now());
        match self.idempotency.begin(record_key, fingerprint, lease).await {
            Begin::Claimed(claim) => {
                let response = self
                    .call(route, parts, body, principal, client_ip, arrived)
                    .await
                    .unwrap_or_else(IntoResponse::into_response);
                claim.finish(response).await
            }
            Begin::Replay(response) => response,
            Begin::Refused(refused) => refused.into_response(),
            // Without the records a retry could take effect twice: a client that sent a key
            // asked for at most one effect, so its request waits for Redis rather than risk
            // a second (a request without a key is served as ever).
            Begin::Unavailable => {
                idempotency::count_unavailable();
                ApiError::service(
                    rpc::ErrorCode::Unavailable,
                    "Idempotency-Key requests cannot be served right now: retry shortly with the same key",
                )
                .into_response()
            }
        }
    }

    async fn call(
        &self,
        route: &'static Route,
        parts: &mut Parts,
        body: Bytes,
        principal: Option<Principal>,
        client_ip: IpAddr,
        arrived: Instant,
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
        let payload = message::build(route, &path_params, &query, &parts.headers, body)?;
        // What NATS would refuse to carry is refused here, as too large, not as unavailable.
        let max_payload = self.rpc.nats().max_payload();
        if max_payload > 0 && payload.len() + NATS_HEADERS_ROOM > max_payload {
            return Err(ApiError::new(
                ApiCode::PayloadTooLarge,
                "the request is larger than the platform carries",
            ));
        }

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
        // The deadline counts from the request's arrival, not from this call, and travels to
        // the service as an absolute time: a request still queued when the client has had its
        // 504 is not worked on.
        let deadline = arrived
            .checked_add(self.request_timeout)
            .unwrap_or_else(Instant::now);
        let mut context = rpc::Context::background()
            .with_request_id(request_id)
            .with_deadline(deadline)
            .with_client_ip(client_ip.to_string())
            .with_trace(trace);
        if let Some(principal) = principal {
            context = context.with_principal(principal);
        }
        // The headers are built from nothing: whatever principal or deadline headers the
        // client sent are never forwarded.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            rpc::headers::CONTENT_TYPE,
            rpc::headers::value(rpc::headers::JSON),
        );
        let timeout = context.write_headers(&mut headers, self.request_timeout);

        // The live order route: its method is the access check and the snapshot.
        if let Some(stream) = &route.stream
            && stream.domain == crate::live::DOMAIN
        {
            let since = crate::live::sse::last_event_id(&parts.headers)?;
            let order_id = path_params
                .iter()
                .find(|(name, _)| name == stream.key)
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            let cut = parts
                .extensions
                .get::<ConnectInfo<Peer>>()
                .map(|info| info.0.cut.clone())
                .unwrap_or_default();
            let check = self.check(route.descriptor.subject, headers, payload, timeout);
            return crate::live::sse::respond(
                &self.live,
                self.rpc.nats(),
                &self.live_settings,
                &self.streams_end,
                cut,
                &order_id,
                since,
                check,
            )
            .await;
        }
        // The gateway's own routes are answered from what it sees on NATS; a redrive goes
        // to the service that runs the consumer.
        let mut subject = std::borrow::Cow::Borrowed(route.descriptor.subject);
        if crate::discovery::answers(route) {
            match crate::dead_letters::route(route) {
                Some(crate::dead_letters::Route::List) => {
                    return crate::dead_letters::list(self.rpc.nats(), &payload, timeout).await;
                }
                Some(crate::dead_letters::Route::Redrive) => {
                    subject = crate::dead_letters::redrive_subject(&payload)?.into();
                }
                None => return crate::discovery::list_services(self.rpc.nats(), timeout).await,
            }
        }
        // A streaming route listens before it reads the snapshot, so nothing falls between.
        let subscription = match &route.stream {
            Some(stream) => {
                Some(crate::stream::subscribe(self.rpc.nats(), stream, &path_params).await?)
            }
            None => None,
        };
        let reply = self
            .rpc
            .call_raw(&subject, headers, payload, timeout)
            .await
            .map_err(|error| {
                if ApiCode::Service(error.code()).status().is_server_error() {
                    // The request span is usually not logged (debug), so the line carries the
                    // request id itself.
                    tracing::warn!(
                        subject = %subject,
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
        let status = route
            .status_field
            .and_then(|field| status_in(&reply.payload, field));
        let mut response = Response::new(Body::from(reply.payload));
        if let Some(status) = status {
            *response.status_mut() = status;
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(rpc::headers::JSON),
        );
        Ok(response)
    }

    /// The method call of a live subscription, to run once it is registered.
    fn check(
        &self,
        subject: &'static str,
        headers: async_nats::HeaderMap,
        payload: Bytes,
        timeout: Duration,
    ) -> crate::live::Check {
        let rpc = self.rpc.clone();
        Box::pin(async move {
            rpc.call_raw(subject, headers, payload, timeout)
                .await
                .map(|reply| reply.payload)
                .map_err(ApiError::from)
        })
    }

    /// The live order route's method call for a WebSocket subscription: the caller's
    /// principal, a fresh deadline, the order id as the route's key.
    pub fn watch_check(
        &self,
        principal: Principal,
        client_ip: IpAddr,
        order_id: &str,
    ) -> Result<crate::live::Check, ApiError> {
        let (route, stream) = api::ROUTES
            .iter()
            .find_map(|route| {
                route
                    .stream
                    .as_ref()
                    .filter(|s| s.domain == crate::live::DOMAIN)
                    .map(|s| (route, s))
            })
            .ok_or_else(|| {
                ApiError::service(
                    rpc::ErrorCode::Unavailable,
                    "live order status is not served",
                )
            })?;
        let payload = message::build(
            route,
            &[(stream.key.to_owned(), order_id.to_owned())],
            &[],
            &HeaderMap::new(),
            Bytes::new(),
        )?;
        let context = rpc::Context::background()
            .with_request_id(uuid::Uuid::now_v7().to_string())
            .with_deadline(Instant::now() + self.request_timeout)
            .with_client_ip(client_ip.to_string())
            .with_trace(new_trace())
            .with_principal(principal);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            rpc::headers::CONTENT_TYPE,
            rpc::headers::value(rpc::headers::JSON),
        );
        let timeout = context.write_headers(&mut headers, self.request_timeout);
        Ok(self.check(route.descriptor.subject, headers, payload, timeout))
    }

    /// The client's address: the TCP peer, or with `--trust-forwarded-for` what our proxy
    /// appended to X-Forwarded-For. Sent to services as `X-Client-Ip`; rate limits count
    /// anonymous requests against it (an IPv6 client by its /64, see [`rate_limit_address`]).
    fn client_ip(&self, parts: &Parts) -> IpAddr {
        if self.trust_forwarded_for
            && let Some(ip) = forwarded_for(&parts.headers)
        {
            return ip;
        }
        parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| {
                info.0.addr.ip().to_canonical()
            })
    }
}

/// The success status a reply names in its `field` (a route's `status_field`): a 2xx other
/// than 200 (201 created, 202 accepted); anything else leaves the answer 200.
fn status_in(payload: &[u8], field: &str) -> Option<StatusCode> {
    let reply: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let code = u16::try_from(reply.get(field)?.as_i64()?).ok()?;
    StatusCode::from_u16(code)
        .ok()
        .filter(|status| status.is_success())
}

/// Room left in a NATS message for the headers the gateway adds (each value is at most
/// [`telemetry::propagation::MAX_HEADER_VALUE_BYTES`]).
const NATS_HEADERS_ROOM: usize = 16 * 1024;

/// The address rate limits count a client by: an IPv4 address, or an IPv6 client's /64 (one
/// subscriber usually gets a whole /64, and would otherwise have 2^64 buckets to pick from).
pub fn rate_limit_address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(network))
        }
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

/// The right-most X-Forwarded-For entry, the address our own proxy appended; the entries
/// left of it are whatever the client claimed. `None` when that entry is not an address (a
/// proxy that wrote `unknown`): the client is then the peer, never an entry further left.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim();
    let ip = last
        .parse::<IpAddr>()
        .or_else(|_| last.parse::<SocketAddr>().map(|with_port| with_port.ip()))
        .ok()?;
    Some(ip.to_canonical())
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
    fn a_reply_names_its_success_status_only_within_2xx() {
        let reply = |json: &str| status_in(json.as_bytes(), "http_status");
        assert_eq!(reply(r#"{"http_status":202}"#), Some(StatusCode::ACCEPTED));
        assert_eq!(
            reply(r#"{"http_status":201,"x":1}"#),
            Some(StatusCode::CREATED)
        );
        // Not a success, absent, or not a number: the answer stays 200.
        assert_eq!(reply(r#"{"http_status":500}"#), None);
        assert_eq!(reply(r#"{"http_status":302}"#), None);
        assert_eq!(reply(r#"{"other":201}"#), None);
        assert_eq!(reply(r#"{"http_status":"201"}"#), None);
        assert_eq!(reply("not json"), None);
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
    fn forwarded_for_takes_the_entry_our_proxy_appended() {
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "1.1.1.1, 10.0.0.7")])),
            Some(IpAddr::from([10, 0, 0, 7]))
        );
        assert_eq!(
            forwarded_for(&headers(&[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "2.2.2.2")
            ])),
            Some(IpAddr::from([2, 2, 2, 2]))
        );
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "[2001:db8::1]:4711")])),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "::ffff:192.0.2.1")])),
            Some(IpAddr::from([192, 0, 2, 1]))
        );
        // The proxy's entry is not an address: the client's claims further left are not
        // taken instead.
        assert_eq!(
            forwarded_for(&headers(&[("x-forwarded-for", "1.1.1.1, unknown")])),
            None
        );
        assert_eq!(forwarded_for(&headers(&[])), None);
    }

    #[test]
    fn ipv6_clients_are_rate_limited_by_their_64() {
        let address = |text: &str| rate_limit_address(text.parse().unwrap());
        assert_eq!(address("203.0.113.9"), "203.0.113.9");
        assert_eq!(address("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(
            address("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address("2001:db8:1:2::1"), address("2001:db8:1:2:ffff::9"));
        assert_ne!(address("2001:db8:1:2::1"), address("2001:db8:1:3::1"));
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
