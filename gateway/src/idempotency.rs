//! `Idempotency-Key` on every mutating route (the IETF httpapi idempotency-key draft): a
//! client that retries a POST, PUT, PATCH or DELETE with the key it sent the first time gets
//! the first answer again instead of a second effect.
//!
//! - The key is 1 to 255 visible ASCII characters, taken as sent (a quoted structured-field
//!   string and its bare content are different keys); anything else, or the header twice, is
//!   400 `invalid_argument` naming the header. A route whose contract sets
//!   `idempotency_key_required` refuses a request without one (400 `idempotency_key_required`).
//!   GET routes and streams ignore the header.
//! - A record is keyed by SHA-256 of the key, the caller and the route (method and path
//!   template), so one key used by two callers, or on two routes, makes two records. The
//!   caller is the authenticated user id; an anonymous caller is its client address plus the
//!   values of the secret headers the route fills request fields from (`X-Cart-Token`).
//!   An anonymous caller has nothing else the gateway can bind a record to; and since a replay
//!   also needs the same body, query string and secret headers (the fingerprint), another
//!   client behind the same address learns nothing it could not have asked for itself.
//! - The first request claims the record atomically (`SET NX PX`, one Lua script that also
//!   reads what is there when the claim fails) for the time left until its deadline plus a
//!   margin, then is forwarded. Its answer, when it is not a 5xx, is stored for 24 hours:
//!   status, the headers of [`STORED_HEADERS`], body, and the request's fingerprint (SHA-256
//!   of body, query string and secret header values). A 5xx (unavailable, timed out) is not
//!   the request's answer: the claim is released so a retry with the same key is served anew.
//!   A request dropped before its answer (the client went away, the gateway's timeout) keeps
//!   its claim until the lease ends, when the service can no longer be working on it.
//! - A repeat with the same fingerprint gets the stored answer byte for byte, with
//!   `Idempotent-Replayed: true`; with another fingerprint 422 `idempotency_key_reused`; while
//!   the first is still in flight 409 `idempotency_key_in_flight` with `Retry-After`.
//! - Redis is the store because it already is the gateway's state shared by every replica
//!   (rate limits), expiry is native (PX), and SET NX is the in-flight lock. When it does not
//!   answer, a request with a key is refused with 503 (`unavailable`): the client asked for at
//!   most one effect and retries with the same key; without a key a request is served as ever.
//!   Redis is given [`REDIS_BUDGET`] to answer, generous enough for a loaded machine.
//! - Answers larger than [`MAX_STORED_BODY_BYTES`] are not stored (logged, `bypassed`).
//!
//! Every decision is counted in [`OUTCOMES_TOTAL`] by `outcome`: `stored`, `replayed`,
//! `conflict` (422), `in_flight` (409), `missing` (a required key absent), `invalid` (a
//! malformed key), `released` (a 5xx, not stored), `unavailable` (Redis did not answer) and
//! `bypassed` (an answer not kept: too large, or after its claim ended).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::Route;
use axum::body::{Body, HttpBody as _};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use redis::aio::ConnectionManager;
use rpc::{FieldViolation, Principal};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{ApiCode, ApiError};

/// The request header carrying the client's key.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking a stored answer sent again.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The header's name as the error messages and the OpenAPI document spell it.
const HEADER_DISPLAY_NAME: &str = "Idempotency-Key";

/// The longest key accepted, in characters (each is one visible ASCII byte).
pub const MAX_KEY_LEN: usize = 255;
/// How long an answer is kept for repeats.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest answer body kept. Replies come over NATS, whose default payload limit is the
/// same, so in practice every answer fits.
pub const MAX_STORED_BODY_BYTES: usize = 1024 * 1024;
/// A claim outlives the request's deadline by this much, so a request dropped by the
/// gateway's timeout (which fires shortly after the deadline) cannot be run twice at once.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// How long a decision may wait for Redis.
const REDIS_BUDGET: Duration = Duration::from_secs(2);
/// While Redis is down, the warning is logged at most this often.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// What a client told "in flight" should wait before retrying, in seconds.
const IN_FLIGHT_RETRY_AFTER_SECONDS: u32 = 1;

/// The counter of idempotency decisions, by `outcome`.
pub const OUTCOMES_TOTAL: &str = "gateway_idempotency_total";

/// The answer headers kept with a stored answer and sent again with it. The rest are the
/// request's own (request id, rate-limit state) or added by outer layers to every answer.
/// Services set no other headers today; one a client needs is added here.
pub const STORED_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::CONTENT_LOCATION,
    header::ETAG,
    header::LAST_MODIFIED,
    header::WWW_AUTHENTICATE,
];

/// A checked `Idempotency-Key` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// 1 to [`MAX_KEY_LEN`] visible ASCII characters (no spaces, no control characters).
    pub fn parse(value: &[u8]) -> Result<Self, String> {
        if value.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if value.len() > MAX_KEY_LEN {
            return Err(format!("must be at most {MAX_KEY_LEN} characters"));
        }
        if !value.iter().all(u8::is_ascii_graphic) {
            return Err(
                "must be visible ASCII characters only (no spaces or control characters)"
                    .to_owned(),
            );
        }
        Ok(Self(
            String::from_utf8(value.to_vec()).expect("visible ASCII is UTF-8"),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The request's key when the route honours one, or the 400 for a malformed key or a missing
/// required one (counted). `None`: the request is served without idempotency.
pub fn key_of(route: &Route, headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    if !route.accepts_idempotency_key() {
        return Ok(None);
    }
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let refused = |outcome, error| {
        count(outcome);
        Err(error)
    };
    match (values.next(), values.next()) {
        (None, _) if route.idempotency_key_required => refused(
            "missing",
            ApiError::new(
                ApiCode::IdempotencyKeyRequired,
                format!(
                    "this route requires an {HEADER_DISPLAY_NAME} header: a key you choose for \
                     this operation (a UUID), sent again unchanged when you retry it"
                ),
            )
            .with_details(vec![FieldViolation {
                field: HEADER_DISPLAY_NAME.to_owned(),
                problem: "is required".to_owned(),
            }]),
        ),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => refused(
            "invalid",
            ApiError::invalid_field(HEADER_DISPLAY_NAME, "must be sent once"),
        ),
        (Some(value), None) => match IdempotencyKey::parse(value.as_bytes()) {
            Ok(key) => Ok(Some(key)),
            Err(problem) => refused(
                "invalid",
                ApiError::invalid_field(HEADER_DISPLAY_NAME, problem),
            ),
        },
    }
}

/// Who a record belongs to: the authenticated user, or an anonymous client by its address
/// and the secret headers the route reads (see the module documentation).
pub fn caller_scope(
    principal: Option<&Principal>,
    client_ip: IpAddr,
    route: &Route,
    headers: &HeaderMap,
) -> Vec<u8> {
    match principal {
        Some(principal) => hash_of(&[b"user", principal.user_id.as_bytes()]).to_vec(),
        None => {
            let ip = client_ip.to_canonical().to_string();
            let mut parts: Vec<&[u8]> = vec![b"anonymous", ip.as_bytes()];
            parts.extend(secret_header_values(route, headers));
            hash_of(&parts).to_vec()
        }
    }
}

/// The Redis key of the record of `key` from `scope` on `route`: nothing of the key, the
/// caller or a secret header can be read back from it.
pub fn record_key(key: &IdempotencyKey, scope: &[u8], route: &Route) -> String {
    let hash = hash_of(&[
        key.as_str().as_bytes(),
        scope,
        route.http_method.as_bytes(),
        route.path.as_bytes(),
    ]);
    format!("gateway:idempotency:{}", hex(&hash))
}

/// What makes a repeat the same request: its body, query string and the values of the
/// headers the route fills request fields from (the path is part of the record's key).
pub fn fingerprint(route: &Route, query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> String {
    let query = query.unwrap_or("");
    let mut parts: Vec<&[u8]> = vec![body, query.as_bytes()];
    parts.extend(secret_header_values(route, headers));
    hex(&hash_of(&parts))
}

/// The name and value of each header the route fills a request field from, in the route's
/// field order; an absent header counts as empty.
fn secret_header_values<'a>(route: &Route, headers: &'a HeaderMap) -> Vec<&'a [u8]> {
    let mut values = Vec::new();
    for field in route.header_fields() {
        let name = field.header.expect("header fields have a header");
        values.push(name.as_bytes());
        values.push(headers.get(name).map_or(&[][..], HeaderValue::as_bytes));
    }
    values
}

/// SHA-256 of the parts, each preceded by its length, so that no two different lists of
/// parts hash the same input.
fn hash_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

fn count(outcome: &'static str) {
    metrics::counter!(OUTCOMES_TOTAL, "outcome" => outcome).increment(1);
}

/// A record as Redis holds it (JSON).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    /// Claimed by a request still being served. `claim` tells this claim from a later one.
    InFlight { fingerprint: String, claim: String },
    /// The answer, kept for repeats.
    Done {
        fingerprint: String,
        status: u16,
        headers: Vec<(String, String)>,
        /// Base64.
        body: String,
    },
}

impl Record {
    fn fingerprint(&self) -> &str {
        match self {
            Record::InFlight { fingerprint, .. } | Record::Done { fingerprint, .. } => fingerprint,
        }
    }

    fn done(fingerprint: String, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let headers = STORED_HEADERS
            .iter()
            .flat_map(|name| {
                headers.get_all(name).iter().filter_map(move |value| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
            })
            .collect();
        Record::Done {
            fingerprint,
            status: status.as_u16(),
            headers,
            body: base64::engine::general_purpose::STANDARD.encode(body),
        }
    }

    /// The stored answer, marked as sent again; `None` for a record that is not a
    /// well-formed answer.
    fn replay(self) -> Option<Response> {
        let Record::Done {
            status,
            headers,
            body,
            ..
        } = self
        else {
            return None;
        };
        let body = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::from_u16(status).ok()?;
        for (name, value) in headers {
            response.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(&value).ok()?,
            );
        }
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
        Some(response)
    }
}

/// KEYS[1]: the record. ARGV[1]: the claim (an in-flight record). ARGV[2]: its lease in ms.
/// Claims the record when it is free (returns nil), or returns what is there.
const CLAIM: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('GET', KEYS[1])
"#;

/// KEYS[1]: the record. ARGV[1]: the claim. ARGV[2]: the answer. ARGV[3]: its TTL in ms.
/// Replaces the claim with the answer, only if the record still is that claim.
const STORE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// KEYS[1]: the record. ARGV[1]: the claim. Deletes the record if it still is that claim.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The records, in the gateway's Redis.
#[derive(Clone)]
pub struct Idempotency {
    redis: ConnectionManager,
    claim: redis::Script,
    store: redis::Script,
    release: redis::Script,
    created: Instant,
    /// Seconds after `created` (plus one, so 0 means never) of the last Redis warning.
    last_warning: Arc<AtomicU64>,
}

/// What to do with a request that carries a key.
pub enum Begin {
    /// The request is this one's to serve: forward it, then [`Claim::finish`] its answer.
    Claimed(Claim),
    /// The stored answer of an earlier request: send it.
    Replay(Response),
    /// 409 in flight or 422 reused.
    Refused(ApiError),
    /// Redis did not answer, or holds something unreadable.
    Unavailable,
}

/// A record this request claimed.
pub struct Claim {
    idempotency: Idempotency,
    record_key: String,
    /// The claim's record as stored, compared before it is replaced or deleted.
    claim: String,
    fingerprint: String,
}

impl Idempotency {
    pub fn new(redis: ConnectionManager) -> Self {
        Self {
            redis,
            claim: redis::Script::new(CLAIM),
            store: redis::Script::new(STORE),
            release: redis::Script::new(RELEASE),
            created: Instant::now(),
            last_warning: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Claims `record_key` until the request's deadline (`deadline_in` from now) has passed
    /// by a margin, or says what an earlier request left there.
    pub async fn begin(
        &self,
        record_key: String,
        fingerprint: String,
        deadline_in: Duration,
    ) -> Begin {
        let lease = deadline_in + LEASE_MARGIN;
        let claim = serde_json::to_string(&Record::InFlight {
            fingerprint: fingerprint.clone(),
            claim: uuid::Uuid::new_v4().to_string(),
        })
        .expect("a record serializes");
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut redis = self.redis.clone();
        let mut invocation = self.claim.key(&record_key);
        invocation.arg(&claim).arg(lease_ms);
        let existing = match tokio::time::timeout(
            REDIS_BUDGET,
            invocation.invoke_async::<Option<String>>(&mut redis),
        )
        .await
        {
            Ok(Ok(existing)) => existing,
            Ok(Err(e)) => {
                self.warn_unavailable(&format!("Redis failed: {e}"));
                return Begin::Unavailable;
            }
            Err(_) => {
                self.warn_unavailable("Redis did not answer in time");
                return Begin::Unavailable;
            }
        };
        let Some(existing) = existing else {
            return Begin::Claimed(Claim {
                idempotency: self.clone(),
                record_key,
                claim,
                fingerprint,
            });
        };
        let Ok(record) = serde_json::from_str::<Record>(&existing) else {
            tracing::error!(record_key, "an idempotency record is unreadable");
            return Begin::Unavailable;
        };
        if record.fingerprint() != fingerprint {
            count("conflict");
            return Begin::Refused(ApiError::new(
                ApiCode::IdempotencyKeyReused,
                format!(
                    "this {HEADER_DISPLAY_NAME} was used for a different request (another body or \
                     query string): use a new key for a new request"
                ),
            ));
        }
        match record {
            Record::InFlight { .. } => {
                count("in_flight");
                Begin::Refused(
                    ApiError::new(
                        ApiCode::IdempotencyKeyInFlight,
                        format!(
                            "a request with this {HEADER_DISPLAY_NAME} is still being served: \
                             retry shortly to get its answer"
                        ),
                    )
                    .with_header(
                        header::RETRY_AFTER,
                        HeaderValue::from(IN_FLIGHT_RETRY_AFTER_SECONDS),
                    ),
                )
            }
            done @ Record::Done { .. } => match done.replay() {
                Some(response) => {
                    count("replayed");
                    Begin::Replay(response)
                }
                None => {
                    tracing::error!(record_key, "a stored idempotent answer is unreadable");
                    Begin::Unavailable
                }
            },
        }
    }

    /// Logs that requests are served without idempotency: at warn once per interval, at
    /// debug in between.
    fn warn_unavailable(&self, reason: &str) {
        let now = self.created.elapsed().as_secs() + 1;
        let last = self.last_warning.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARNING_INTERVAL.as_secs())
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason,
                "idempotency records are unavailable: keys are not honoured"
            );
        } else {
            tracing::debug!(reason, "idempotency records are unavailable");
        }
    }
}

/// Counts a request served without idempotency because Redis did not answer.
pub fn count_unavailable() {
    count("unavailable");
}

impl Claim {
    /// Stores `response` as the request's answer (or releases the claim for a 5xx) and
    /// returns it unchanged.
    pub async fn finish(self, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        if parts.status.is_server_error() {
            self.release().await;
            count("released");
            return Response::from_parts(parts, body);
        }
        // Answers are whole NATS replies, so their size is known before they are read.
        if body
            .size_hint()
            .upper()
            .is_none_or(|size| size > MAX_STORED_BODY_BYTES as u64)
        {
            tracing::warn!(
                record_key = self.record_key,
                limit = MAX_STORED_BODY_BYTES,
                "an answer is too large to keep for its Idempotency-Key: not kept"
            );
            self.release().await;
            count("bypassed");
            return Response::from_parts(parts, body);
        }
        let body = match axum::body::to_bytes(body, MAX_STORED_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "reading an answer to keep it");
                self.release().await;
                count("released");
                return ApiError::service(rpc::ErrorCode::Internal, "internal error")
                    .into_response();
            }
        };
        let record = Record::done(
            self.fingerprint.clone(),
            parts.status,
            &parts.headers,
            &body,
        );
        let record = serde_json::to_string(&record).expect("a record serializes");
        let ttl_ms = u64::try_from(RECORD_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut redis = self.idempotency.redis.clone();
        let mut invocation = self.idempotency.store.key(&self.record_key);
        invocation.arg(&self.claim).arg(&record).arg(ttl_ms);
        match tokio::time::timeout(REDIS_BUDGET, invocation.invoke_async::<i64>(&mut redis)).await {
            Ok(Ok(1)) => count("stored"),
            Ok(Ok(_)) => {
                // The lease ended before the answer came and another request holds the record.
                tracing::warn!(
                    record_key = self.record_key,
                    "an answer came after its Idempotency-Key claim ended: not kept"
                );
                count("bypassed");
            }
            Ok(Err(e)) => {
                self.idempotency
                    .warn_unavailable(&format!("Redis failed storing an answer: {e}"));
                count("bypassed");
            }
            Err(_) => {
                self.idempotency
                    .warn_unavailable("Redis did not answer in time storing an answer");
                count("bypassed");
            }
        }
        Response::from_parts(parts, Body::from(body))
    }

    /// Frees the record so a retry with the same key is served anew.
    async fn release(&self) {
        let mut redis = self.idempotency.redis.clone();
        let mut invocation = self.idempotency.release.key(&self.record_key);
        invocation.arg(&self.claim);
        let released =
            tokio::time::timeout(REDIS_BUDGET, invocation.invoke_async::<i64>(&mut redis)).await;
        if !matches!(released, Ok(Ok(_))) {
            // The lease ends it anyway; until then a retry is told it is in flight.
            tracing::warn!(
                record_key = self.record_key,
                "an Idempotency-Key claim could not be released"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    static DESCRIPTOR: rpc::MethodDescriptor = rpc::MethodDescriptor {
        service: "test",
        method: "do_it",
        subject: "test.do_it",
        access: rpc::Access::Public,
        request_type: "emporium.test.v1.DoItRequest",
        response_type: "emporium.test.v1.DoItResponse",
    };

    const SECRET_FIELDS: &[api::Field] = &[api::Field {
        name: "cart_token",
        kind: api::FieldKind::String,
        repeated: false,
        header: Some("X-Cart-Token"),
    }];

    fn route(http_method: &'static str, required: bool) -> Route {
        Route {
            descriptor: &DESCRIPTOR,
            http_method,
            path: "/api/v1/things",
            path_params: &[],
            rate_class: "default",
            idempotency_key_required: required,
            status_field: None,
            request_fields: SECRET_FIELDS,
            stream: None,
            cookie: None,
            cookie_fields: &[],
        }
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    async fn body_bytes(response: Response) -> bytes::Bytes {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body")
    }

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse(b"8e03978e-40d5-43e8-bc93-6894a57f9324").is_ok());
        assert!(IdempotencyKey::parse(b"\"quoted\"").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; MAX_KEY_LEN]).is_ok());
        assert!(IdempotencyKey::parse(b"x").is_ok());
        for bad in [
            &b""[..],
            &[b'k'; MAX_KEY_LEN + 1],
            b"with space",
            b"tab\there",
            b"bell\x07",
            b"del\x7f",
            "caf\u{e9}".as_bytes(),
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_required_key_must_be_sent_and_an_optional_one_may_be_left_out() {
        let required = route("POST", true);
        let error = key_of(&required, &HeaderMap::new()).unwrap_err();
        assert_eq!(error.code(), ApiCode::IdempotencyKeyRequired);
        assert_eq!(error.code().status(), StatusCode::BAD_REQUEST);
        assert!(
            error.message().contains("Idempotency-Key"),
            "{}",
            error.message()
        );
        assert_eq!(error.details()[0].field, "Idempotency-Key");
        assert_eq!(
            key_of(&required, &headers(&[("idempotency-key", b"k1")])).unwrap(),
            Some(key("k1"))
        );

        let optional = route("POST", false);
        assert_eq!(key_of(&optional, &HeaderMap::new()).unwrap(), None);
        assert_eq!(
            key_of(&optional, &headers(&[("idempotency-key", b"k1")])).unwrap(),
            Some(key("k1"))
        );
        for method in ["PUT", "PATCH", "DELETE"] {
            assert_eq!(
                key_of(
                    &route(method, false),
                    &headers(&[("idempotency-key", b"k1")])
                )
                .unwrap(),
                Some(key("k1")),
                "{method}"
            );
        }
    }

    #[test]
    fn malformed_or_repeated_keys_are_refused_naming_the_header() {
        let optional = route("POST", false);
        for value in [&b"with space"[..], &[b'k'; MAX_KEY_LEN + 1], b""] {
            let error = key_of(&optional, &headers(&[("idempotency-key", value)])).unwrap_err();
            assert_eq!(
                error.code(),
                ApiCode::Service(rpc::ErrorCode::InvalidArgument)
            );
            assert_eq!(error.details()[0].field, "Idempotency-Key");
        }
        let twice = headers(&[("idempotency-key", b"a"), ("idempotency-key", b"b")]);
        let error = key_of(&optional, &twice).unwrap_err();
        assert!(error.message().contains("once"), "{}", error.message());
    }

    #[test]
    fn reads_and_streams_ignore_the_header() {
        let key_header = headers(&[("idempotency-key", b"k1")]);
        assert_eq!(key_of(&route("GET", false), &key_header).unwrap(), None);
        // Not even a malformed one is looked at.
        let bad = headers(&[("idempotency-key", b"with space")]);
        assert_eq!(key_of(&route("GET", false), &bad).unwrap(), None);
        let mut stream = route("GET", false);
        stream.stream = Some(api::Stream {
            domain: "test",
            key: "id",
        });
        assert_eq!(key_of(&stream, &key_header).unwrap(), None);
    }

    fn user(id: &str) -> Principal {
        Principal {
            user_id: id.to_owned(),
            roles: vec![],
        }
    }

    #[test]
    fn records_belong_to_one_key_caller_and_route() {
        let post = route("POST", false);
        let none = HeaderMap::new();
        let ip = IpAddr::from(Ipv4Addr::new(192, 0, 2, 1));
        let ada = caller_scope(Some(&user("ada")), ip, &post, &none);
        let record = record_key(&key("k1"), &ada, &post);
        assert!(record.starts_with("gateway:idempotency:"), "{record}");
        assert!(
            !record.contains("k1") && !record.contains("ada"),
            "{record}"
        );
        // The same request again: the same record.
        assert_eq!(
            record,
            record_key(
                &key("k1"),
                &caller_scope(
                    Some(&user("ada")),
                    IpAddr::from([10, 0, 0, 1]),
                    &post,
                    &none
                ),
                &post
            ),
            "a user's record does not depend on their address"
        );

        let grace = caller_scope(Some(&user("grace")), ip, &post, &none);
        let anonymous = caller_scope(None, ip, &post, &none);
        let elsewhere = caller_scope(None, IpAddr::from([192, 0, 2, 2]), &post, &none);
        let with_cart = caller_scope(None, ip, &post, &headers(&[("x-cart-token", b"secret-1")]));
        let other_cart = caller_scope(None, ip, &post, &headers(&[("x-cart-token", b"secret-2")]));
        let mut put = route("PUT", false);
        let mut others = vec![
            record_key(&key("k2"), &ada, &post),
            record_key(&key("k1"), &grace, &post),
            record_key(&key("k1"), &anonymous, &post),
            record_key(&key("k1"), &elsewhere, &post),
            record_key(&key("k1"), &with_cart, &post),
            record_key(&key("k1"), &other_cart, &post),
            record_key(&key("k1"), &ada, &put),
        ];
        put.http_method = "POST";
        put.path = "/api/v1/other-things";
        others.push(record_key(&key("k1"), &ada, &put));
        others.push(record);
        let distinct: std::collections::HashSet<_> = others.iter().collect();
        assert_eq!(distinct.len(), others.len(), "{others:#?}");
    }

    #[test]
    fn parts_are_length_prefixed_so_they_cannot_run_into_each_other() {
        assert_ne!(hash_of(&[b"ab", b"c"]), hash_of(&[b"a", b"bc"]));
        assert_ne!(hash_of(&[b"", b"a"]), hash_of(&[b"a", b""]));
        let post = route("POST", false);
        let none = HeaderMap::new();
        assert_ne!(
            fingerprint(&post, Some("b"), &none, b"a"),
            fingerprint(&post, None, &none, b"ab")
        );
    }

    #[test]
    fn the_fingerprint_is_the_body_the_query_and_the_secret_headers() {
        let post = route("POST", false);
        let none = HeaderMap::new();
        let base = fingerprint(&post, Some("a=1"), &none, br#"{"x":1}"#);
        assert_eq!(base.len(), 64);
        assert_eq!(base, fingerprint(&post, Some("a=1"), &none, br#"{"x":1}"#));
        // The key itself and unrelated headers are not part of it.
        let unrelated = headers(&[("idempotency-key", b"k9"), ("user-agent", b"curl")]);
        assert_eq!(
            base,
            fingerprint(&post, Some("a=1"), &unrelated, br#"{"x":1}"#)
        );
        for other in [
            fingerprint(&post, Some("a=2"), &none, br#"{"x":1}"#),
            fingerprint(&post, None, &none, br#"{"x":1}"#),
            fingerprint(&post, Some("a=1"), &none, br#"{"x":2}"#),
            fingerprint(&post, Some("a=1"), &none, br#"{"x": 1}"#),
            fingerprint(
                &post,
                Some("a=1"),
                &headers(&[("x-cart-token", b"t")]),
                br#"{"x":1}"#,
            ),
        ] {
            assert_ne!(base, other);
        }
    }

    #[tokio::test]
    async fn a_stored_answer_is_sent_again_byte_for_byte_with_the_allowed_headers() {
        let body = br#"{"id":"a1","name":"Ada"}"#;
        let mut original = headers(&[
            ("content-type", b"application/json"),
            ("location", b"/api/v1/things/a1"),
            ("x-request-id", b"first-request"),
            ("x-ratelimit-remaining", b"7"),
        ]);
        original.append("etag", HeaderValue::from_static("\"v1\""));
        let record = Record::done("f1".into(), StatusCode::CREATED, &original, body);
        let stored = serde_json::to_string(&record).unwrap();
        let record: Record = serde_json::from_str(&stored).unwrap();
        assert_eq!(record.fingerprint(), "f1");

        let replay = record.replay().unwrap();
        assert_eq!(replay.status(), StatusCode::CREATED);
        let replayed = replay.headers();
        assert_eq!(replayed[header::CONTENT_TYPE], "application/json");
        assert_eq!(replayed[header::LOCATION], "/api/v1/things/a1");
        assert_eq!(replayed[header::ETAG], "\"v1\"");
        assert_eq!(replayed[&IDEMPOTENT_REPLAYED], "true");
        assert!(replayed.get("x-request-id").is_none(), "the request's own");
        assert!(
            replayed.get("x-ratelimit-remaining").is_none(),
            "the request's own"
        );
        assert_eq!(body_bytes(replay).await, &body[..]);
    }

    #[test]
    fn an_in_flight_record_is_not_an_answer() {
        let record = Record::InFlight {
            fingerprint: "f1".into(),
            claim: "c1".into(),
        };
        let stored = serde_json::to_string(&record).unwrap();
        assert!(stored.contains("\"state\":\"in_flight\""), "{stored}");
        assert!(
            serde_json::from_str::<Record>(&stored)
                .unwrap()
                .replay()
                .is_none()
        );
    }
}
