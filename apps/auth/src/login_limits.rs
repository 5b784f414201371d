//! Login attempt limits, counted in Redis so every replica shares them.
//!
//! Two fixed windows, checked and counted in one Lua script before any password is hashed:
//!
//! - per account (`auth:login:account:<sha256 of the address>`): attempts since the last
//!   successful login, at most `--login-failures-per-account` per
//!   `--login-failure-window-secs`. An attempt is counted before the password is checked and
//!   a success deletes the counter, so the count is exactly the failures (and attempts still
//!   running), and concurrent guesses cannot slip past the check together. Unknown addresses
//!   are counted the same way, so the limit says nothing about who has an account.
//! - per client (`auth:login:client:<ip>`): every attempt from one address, at most
//!   `--login-attempts-per-client` per `--login-client-window-secs`; skipped when the request
//!   did not come through the gateway (no client address).
//!
//! A refusal costs no hash and has one message for everybody.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::domain::{Email, sha256_hex};

const ACCOUNT_PREFIX: &str = "auth:login:account:";
const CLIENT_PREFIX: &str = "auth:login:client:";

/// Counts an attempt against the client (when KEYS[2] is given) and then the account.
/// KEYS: account[, client]. ARGV: account limit, account window s, client limit, client window s.
/// Answers 1 when the attempt may go on, 0 when a limit is reached.
const ATTEMPT: &str = r"
local function count(key, window)
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('EXPIRE', key, window)
  end
  return n
end
if KEYS[2] and count(KEYS[2], ARGV[4]) > tonumber(ARGV[3]) then
  return 0
end
if count(KEYS[1], ARGV[2]) > tonumber(ARGV[1]) then
  return 0
end
return 1
";

/// The limits, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimitSettings {
    pub failures_per_account: u32,
    pub account_window: Duration,
    pub attempts_per_client: u32,
    pub client_window: Duration,
}

/// Whether a login attempt may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited,
}

/// The attempt counters.
#[derive(Clone)]
pub struct LoginLimits {
    redis: ConnectionManager,
    settings: LoginLimitSettings,
    attempt: redis::Script,
}

impl LoginLimits {
    pub fn new(redis: ConnectionManager, settings: LoginLimitSettings) -> Self {
        Self {
            redis,
            settings,
            attempt: redis::Script::new(ATTEMPT),
        }
    }

    /// Counts an attempt to log in as `email` from `client_ip`, and says whether it may go on.
    #[tracing::instrument(skip_all)]
    pub async fn attempt(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<Decision, redis::RedisError> {
        let settings = &self.settings;
        let mut invocation = self.attempt.key(account_key(email));
        if let Some(ip) = client_ip {
            invocation.key(client_key(ip));
        }
        invocation
            .arg(settings.failures_per_account)
            .arg(settings.account_window.as_secs().max(1))
            .arg(settings.attempts_per_client)
            .arg(settings.client_window.as_secs().max(1));
        let mut redis = self.redis.clone();
        let allowed: i64 = invocation.invoke_async(&mut redis).await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited
        })
    }

    /// Forgets the account's failures after a successful login.
    pub async fn succeeded(&self, email: &Email) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        redis::cmd("DEL")
            .arg(account_key(email))
            .query_async::<i64>(&mut redis)
            .await
            .map(drop)
    }
}

/// The client's counter. An address is at most 45 characters (IPv6 with an IPv4 tail); any
/// longer value is not one and is hashed, so a forged header cannot make huge keys.
fn client_key(ip: &str) -> String {
    if ip.len() <= 45
        && ip
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':')
    {
        format!("{CLIENT_PREFIX}{ip}")
    } else {
        format!("{CLIENT_PREFIX}{}", sha256_hex(ip.as_bytes()))
    }
}

fn account_key(email: &Email) -> String {
    format!("{ACCOUNT_PREFIX}{}", email.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_hold_addresses_and_hash_anything_else() {
        assert_eq!(client_key("203.0.113.7"), "auth:login:client:203.0.113.7");
        assert_eq!(client_key("2001:db8::1"), "auth:login:client:2001:db8::1");
        let odd = client_key(&"x".repeat(1000));
        assert_eq!(odd.len(), CLIENT_PREFIX.len() + 64);
    }

    #[test]
    fn account_keys_never_hold_the_address() {
        let email = Email::parse("secret@example.com").unwrap();
        assert!(!account_key(&email).contains("secret"));
    }
}
