//! Sessions and their rotating refresh tokens, in Redis.
//!
//! A login starts a session (a "family" of refresh tokens). A refresh token is 32 random bytes,
//! base64url; only its SHA-256 is stored, so a copy of Redis holds no usable token:
//!
//! - `auth:refresh:<sha256 hex>`: hash `{family, user_id, used}`, expiring after the refresh
//!   token lifetime. A used token keeps its record (with `used = 1`) until it expires, so that
//!   presenting it again is recognised as reuse.
//! - `auth:session:<family>`: hash `{state, user_id, started_at}`, `state` `active` or
//!   `revoked`, `started_at` in milliseconds since the epoch. Its lifetime is pushed forward
//!   to the newest token's at every rotation, so no token of a family outlives its session
//!   key: a missing session means an expired one.
//! - `auth:sessions_revoked_before:<user id>`: milliseconds since the epoch; every session of
//!   the account started at or before it is revoked (a password reset ends them all at once,
//!   without a list of the account's sessions). It lives as long as a refresh token, after
//!   which no session it revokes can still exist. A session without `started_at` (started
//!   before the field existed) counts as started at 0.
//!
//! Rotation is one Lua script, atomic in Redis: of concurrent refreshes with one token exactly
//! one rotates it; the others see it used. Presenting a used token revokes the whole family
//! (OAuth 2.0 Security BCP, refresh token rotation): either the legitimate client or a thief
//! holds a stale copy, and the service cannot tell which, so both must log in again. The
//! same holds for a client that refreshes one token twice in parallel (two browser tabs): the
//! second exchange looks like reuse. Clients must serialise their refreshes; there is no grace
//! period, because one would be a window for a thief too.
//!
//! The scripts compute the session key from the token's family, so they are not Redis Cluster
//! safe as written (the keys would need a common hash tag); the service runs on one primary.
//! Tokens are never logged, nor their hashes.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::{UserId, sha256_hex};

const REFRESH_PREFIX: &str = "auth:refresh:";
const SESSION_PREFIX: &str = "auth:session:";
const REVOKED_BEFORE_PREFIX: &str = "auth:sessions_revoked_before:";

/// Starts a session with its first token.
/// KEYS: token, session. ARGV: family, user id, ttl seconds, started at (ms).
const START: &str = r"
redis.call('HSET', KEYS[2], 'state', 'active', 'user_id', ARGV[2], 'started_at', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'family', ARGV[1], 'user_id', ARGV[2], 'used', '0')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Exchanges a token for a new one of the same family.
/// KEYS: old token, new token. ARGV: session key prefix, ttl seconds, revoked-before key
/// prefix. Answers {outcome, user id, family}; outcome is rotated, unknown, reused or revoked.
const ROTATE: &str = r"
local token = redis.call('HMGET', KEYS[1], 'family', 'user_id', 'used')
local family, user_id, used = token[1], token[2], token[3]
if not family then
  return {'unknown', '', ''}
end
local session = ARGV[1] .. family
if used == '1' then
  if redis.call('EXISTS', session) == 1 then
    redis.call('HSET', session, 'state', 'revoked')
  end
  return {'reused', user_id, family}
end
if redis.call('HGET', session, 'state') ~= 'active' then
  return {'revoked', user_id, family}
end
local cutoff = redis.call('GET', ARGV[3] .. user_id)
if cutoff and tonumber(redis.call('HGET', session, 'started_at') or '0') <= tonumber(cutoff) then
  redis.call('HSET', session, 'state', 'revoked')
  return {'revoked', user_id, family}
end
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HSET', KEYS[2], 'family', family, 'user_id', user_id, 'used', '0')
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', session, ARGV[2])
return {'rotated', user_id, family}
";

/// Revokes the session of a token; 1 when there was one.
/// KEYS: token. ARGV: session key prefix.
const REVOKE: &str = r"
local family = redis.call('HGET', KEYS[1], 'family')
if not family then
  return 0
end
local session = ARGV[1] .. family
if redis.call('EXISTS', session) == 1 then
  redis.call('HSET', session, 'state', 'revoked')
end
return 1
";

/// Revokes every session of an account started at or before a time.
/// KEYS: the account's revoked-before key. ARGV: the time (ms), ttl seconds. Never moves the
/// time back.
const REVOKE_ALL: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
";

/// A refresh token as handed to the client once. `Debug` never shows it.
pub struct RefreshToken(String);

impl RefreshToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// What presenting a refresh token did.
#[derive(Debug)]
pub enum Rotation {
    /// The token was exchanged; the old one is now used.
    Rotated {
        user_id: String,
        token: RefreshToken,
    },
    /// No such token (never issued, or expired).
    Unknown,
    /// The token had already been exchanged: its session is now revoked.
    Reused { user_id: String, family: String },
    /// The token's session was ended (logout, reuse, or expiry).
    Revoked,
}

/// The refresh tokens and sessions in Redis.
#[derive(Clone)]
pub struct Sessions {
    redis: ConnectionManager,
    ttl: Duration,
    start: redis::Script,
    rotate: redis::Script,
    revoke: redis::Script,
    revoke_all: redis::Script,
    clock: Clock,
}

impl Sessions {
    pub fn new(redis: ConnectionManager, ttl: Duration) -> Self {
        Self {
            redis,
            ttl,
            start: redis::Script::new(START),
            rotate: redis::Script::new(ROTATE),
            revoke: redis::Script::new(REVOKE),
            revoke_all: redis::Script::new(REVOKE_ALL),
            clock: Clock::system(),
        }
    }

    /// Sessions dated by `clock` (the service's, which tests move).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a refresh token lives unless it is used.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs().max(1)
    }

    /// Starts a session for `user_id` and returns its first refresh token.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn start(&self, user_id: UserId) -> Result<RefreshToken, redis::RedisError> {
        let token = RefreshToken::generate();
        let family = Uuid::now_v7().to_string();
        let mut redis = self.redis.clone();
        self.start
            .key(token_key(&token.0))
            .key(format!("{SESSION_PREFIX}{family}"))
            .arg(&family)
            .arg(user_id.to_string())
            .arg(self.ttl_seconds())
            .arg(self.clock.now_ms())
            .invoke_async::<i64>(&mut redis)
            .await?;
        Ok(token)
    }

    /// The account a token was issued to, if it is a token at all; reads without changing
    /// anything, so the caller can check the account before rotating.
    pub async fn owner(&self, presented: &str) -> Result<Option<String>, redis::RedisError> {
        let mut redis = self.redis.clone();
        redis::cmd("HGET")
            .arg(token_key(presented))
            .arg("user_id")
            .query_async(&mut redis)
            .await
    }

    /// Exchanges `presented` for a new token of its session, atomically.
    #[tracing::instrument(skip_all)]
    pub async fn rotate(&self, presented: &str) -> Result<Rotation, redis::RedisError> {
        let next = RefreshToken::generate();
        let mut redis = self.redis.clone();
        let (outcome, user_id, family): (String, String, String) = self
            .rotate
            .key(token_key(presented))
            .key(token_key(&next.0))
            .arg(SESSION_PREFIX)
            .arg(self.ttl_seconds())
            .arg(REVOKED_BEFORE_PREFIX)
            .invoke_async(&mut redis)
            .await?;
        Ok(match outcome.as_str() {
            "rotated" => Rotation::Rotated {
                user_id,
                token: next,
            },
            "reused" => Rotation::Reused { user_id, family },
            "revoked" => Rotation::Revoked,
            _ => Rotation::Unknown,
        })
    }

    /// Ends the session of `presented`; whether there was one.
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, presented: &str) -> Result<bool, redis::RedisError> {
        let mut redis = self.redis.clone();
        let revoked: i64 = self
            .revoke
            .key(token_key(presented))
            .arg(SESSION_PREFIX)
            .invoke_async(&mut redis)
            .await?;
        Ok(revoked == 1)
    }
}

impl Sessions {
    /// Ends every session of `user_id` started until now: none of their refresh tokens is
    /// exchanged again. Access tokens already issued are not affected (they expire on their
    /// own).
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn revoke_all(&self, user_id: UserId) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        self.revoke_all
            .key(format!("{REVOKED_BEFORE_PREFIX}{user_id}"))
            .arg(self.clock.now_ms())
            .arg(self.ttl_seconds())
            .invoke_async::<i64>(&mut redis)
            .await
            .map(drop)
    }
}

fn token_key(token: &str) -> String {
    format!("{REFRESH_PREFIX}{}", sha256_hex(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_random_bytes_in_base64url() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_eq!(a.0.len(), 43);
        assert_ne!(a.0, b.0);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.0).unwrap().len(), 32);
        assert!(!format!("{a:?}").contains(&a.0));
    }

    #[test]
    fn only_the_hash_of_a_token_is_in_its_key() {
        let token = RefreshToken::generate();
        let key = token_key(&token.0);
        assert!(!key.contains(&token.0));
        assert_eq!(key.len(), REFRESH_PREFIX.len() + 64);
    }
}
