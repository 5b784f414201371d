//! The failures of the service's operations past request parsing, and what callers are told.

use crate::domain::{AddressId, MAX_ADDRESSES_PER_USER};

/// Why an address operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No address with this id belongs to the caller: it does not exist, or it is another
    /// user's. The two are deliberately indistinguishable.
    #[error("address {0} not found")]
    AddressNotFound(AddressId),

    #[error(
        "you already have {MAX_ADDRESSES_PER_USER} addresses, the most one user may keep; \
         delete one to add another"
    )]
    AddressLimitReached,

    /// The database refused a field the parsers accepted (their rules and the CHECK
    /// constraints disagree).
    #[error("{field}: {problem}")]
    InvalidField {
        field: &'static str,
        problem: &'static str,
    },

    /// The database refused a change that would leave a user with two defaults or none.
    /// Writes of one user are serialised, so this means another writer bypassed that.
    #[error("your addresses were changed by another request at the same time; try again")]
    ConcurrentChange,

    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::AddressNotFound(_) => rpc::Error::not_found(message),
            Error::AddressLimitReached => rpc::Error::failed_precondition(message),
            Error::InvalidField { field, problem } => rpc::Error::invalid_field(field, problem),
            Error::ConcurrentChange => rpc::Error::conflict(message),
            // The request's deadline (or the pool's statement timeout) cancelled a statement.
            Error::Database(cause) if db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
        }
    }
}
