//! The failures of the service's operations past request parsing, and what callers are told.

use crate::domain::UserId;
use crate::passwords::HashError;

/// What a caller is told for any failed login, whatever the reason.
pub const INVALID_CREDENTIALS: &str = "invalid email or password";
/// What a caller is told for any refused refresh token, whatever the reason.
pub const INVALID_REFRESH_TOKEN: &str = "the refresh token is invalid or expired; log in again";
/// What a caller over a login limit is told: the same for every account and client.
pub const LOGIN_LIMITED: &str = "too many login attempts; try again later";
/// What a caller over a password reset request limit is told: the same for every address.
pub const RESET_LIMITED: &str = "too many password reset requests; try again later";
/// What a user who asked for verification links too often is told.
pub const VERIFICATION_LIMITED: &str =
    "a verification email was sent recently; check your inbox or try again later";

/// Why an operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored, and the infrastructure
/// failures whose causes go to the logs only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("account {0} not found")]
    AccountNotFound(UserId),

    #[error("an account keeps at least one role: revoking it would leave account {0} with none")]
    LastRole(UserId),

    /// Unknown email or wrong password; which one is never said.
    #[error("{INVALID_CREDENTIALS}")]
    InvalidCredentials,

    /// Unknown, expired, reused or revoked refresh token, or its account is gone.
    #[error("{INVALID_REFRESH_TOKEN}")]
    InvalidRefreshToken,

    #[error("{LOGIN_LIMITED}")]
    LoginLimited,

    /// An email link's token that does not work, whatever the reason (never issued, used,
    /// expired, superseded, or bound to an address the account no longer has).
    #[error("token {}", crate::domain::INVALID_LINK_TOKEN)]
    InvalidLinkToken,

    /// The new password of a reset breaks the password rules.
    #[error("new_password {0}")]
    WeakPassword(&'static str),

    #[error("{RESET_LIMITED}")]
    ResetLimited,

    #[error("{VERIFICATION_LIMITED}")]
    VerificationLimited,

    /// No password hashing slot became free in time.
    #[error("the service is busy; try again in a moment")]
    Busy,

    #[error(transparent)]
    Hash(HashError),

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Outbox(#[from] events::OutboxError),

    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl From<HashError> for Error {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Error::Busy,
            other => Error::Hash(other),
        }
    }
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::AccountNotFound(_) => rpc::Error::not_found(message),
            Error::LastRole(_) => rpc::Error::failed_precondition(message),
            Error::InvalidCredentials | Error::InvalidRefreshToken => {
                rpc::Error::unauthenticated(message)
            }
            Error::LoginLimited | Error::ResetLimited | Error::VerificationLimited => {
                rpc::Error::new(rpc::ErrorCode::RateLimited, message)
            }
            Error::WeakPassword(problem) => rpc::Error::invalid_field("new_password", problem),
            Error::InvalidLinkToken => {
                rpc::Error::invalid_field("token", crate::domain::INVALID_LINK_TOKEN)
            }
            Error::Busy => rpc::Error::unavailable(message),
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Hash(cause) => rpc::Error::internal(cause),
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Outbox(cause) => rpc::Error::internal(cause),
            // Sessions and sign-in limits live there: try again once it is back.
            Error::Redis(cause) => {
                tracing::warn!(error = %cause, "Redis is unavailable");
                rpc::Error::unavailable("sign-in is unavailable for a moment; try again shortly")
            }
        }
    }
}
