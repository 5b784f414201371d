//! Login attempt limits, counted in Redis so every replica shares them.
//!
//! The limits follow OWASP's advice against account lockout: a counter per account alone lets
//! anyone who knows an address (the admin's, say) keep its owner out by failing on purpose, so
//! failures are counted per *client and account*, attempts per client, and the failures of an
//! account from everywhere only slow it down. A client is the IP address the gateway puts in
//! `X-Client-Ip`: an IPv4 address, or the /64 network of an IPv6 address (one subscriber is
//! given a whole /64, so an attacker could otherwise rotate through 2^64 addresses).
//!
//! Three fixed windows, checked and counted in one Lua script before any password is hashed:
//!
//! - per client (`auth:login:client:<client>`): every attempt from one client, on any account,
//!   at most `--login-attempts-per-client` per `--login-client-window-secs`. Skipped when the
//!   request did not come through the gateway (no client address).
//! - per client and account (`auth:login:pair:<sha256 of the address>:<client>`): the failures
//!   of one client on one account, at most `--login-failures-per-client-and-account` per
//!   `--login-failure-window-secs`. Past it that client is refused for that account, even with
//!   the right password, until the window ends; every other client still logs in. Requests
//!   without a client address share one client, `-`.
//! - per account (`auth:login:account:<sha256 of the address>`): the failures of one account
//!   from all clients in `--login-failure-window-secs`. This one never refuses: past
//!   `--login-account-slowdown-after` each attempt on the account waits
//!   `--login-account-slowdown-ms` before its password is checked, a bounded delay that makes
//!   a guessing campaign spread over many clients slower and visible (a warning in the logs
//!   and `auth_login_slowed_total`) while the owner still gets in.
//!
//! Failures are counted when the attempt starts, before the password is checked, so that
//! concurrent guesses cannot slip past a limit together; a success then forgets the client's
//! failures on the account and takes its own attempt back from the account's count, and an
//! attempt that ended without a verdict (the hasher was busy) takes its attempt back from both.
//! Unknown addresses are counted exactly like known ones, so no limit or delay says who has an
//! account. A refusal costs no hash and has one message for everybody.

use std::net::IpAddr;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::domain::{Email, sha256_hex};

const ACCOUNT_PREFIX: &str = "auth:login:account:";
const PAIR_PREFIX: &str = "auth:login:pair:";
const CLIENT_PREFIX: &str = "auth:login:client:";
/// The client of requests that carry no client address (they did not come through the
/// gateway).
const NO_CLIENT: &str = "-";

/// Counts an attempt against the client (when KEYS[3] is given), then the client's failures on
/// the account, then the account's failures.
/// KEYS: account, pair[, client]. ARGV: pair limit, failure window s, client limit, client
/// window s. Answers {1, failures of the account including this attempt} when the attempt may
/// go on, {0, 0} when a limit is reached (the account is not counted then).
const ATTEMPT: &str = r"
local function count(key, window)
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('EXPIRE', key, window)
  end
  return n
end
if KEYS[3] and count(KEYS[3], ARGV[4]) > tonumber(ARGV[3]) then
  return {0, 0}
end
if count(KEYS[2], ARGV[2]) > tonumber(ARGV[1]) then
  return {0, 0}
end
return {1, count(KEYS[1], ARGV[2])}
";

/// Settles an attempt that was allowed. ARGV[1] is `success` (the client's failures on the
/// account are forgotten) or `abandoned` (its attempt is taken back); either way the attempt is
/// taken back from the account's failures. A counter is never taken below zero nor created,
/// so it keeps the expiry its window gave it.
/// KEYS: account, pair.
const SETTLE: &str = r"
local function take_back(key)
  local n = tonumber(redis.call('GET', key) or '0')
  if n > 0 then
    redis.call('DECR', key)
  end
end
if ARGV[1] == 'success' then
  redis.call('DEL', KEYS[2])
else
  take_back(KEYS[2])
end
take_back(KEYS[1])
return 1
";

/// The limits, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimitSettings {
    /// Failures of one client on one account per `failure_window` before that client is
    /// refused for that account.
    pub failures_per_client_and_account: u32,
    pub failure_window: Duration,
    /// Failures of one account, from all clients, per `failure_window` after which attempts on
    /// it are slowed down.
    pub account_slowdown_after: u32,
    /// How long each attempt on such an account waits.
    pub account_slowdown: Duration,
    pub attempts_per_client: u32,
    pub client_window: Duration,
}

/// Whether a login attempt may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Check the password, after waiting `slowdown` when there is one.
    Allowed { slowdown: Option<Duration> },
    /// Refuse without checking the password.
    Limited,
}

/// The attempt counters.
#[derive(Clone)]
pub struct LoginLimits {
    redis: ConnectionManager,
    settings: LoginLimitSettings,
    attempt: redis::Script,
    settle: redis::Script,
}

impl LoginLimits {
    pub fn new(redis: ConnectionManager, settings: LoginLimitSettings) -> Self {
        Self {
            redis,
            settings,
            attempt: redis::Script::new(ATTEMPT),
            settle: redis::Script::new(SETTLE),
        }
    }

    /// Counts an attempt to log in as `email` from `client_ip` (the gateway's `X-Client-Ip`),
    /// and says whether it may go on. An allowed attempt must be settled with
    /// [`LoginLimits::succeeded`] or [`LoginLimits::abandoned`] unless it failed.
    #[tracing::instrument(skip_all)]
    pub async fn attempt(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<Decision, redis::RedisError> {
        let settings = &self.settings;
        let client = client_ip.map(client_name);
        let mut invocation = self.attempt.key(account_key(email));
        invocation.key(pair_key(email, client.as_deref()));
        if let Some(client) = &client {
            invocation.key(format!("{CLIENT_PREFIX}{client}"));
        }
        invocation
            .arg(settings.failures_per_client_and_account)
            .arg(settings.failure_window.as_secs().max(1))
            .arg(settings.attempts_per_client)
            .arg(settings.client_window.as_secs().max(1));
        let mut redis = self.redis.clone();
        let (allowed, account_failures): (i64, i64) = invocation.invoke_async(&mut redis).await?;
        if allowed != 1 {
            return Ok(Decision::Limited);
        }
        let after = i64::from(settings.account_slowdown_after);
        let slowdown = (account_failures > after && !settings.account_slowdown.is_zero())
            .then_some(settings.account_slowdown);
        if account_failures == after + 1 {
            tracing::warn!(
                email = ?email,
                failures = account_failures,
                "many failed logins on one account: slowing its logins down"
            );
        }
        Ok(Decision::Allowed { slowdown })
    }

    /// The right password: forgets the client's failures on the account, and takes this
    /// attempt back from the account's failures (the failures of other clients stay).
    pub async fn succeeded(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<(), redis::RedisError> {
        self.settle(email, client_ip, "success").await
    }

    /// An allowed attempt that ended without a verdict (no hashing slot, an internal error):
    /// it is not a failure, so it is taken back.
    pub async fn abandoned(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<(), redis::RedisError> {
        self.settle(email, client_ip, "abandoned").await
    }

    /// Forgets the failures counted against the account `email` names, from every client,
    /// and its slowdown: after its password was reset, whoever was refused on it may log in
    /// again. The attempts counted per client (on any account) stay.
    #[tracing::instrument(skip_all)]
    pub async fn forget_account(&self, email: &Email) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        // The pair keys of one account share a prefix; a password reset is rare and
        // limited, so a SCAN for them is affordable.
        let pattern = format!("{PAIR_PREFIX}{}:*", email.fingerprint());
        let mut keys = vec![account_key(email)];
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut redis)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<i64>(&mut redis)
            .await
            .map(drop)
    }

    async fn settle(
        &self,
        email: &Email,
        client_ip: Option<&str>,
        how: &str,
    ) -> Result<(), redis::RedisError> {
        let client = client_ip.map(client_name);
        let mut redis = self.redis.clone();
        self.settle
            .key(account_key(email))
            .key(pair_key(email, client.as_deref()))
            .arg(how)
            .invoke_async::<i64>(&mut redis)
            .await
            .map(drop)
    }
}

/// The client an address belongs to: an IPv4 address as it is (an IPv4-mapped IPv6 address
/// is its IPv4 address), an IPv6 address as its /64 network. Anything that is not an address
/// is hashed, so a forged header cannot make huge keys; the gateway always sends an address.
pub fn client_name(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(segments))
        }
        Err(_) => sha256_hex(ip.as_bytes()),
    }
}

fn account_key(email: &Email) -> String {
    format!("{ACCOUNT_PREFIX}{}", email.fingerprint())
}

fn pair_key(email: &Email, client: Option<&str>) -> String {
    format!(
        "{PAIR_PREFIX}{}:{}",
        email.fingerprint(),
        client.unwrap_or(NO_CLIENT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_client_is_its_address() {
        assert_eq!(client_name("203.0.113.7"), "203.0.113.7");
        assert_ne!(client_name("203.0.113.7"), client_name("203.0.113.8"));
        // The same address written as IPv4-mapped IPv6 is the same client.
        assert_eq!(client_name("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn an_ipv6_client_is_its_64_network() {
        assert_eq!(client_name("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            client_name("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            client_name("2001:0db8:0001:0002::ffff")
        );
        assert_ne!(
            client_name("2001:db8:1:2::1"),
            client_name("2001:db8:1:3::1")
        );
    }

    #[test]
    fn anything_else_is_hashed() {
        assert_eq!(client_name(&"x".repeat(1000)).len(), 64);
        assert_eq!(client_name("unknown").len(), 64);
    }

    #[test]
    fn keys_never_hold_the_address() {
        let email = Email::parse("secret@example.com").unwrap();
        assert!(!account_key(&email).contains("secret"));
        assert!(!pair_key(&email, Some("203.0.113.7")).contains("secret"));
        assert!(pair_key(&email, None).ends_with(":-"));
    }
}
