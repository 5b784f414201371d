//! Names of the NATS headers the platform uses, and [`value`], the one way a header value is
//! made. Written here once; everything else refers to them.

/// The request id, set by the gateway (or the first caller) and kept across every hop.
pub const REQUEST_ID: &str = "X-Request-Id";
/// The time left for the request, in milliseconds, when it was sent.
///
/// A relative budget: it does not count the time the request waits in a queue, so the
/// runtime also reads [`DEADLINE`] and keeps the earlier of the two.
pub const TIMEOUT_MS: &str = "X-Timeout-Ms";
/// The absolute deadline of the request, in milliseconds since the Unix epoch, set by the
/// gateway when the HTTP request arrived and carried unchanged by every call made on its
/// behalf. A request dequeued after it is answered `deadline_exceeded` without running its
/// handler; one further out than the service's own maximum is held to that maximum.
///
/// Hosts' clocks are assumed to agree to well under a request's budget (NTP); a host whose
/// clock runs ahead refuses requests early, never serves them for longer.
pub const DEADLINE: &str = "Emporium-Deadline";
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

/// Text as a NATS header value: control characters become spaces and it is cut to
/// [`telemetry::propagation::MAX_HEADER_VALUE_BYTES`]. Every header value the runtime and the
/// gateway write goes through it: async-nats panics on a line break in a value, and values
/// quote what clients sent.
pub use telemetry::propagation::header_value as value;

pub const JSON: &str = "application/json";
pub const PROTOBUF: &str = "application/protobuf";
