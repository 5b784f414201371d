//! What a handler knows about the request it serves, beyond its message.

use std::time::{Duration, Instant};

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
        let deadline = get(headers::TIMEOUT_MS)
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(|ms| Instant::now() + Duration::from_millis(ms));
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

    /// Writes this context into headers for an outgoing call, with the time that is left.
    pub fn write_headers(&self, out: &mut HeaderMap, default_timeout: Duration) -> Duration {
        let timeout = self
            .remaining()
            .unwrap_or(default_timeout)
            .min(default_timeout);
        out.insert(headers::REQUEST_ID, self.request_id.as_str());
        out.insert(
            headers::TIMEOUT_MS,
            timeout.as_millis().to_string().as_str(),
        );
        if let Some(principal) = &self.principal {
            out.insert(headers::PRINCIPAL_ID, principal.user_id.as_str());
            out.insert(headers::PRINCIPAL_ROLES, principal.roles.join(",").as_str());
        }
        if let Some(client_ip) = &self.client_ip {
            out.insert(headers::CLIENT_IP, client_ip.as_str());
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
        self.deadline = Some(Instant::now() + timeout);
        self
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

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline; zero once it has passed, `None` without a deadline.
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
    fn missing_headers_give_a_fresh_request_id_and_no_deadline() {
        let ctx = Context::from_headers(None);
        assert!(!ctx.request_id().is_empty());
        assert!(ctx.deadline().is_none());
        assert!(ctx.principal().is_none());
    }
}
