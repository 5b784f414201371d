//! The one error type that crosses service boundaries.
//!
//! Services speak error codes, never HTTP statuses: only the gateway maps a code to a status.
//! Internal failures keep their cause for the logs, but the cause is never sent to a caller.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What went wrong, in terms a caller can act on.
///
/// The numeric form (for the `Nats-Service-Error-Code` header) follows the gRPC status codes,
/// a code space every client library already knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field breaks a rule; `details` names the fields.
    InvalidArgument,
    /// No valid credentials came with a request that needs them.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The addressed resource does not exist (or the caller may not know that it does).
    NotFound,
    /// The request conflicts with the current state (a duplicate, a concurrent change).
    Conflict,
    /// The system is not in a state that allows this (not enough stock, expired reservation).
    FailedPrecondition,
    /// The caller sent too many requests.
    RateLimited,
    /// Nobody could serve the request right now; retrying later may succeed.
    Unavailable,
    /// The request's deadline passed before it was served.
    DeadlineExceeded,
    /// A bug or an unexpected failure; the details are in the service's logs.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::FailedPrecondition,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::FailedPrecondition => "failed_precondition",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Internal => "internal",
        }
    }

    /// The gRPC status number, sent in `Nats-Service-Error-Code`.
    pub fn number(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 3,
            ErrorCode::DeadlineExceeded => 4,
            ErrorCode::NotFound => 5,
            ErrorCode::Conflict => 6,
            ErrorCode::PermissionDenied => 7,
            ErrorCode::RateLimited => 8,
            ErrorCode::FailedPrecondition => 9,
            ErrorCode::Internal => 13,
            ErrorCode::Unavailable => 14,
            ErrorCode::Unauthenticated => 16,
        }
    }

    pub fn from_number(number: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.number() == number)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field that broke a rule: `{"field": "price_minor_units", "problem": "must not be negative"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    pub field: String,
    pub problem: String,
}

/// The JSON body of every error reply, on NATS and (unchanged) over HTTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldViolation>,
}

/// A typed failure of a request.
#[derive(Clone)]
pub struct Error {
    code: ErrorCode,
    message: String,
    details: Vec<FieldViolation>,
    /// The cause of an internal failure: logged by the runtime, never sent.
    source: Option<Arc<anyhow::Error>>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            source: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// A validation failure of a single field.
    pub fn invalid_field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        let mut violations = Violations::new();
        violations.add(field, problem);
        violations.into_error()
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DeadlineExceeded, message)
    }

    /// An unexpected failure. The cause is kept for the logs; callers only see "internal error".
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".to_owned(),
            details: Vec::new(),
            source: Some(Arc::new(cause.into())),
        }
    }

    pub fn with_details(mut self, details: Vec<FieldViolation>) -> Self {
        self.details = details;
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn details(&self) -> &[FieldViolation] {
        &self.details
    }

    /// The internal cause, if any, for logging.
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.source.as_deref()
    }

    /// What the caller is told.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }

    pub fn from_body(body: ErrorBody) -> Self {
        Self {
            code: body.code,
            message: body.message,
            details: body.details,
            source: None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Error");
        out.field("code", &self.code)
            .field("message", &self.message);
        if !self.details.is_empty() {
            out.field("details", &self.details);
        }
        if let Some(source) = &self.source {
            out.field("cause", &format_args!("{source:#}"));
        }
        out.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        for detail in &self.details {
            write!(f, "; {}: {}", detail.field, detail.problem)?;
        }
        if let Some(source) = &self.source {
            write!(f, " ({source:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<anyhow::Error> for Error {
    fn from(cause: anyhow::Error) -> Self {
        Error::internal(cause)
    }
}

/// Collects every field problem of a request, so one reply names them all.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            problem: problem.into(),
        });
    }

    /// Records `problem` for `field` unless `ok` holds.
    pub fn check(&mut self, ok: bool, field: &str, problem: &str) {
        if !ok {
            self.add(field, problem);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_error(self) -> Error {
        let message = match self.0.as_slice() {
            [only] => format!("invalid {}: {}", only.field, only.problem),
            many => format!("{} fields are invalid", many.len()),
        };
        Error::invalid_argument(message).with_details(self.0)
    }

    /// `Ok(())` when nothing was recorded, otherwise one `invalid_argument` naming every field.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_are_distinct() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_number(code.number()), Some(code));
        }
        assert_eq!(ErrorCode::from_number(0), None);
    }

    #[test]
    fn code_serializes_as_its_snake_case_name() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn internal_cause_is_never_in_the_body() {
        let error = Error::internal(anyhow::anyhow!("password=hunter2 leaked"));
        let body = serde_json::to_string(&error.to_body()).unwrap();
        assert!(!body.contains("hunter2"), "{body}");
        assert!(format!("{error:?}").contains("hunter2"));
    }

    #[test]
    fn violations_name_every_field() {
        let mut violations = Violations::new();
        violations.check(true, "name", "must not be empty");
        violations.check(false, "price", "must not be negative");
        violations.check(false, "currency", "must be ISO 4217");
        let error = violations.into_result().unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidArgument);
        let fields: Vec<_> = error.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["price", "currency"]);
        assert!(Violations::new().into_result().is_ok());
    }
}
