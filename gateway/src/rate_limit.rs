//! Rate limiting: one token bucket per (client, rate class) in Redis, so every gateway
//! replica shares it.
//!
//! The bucket is read, refilled, spent and written by one Lua script (run with EVALSHA), so
//! concurrent requests through different replicas cannot both take the last token. Time is
//! Redis's own clock, so replicas with skewed clocks still agree.
//!
//! A replica does not ask Redis for every request of a busy client: it takes a small lease of
//! tokens at once (a twentieth of the bucket, at most 50, and a single token for buckets of
//! fewer than 40, such as the auth class) and spends them locally for up to a second. The
//! limit is never exceeded, since every token spent was taken from the shared bucket; what a
//! lease costs is precision the other way, a client may be refused by one replica while
//! another holds a few of its tokens, which expire unused with the lease. For a hot client
//! this removes all but one Redis round trip in twenty-odd from the request path.
//!
//! When Redis cannot answer quickly the request is let through (and counted): losing rate
//! limiting for a while is better than refusing every customer.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use dashmap::DashMap;
use redis::aio::ConnectionManager;

use crate::config::RateLimits;
use crate::error::ApiError;

/// How long a rate-limit decision may wait for Redis before the request is let through.
const REDIS_BUDGET: Duration = Duration::from_millis(250);
/// How long tokens leased from Redis may be spent locally.
const LEASE_TTL: Duration = Duration::from_secs(1);
/// The most tokens one lease takes.
const MAX_LEASE: u32 = 50;
/// A lease takes this fraction of the bucket's capacity.
const LEASE_DIVISOR: u32 = 20;
/// Leases are swept of expired entries when there are more than this many.
const LEASE_SWEEP_THRESHOLD: usize = 10_000;
/// While Redis is down, the fail-open warning is logged at most this often.
const FAIL_OPEN_WARNING_INTERVAL: Duration = Duration::from_secs(10);

pub static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// KEYS[1]: the bucket. ARGV[1]: capacity. ARGV[2]: milliseconds to refill an empty bucket.
/// ARGV[3]: how many tokens to take at most (a lease); as many whole tokens as there are, up
/// to that, are taken. Returns {tokens taken (0 = denied), whole tokens left, ms until a
/// token is available, ms until full}.
const TOKEN_BUCKET: &str = r#"
local capacity = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
local per_ms = capacity / refill_ms
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local taken = math.min(want, math.floor(tokens))
if taken < 0 then
  taken = 0
end
tokens = tokens - taken
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], refill_ms + 1000)
local retry_ms = 0
if taken == 0 then
  retry_ms = math.ceil((1 - tokens) / per_ms)
end
local full_ms = math.ceil((capacity - tokens) / per_ms)
return {taken, math.floor(tokens), retry_ms, full_ms}
"#;

/// The outcome of one rate-limit check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed(Quota),
    Denied(Quota),
    /// Redis did not answer: the request goes through without rate-limit headers.
    Unknown,
}

/// What the `X-RateLimit-*` headers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_seconds: u64,
    /// Seconds until the next request would be allowed (0 when allowed now).
    pub retry_after_seconds: u64,
}

impl Decision {
    /// The rate-limit headers every rate-limited answer carries.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        let (Decision::Allowed(quota) | Decision::Denied(quota)) = self else {
            return;
        };
        headers.insert(X_RATELIMIT_LIMIT.clone(), HeaderValue::from(quota.limit));
        headers.insert(
            X_RATELIMIT_REMAINING.clone(),
            HeaderValue::from(quota.remaining),
        );
        headers.insert(
            X_RATELIMIT_RESET.clone(),
            HeaderValue::from(quota.reset_seconds),
        );
        if let Decision::Denied(quota) = self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(quota.retry_after_seconds.max(1)),
            );
        }
    }

    /// The 429 answer of a denied request.
    pub fn to_error(&self) -> Option<ApiError> {
        let Decision::Denied(quota) = self else {
            return None;
        };
        Some(
            ApiError::service(
                rpc::ErrorCode::RateLimited,
                format!(
                    "too many requests: try again in {} s",
                    quota.retry_after_seconds.max(1)
                ),
            )
            .with_header(
                header::RETRY_AFTER,
                HeaderValue::from(quota.retry_after_seconds.max(1)),
            ),
        )
    }
}

/// Tokens taken from a client's bucket in Redis and not spent yet.
struct Lease {
    tokens: u32,
    expires: Instant,
    /// What Redis said when the tokens were taken.
    quota: Quota,
}

/// Checks requests against the configured buckets.
#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    limits: RateLimits,
    script: redis::Script,
    /// By bucket key; each behind its own lock so a lease is spent by one request at a time.
    leases: Arc<DashMap<String, Arc<Mutex<Lease>>>>,
    created: Instant,
    /// Seconds after `created` (plus one, so 0 means never) of the last fail-open warning.
    last_fail_open_warning: Arc<AtomicU64>,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, limits: RateLimits) -> Self {
        Self {
            redis,
            limits,
            script: redis::Script::new(TOKEN_BUCKET),
            leases: Arc::new(DashMap::new()),
            created: Instant::now(),
            last_fail_open_warning: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Takes a token from `client`'s bucket of `class` (the default class when `class` has
    /// no limit of its own).
    pub async fn check(&self, class: &str, client: &str) -> Decision {
        let (class, limit) = self.limits.limit_for(class);
        let key = format!("gateway:ratelimit:{class}:{client}");
        let decision = match self.spend_leased(&key) {
            Some(decision) => decision,
            None => self.take_from_redis(&key, limit).await,
        };
        let label = match decision {
            Decision::Allowed(_) => "allowed",
            Decision::Denied(_) => "denied",
            Decision::Unknown => "fail_open",
        };
        metrics::counter!("rate_limit_decisions_total", "class" => class.to_owned(), "decision" => label)
            .increment(1);
        decision
    }

    /// Spends a token this replica leased earlier for `key`, if it holds one.
    fn spend_leased(&self, key: &str) -> Option<Decision> {
        let lease = Arc::clone(self.leases.get(key)?.value());
        let mut lease = lease.lock().expect("lease lock poisoned");
        if lease.tokens == 0 || lease.expires <= Instant::now() {
            return None;
        }
        lease.tokens -= 1;
        Some(Decision::Allowed(Quota {
            remaining: lease.quota.remaining + u64::from(lease.tokens),
            ..lease.quota.clone()
        }))
    }

    /// Takes a lease of tokens from the bucket in Redis, spends one and keeps the rest.
    async fn take_from_redis(&self, key: &str, limit: crate::config::RateLimit) -> Decision {
        let want = lease_size(limit.capacity);
        let refill_ms = u64::try_from(limit.refill.as_millis()).unwrap_or(u64::MAX);
        let mut redis = self.redis.clone();
        let mut invocation = self.script.key(key);
        invocation.arg(limit.capacity).arg(refill_ms).arg(want);
        let outcome = tokio::time::timeout(
            REDIS_BUDGET,
            invocation.invoke_async::<(i64, i64, i64, i64)>(&mut redis),
        )
        .await;
        match outcome {
            Ok(Ok((taken, remaining, retry_ms, full_ms))) => {
                let quota = Quota {
                    limit: limit.capacity,
                    remaining: u64::try_from(remaining).unwrap_or(0),
                    reset_seconds: ceil_seconds(full_ms),
                    retry_after_seconds: ceil_seconds(retry_ms),
                };
                let Ok(taken @ 1..) = u32::try_from(taken) else {
                    return Decision::Denied(quota);
                };
                let spare = taken - 1;
                if spare > 0 {
                    self.keep_lease(key, spare, &quota);
                }
                Decision::Allowed(Quota {
                    remaining: quota.remaining + u64::from(spare),
                    ..quota
                })
            }
            Ok(Err(e)) => {
                self.warn_fail_open(&format!("Redis failed: {e}"));
                Decision::Unknown
            }
            Err(_) => {
                self.warn_fail_open("Redis did not answer in time");
                Decision::Unknown
            }
        }
    }

    /// Keeps `spare` tokens for `key` until the lease expires; tokens still held from an
    /// earlier lease are kept too.
    fn keep_lease(&self, key: &str, spare: u32, quota: &Quota) {
        let now = Instant::now();
        if self.leases.len() > LEASE_SWEEP_THRESHOLD {
            self.leases.retain(|_, lease| {
                lease
                    .lock()
                    .map(|lease| lease.tokens > 0 && lease.expires > now)
                    .unwrap_or(false)
            });
        }
        let entry = Arc::clone(
            self.leases
                .entry(key.to_owned())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Lease {
                        tokens: 0,
                        expires: now,
                        quota: quota.clone(),
                    }))
                })
                .value(),
        );
        let mut lease = entry.lock().expect("lease lock poisoned");
        let held = if lease.expires > now { lease.tokens } else { 0 };
        *lease = Lease {
            tokens: held + spare,
            expires: now + LEASE_TTL,
            quota: quota.clone(),
        };
    }
}

/// How many tokens one trip to Redis takes for a bucket of `capacity`.
fn lease_size(capacity: u32) -> u32 {
    (capacity / LEASE_DIVISOR).clamp(1, MAX_LEASE)
}

impl RateLimiter {
    /// Logs that requests pass unchecked: at warn once per interval, at debug in between, so
    /// an outage under load does not flood the logs.
    fn warn_fail_open(&self, reason: &str) {
        let now = self.created.elapsed().as_secs() + 1;
        let last = self.last_fail_open_warning.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= FAIL_OPEN_WARNING_INTERVAL.as_secs())
            && self
                .last_fail_open_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason,
                "rate limiting is failing open: requests pass unchecked"
            );
        } else {
            tracing::debug!(reason, "rate limiting is failing open");
        }
    }
}

fn ceil_seconds(milliseconds: i64) -> u64 {
    u64::try_from(milliseconds).unwrap_or(0).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_answers_carry_every_header() {
        let decision = Decision::Denied(Quota {
            limit: 5,
            remaining: 0,
            reset_seconds: 12,
            retry_after_seconds: 0,
        });
        let mut headers = HeaderMap::new();
        decision.apply_headers(&mut headers);
        assert_eq!(headers[&X_RATELIMIT_LIMIT], "5");
        assert_eq!(headers[&X_RATELIMIT_REMAINING], "0");
        assert_eq!(headers[&X_RATELIMIT_RESET], "12");
        // Never "retry after 0 s": that invites a hot loop.
        assert_eq!(headers[header::RETRY_AFTER], "1");
        let error = decision.to_error().unwrap();
        assert_eq!(error.code().status(), 429);

        let mut headers = HeaderMap::new();
        Decision::Unknown.apply_headers(&mut headers);
        assert!(headers.is_empty());
        assert!(Decision::Unknown.to_error().is_none());
    }

    #[test]
    fn small_buckets_are_never_leased_and_large_ones_a_little() {
        assert_eq!(lease_size(0), 1);
        assert_eq!(lease_size(3), 1);
        assert_eq!(lease_size(30), 1);
        assert_eq!(lease_size(39), 1);
        assert_eq!(lease_size(40), 2);
        assert_eq!(lease_size(600), 30);
        assert_eq!(lease_size(1_000_000), MAX_LEASE);
    }

    #[test]
    fn milliseconds_round_up_to_seconds() {
        assert_eq!(ceil_seconds(0), 0);
        assert_eq!(ceil_seconds(1), 1);
        assert_eq!(ceil_seconds(1000), 1);
        assert_eq!(ceil_seconds(1001), 2);
        assert_eq!(ceil_seconds(-5), 0);
    }
}
