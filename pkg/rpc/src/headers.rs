//! Names of the NATS headers the platform uses. Written here once; everything else refers to them.

/// The request id, set by the gateway (or the first caller) and kept across every hop.
pub const REQUEST_ID: &str = "X-Request-Id";
/// The time left for the request, in milliseconds, when it was sent.
///
/// A relative budget rather than an absolute time, so clock skew between hosts does not matter.
pub const TIMEOUT_MS: &str = "X-Timeout-Ms";
/// The authenticated user id; set only by the gateway (or a service calling on a user's behalf).
pub const PRINCIPAL_ID: &str = "X-Principal-Id";
/// The authenticated user's roles, comma separated.
pub const PRINCIPAL_ROLES: &str = "X-Principal-Roles";
/// The address of the HTTP client a request came from, set only by the gateway: for services
/// that count or log per client (login attempts), never for access decisions.
pub const CLIENT_IP: &str = "X-Client-Ip";
/// `application/json` (the default) or `application/protobuf`.
pub const CONTENT_TYPE: &str = "Content-Type";

pub use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};

pub const JSON: &str = "application/json";
pub const PROTOBUF: &str = "application/protobuf";
