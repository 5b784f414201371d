//! Limits on asking for password reset links, counted in Redis so every replica shares them.
//!
//! Each request counts against the address asked for (`auth:reset:email:<sha256 of the
//! address>`) and, when it came through the gateway, against its client
//! (`auth:reset:client:<client>`, a client as in `login_limits.rs`: an IPv4 address or an IPv6
//! /64), in fixed windows of `--password-reset-window-secs`. The per-address limit keeps
//! anyone from flooding a mailbox; the per-client limit keeps one client from asking about
//! many addresses. Addresses without an account are counted exactly like the others, so a
//! refusal says nothing about who has an account.
//!
//! The per-address limit lets someone who knows an address use up its requests, but every
//! request they make sends a working link to the owner's mailbox (the newest one works), so
//! the owner is never kept from resetting.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::domain::Email;
use crate::login_limits::client_name;

const EMAIL_PREFIX: &str = "auth:reset:email:";
const CLIENT_PREFIX: &str = "auth:reset:client:";

/// Counts a request against the client (when KEYS[2] is given), then the address.
/// KEYS: address[, client]. ARGV: address limit, client limit, window s. Answers 1 when the
/// request may go on, 0 when a limit is reached (the address is not counted then).
const REQUEST: &str = r"
local function count(key)
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('EXPIRE', key, ARGV[3])
  end
  return n
end
if KEYS[2] and count(KEYS[2]) > tonumber(ARGV[2]) then
  return 0
end
if count(KEYS[1]) > tonumber(ARGV[1]) then
  return 0
end
return 1
";

/// The limits, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetLimitSettings {
    pub requests_per_email: u32,
    pub requests_per_client: u32,
    pub window: Duration,
}

/// The request counters.
#[derive(Clone)]
pub struct ResetLimits {
    redis: ConnectionManager,
    settings: ResetLimitSettings,
    request: redis::Script,
}

impl ResetLimits {
    pub fn new(redis: ConnectionManager, settings: ResetLimitSettings) -> Self {
        Self {
            redis,
            settings,
            request: redis::Script::new(REQUEST),
        }
    }

    /// Counts a request for a reset link for `email` from `client_ip` (the gateway's
    /// `X-Client-Ip`); whether it may go on.
    #[tracing::instrument(skip_all)]
    pub async fn request(
        &self,
        email: &Email,
        client_ip: Option<&str>,
    ) -> Result<bool, redis::RedisError> {
        let mut invocation = self.request.key(email_key(email));
        if let Some(client) = client_ip.map(client_name) {
            invocation.key(format!("{CLIENT_PREFIX}{client}"));
        }
        invocation
            .arg(self.settings.requests_per_email)
            .arg(self.settings.requests_per_client)
            .arg(self.settings.window.as_secs().max(1));
        let mut redis = self.redis.clone();
        let allowed: i64 = invocation.invoke_async(&mut redis).await?;
        Ok(allowed == 1)
    }
}

fn email_key(email: &Email) -> String {
    format!("{EMAIL_PREFIX}{}", email.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_hold_the_address() {
        let email = Email::parse("secret@example.com").unwrap();
        assert!(!email_key(&email).contains("secret"));
    }
}
