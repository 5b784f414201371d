//! What a handler knows about the request it serves, beyond its message.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use telemetry::propagation::TraceHeaders;

use crate::error::Error;
use crate::headers;

/// A role name as carried in tokens and headers.
pub mod roles {
    pub const CUSTOMER: &str = "customer";
    pub const SELLER: &str = "seller";
    pub const ADMIN: &str = "admin";
}

/// The authenticated caller, as the gateway established it from a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub roles: Vec<String>,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(roles::ADMIN)
    }
}

/// Request id, deadline, principal and trace context of one request.
///
/// Services never parse tokens: the principal comes from headers that only the gateway sets
/// (NATS permissions keep other publishers off service subjects in production).
#[derive(Clone, Debug)]
pub struct Context {
    request_id: String,
    deadline: Option<Instant>,
    principal: Option<Principal>,
    client_ip: Option<String>,
    trace: TraceHeaders,
}

impl Context {
    /// A context for work that no request started (start-up, background jobs, tests).
    pub fn background() -> Self {
        Self {
            request_id: uuid::Uuid::now_v7().to_string(),
            deadline: None,
            principal: None,
            client_ip: None,
            trace: TraceHeaders::default(),
        }
    }

    /// Reads the context from an incoming message's headers; missing headers give defaults.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Self {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let request_id = get(headers::REQUEST_ID)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let now = Instant::now();
        // The absolute deadline counts the time the request waited in queues; the relative
        // budget guards against a clock running behind the caller's. The earlier one holds.
        let relative = get(headers::TIMEOUT_MS)
            .and_then(|ms| ms.parse::<u64>().ok())
            .and_then(|ms| now.checked_add(Duration::from_millis(ms)));
        let absolute = get(headers::DEADLINE)
            .and_then(|ms| ms.parse::<u64>().ok())
            .and_then(|ms| instant_of_unix_millis(ms, now, SystemTime::now()));
        let deadline = match (relative, absolute) {
            (Some(relative), Some(absolute)) => Some(relative.min(absolute)),
            (one, other) => one.or(other),
        };
        let principal = get(headers::PRINCIPAL_ID).map(|user_id| Principal {
            user_id: user_id.to_owned(),
            roles: get(headers::PRINCIPAL_ROLES)
                .map(|roles| {
                    roles
                        .split(',')
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        });
        Self {
            request_id,
            deadline,
            principal,
            client_ip: get(headers::CLIENT_IP).map(str::to_owned),
            trace: TraceHeaders::from_nats(headers),
        }
    }

    /// Writes this context into headers for an outgoing call, with the time that is left (at
    /// most `default_timeout`) as both a relative budget and an absolute deadline; returns the
    /// budget, for the call's own timeout.
    pub fn write_headers(&self, out: &mut HeaderMap, default_timeout: Duration) -> Duration {
        let timeout = self
            .remaining()
            .unwrap_or(default_timeout)
            .min(default_timeout);
        let deadline = SystemTime::now()
            .checked_add(timeout)
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_millis());
        out.insert(headers::REQUEST_ID, headers::value(&self.request_id));
        out.insert(
            headers::TIMEOUT_MS,
            headers::value(&timeout.as_millis().to_string()),
        );
        out.insert(headers::DEADLINE, headers::value(&deadline.to_string()));
        if let Some(principal) = &self.principal {
            out.insert(headers::PRINCIPAL_ID, headers::value(&principal.user_id));
            out.insert(
                headers::PRINCIPAL_ROLES,
                headers::value(&principal.roles.join(",")),
            );
        }
        if let Some(client_ip) = &self.client_ip {
            out.insert(headers::CLIENT_IP, headers::value(client_ip));
        }
        telemetry::propagation::inject_current(out, &self.trace);
        timeout
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = Some(principal);
        self
    }

    /// The HTTP client's address, as the gateway saw it.
    pub fn with_client_ip(mut self, client_ip: impl Into<String>) -> Self {
        self.client_ip = Some(client_ip.into());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// The request must be answered by `deadline`: the gateway sets it from the moment the
    /// HTTP request arrived.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Holds the deadline to at most `max` from `now` (the service's own maximum), and sets
    /// it when the caller sent none: the runtime does this before a handler runs, so a
    /// handler's context always has a deadline.
    pub(crate) fn hold_deadline_to(&mut self, now: Instant, max: Duration) -> Instant {
        let own = now.checked_add(max).unwrap_or(now);
        let deadline = self.deadline.map_or(own, |caller| caller.min(own));
        self.deadline = Some(deadline);
        deadline
    }

    pub fn with_trace(mut self, trace: TraceHeaders) -> Self {
        self.trace = trace;
        self
    }

    /// The address of the HTTP client the request came from, when it came through the
    /// gateway. Good for counting attempts per client; never proof of anything.
    pub fn client_ip(&self) -> Option<&str> {
        self.client_ip.as_deref()
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// When the request must be answered. Always set in a handler: the caller's deadline held
    /// to the service's maximum, or that maximum when the caller sent none. `None` only for
    /// work no request started ([`Context::background`]).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline, for bounding a handler's own work (a statement
    /// timeout, a wait for a pool); zero once it has passed. Always `Some` in a handler (see
    /// [`Context::deadline`]); `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    pub fn trace(&self) -> &TraceHeaders {
        &self.trace
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The caller, or `unauthenticated`.
    pub fn require_principal(&self) -> Result<&Principal, Error> {
        self.principal
            .as_ref()
            .ok_or_else(|| Error::unauthenticated("this request needs an authenticated user"))
    }

    /// The caller when it holds `role`; `unauthenticated` or `permission_denied` otherwise.
    pub fn require_role(&self, role: &str) -> Result<&Principal, Error> {
        let principal = self.require_principal()?;
        if principal.has_role(role) {
            Ok(principal)
        } else {
            Err(Error::permission_denied(format!(
                "this request needs the {role} role"
            )))
        }
    }
}

/// The instant at `unix_millis` by this host's clock (`now` and `wall` read together); `None`
/// when it is too far out to represent (the runtime then holds it to its own maximum).
fn instant_of_unix_millis(unix_millis: u64, now: Instant, wall: SystemTime) -> Option<Instant> {
    let at = UNIX_EPOCH.checked_add(Duration::from_millis(unix_millis))?;
    match at.duration_since(wall) {
        Ok(ahead) => now.checked_add(ahead),
        // Already past: how long ago does not matter, only that it is not later than now.
        Err(behind) => Some(now.checked_sub(behind.duration()).unwrap_or(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn headers_round_trip_through_an_outgoing_call() {
        let ctx = Context::background()
            .with_request_id("req-1")
            .with_principal(Principal {
                user_id: "u1".into(),
                roles: vec!["customer".into(), "admin".into()],
            })
            .with_timeout(Duration::from_secs(2));
        let mut headers = HeaderMap::new();
        let timeout = ctx.write_headers(&mut headers, Duration::from_secs(30));
        assert!(timeout <= Duration::from_secs(2));
        let back = Context::from_headers(Some(&headers));
        assert_eq!(back.request_id(), "req-1");
        assert_eq!(back.principal(), ctx.principal());
        let remaining = back.remaining().unwrap();
        assert!(remaining > Duration::from_millis(1500) && remaining <= Duration::from_secs(2));
    }

    #[test]
    fn roles_are_checked() {
        let anonymous = Context::background();
        assert_eq!(
            anonymous.require_role(roles::ADMIN).unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        let customer = Context::background().with_principal(Principal {
            user_id: "u1".into(),
            roles: vec![roles::CUSTOMER.into()],
        });
        assert_eq!(
            customer.require_role(roles::ADMIN).unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        assert!(customer.require_role(roles::CUSTOMER).is_ok());
    }

    #[test]
    fn the_absolute_deadline_counts_time_spent_in_queues() {
        let now_millis = |offset: i64| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            (now + offset).to_string()
        };
        // Sent with 5 s left, but the absolute deadline passed while it waited.
        let mut headers = HeaderMap::new();
        headers.insert(headers::TIMEOUT_MS, "5000");
        headers.insert(headers::DEADLINE, now_millis(-1000).as_str());
        let ctx = Context::from_headers(Some(&headers));
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));

        // The earlier of the two holds.
        let mut headers = HeaderMap::new();
        headers.insert(headers::TIMEOUT_MS, "1000");
        headers.insert(headers::DEADLINE, now_millis(60_000).as_str());
        let remaining = Context::from_headers(Some(&headers)).remaining().unwrap();
        assert!(remaining <= Duration::from_secs(1), "{remaining:?}");

        // Absurd values neither panic nor extend the deadline past the service's maximum.
        let mut headers = HeaderMap::new();
        headers.insert(headers::DEADLINE, u64::MAX.to_string().as_str());
        let mut ctx = Context::from_headers(Some(&headers));
        let now = Instant::now();
        let held = ctx.hold_deadline_to(now, Duration::from_secs(3));
        assert_eq!(held, now + Duration::from_secs(3));
        assert_eq!(ctx.deadline(), Some(held));
    }

    #[test]
    fn outgoing_headers_survive_whatever_the_context_holds() {
        let ctx = Context::background()
            .with_request_id("id\r\nInjected: yes")
            .with_principal(Principal {
                user_id: "u\n1".into(),
                roles: vec!["customer".into()],
            })
            .with_client_ip("203.0.113.9");
        let mut headers = HeaderMap::new();
        ctx.write_headers(&mut headers, Duration::from_secs(1));
        assert_eq!(
            headers.get(headers::REQUEST_ID).unwrap().as_str(),
            "id  Injected: yes"
        );
        assert_eq!(headers.get(headers::PRINCIPAL_ID).unwrap().as_str(), "u 1");
        assert!(headers.get(headers::DEADLINE).is_some());
    }

    #[test]
    fn missing_headers_give_a_fresh_request_id_and_no_deadline() {
        let ctx = Context::from_headers(None);
        assert!(!ctx.request_id().is_empty());
        assert!(ctx.deadline().is_none());
        assert!(ctx.principal().is_none());
    }
}
