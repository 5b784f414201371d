//! The failures of the service's operations past request parsing, and what callers are told.

use crate::domain::{MAX_SHOPS_PER_OWNER, ShopId, ShopStatus};

/// Why a shop operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored and on who asks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No shop by this id or slug that the caller may see: it does not exist, or it is
    /// another seller's (or not active, for the public). The cases are deliberately
    /// indistinguishable.
    #[error("shop {0} not found")]
    ShopNotFound(String),

    #[error("a shop with the slug {0:?} already exists")]
    SlugTaken(String),

    #[error(
        "you already have {MAX_SHOPS_PER_OWNER} shops, the most one seller may have; \
         close one (or ask an admin) to open another"
    )]
    ShopLimitReached,

    #[error("shop {id} is closed: it cannot change any more")]
    ShopClosed { id: ShopId },

    #[error("shop {id} is {status}: it cannot be {action}")]
    StatusChangeRefused {
        id: ShopId,
        status: ShopStatus,
        action: &'static str,
    },

    /// The database refused a field the parsers accepted (their rules and the CHECK
    /// constraints disagree).
    #[error("{field}: {problem}")]
    InvalidField {
        field: &'static str,
        problem: &'static str,
    },

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Outbox(#[from] events::OutboxError),
}

impl Error {
    pub fn not_found(key: impl ToString) -> Self {
        Error::ShopNotFound(key.to_string())
    }
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::ShopNotFound(_) => rpc::Error::not_found(message),
            Error::SlugTaken(_) => {
                rpc::Error::conflict(message).with_details(vec![rpc::FieldViolation {
                    field: "slug".into(),
                    problem: "is taken by another shop".into(),
                }])
            }
            Error::ShopLimitReached
            | Error::ShopClosed { .. }
            | Error::StatusChangeRefused { .. } => rpc::Error::failed_precondition(message),
            Error::InvalidField { field, problem } => rpc::Error::invalid_field(field, problem),
            // The request's deadline (or the pool's statement timeout) cancelled a statement.
            Error::Database(cause) if db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Outbox(cause) => rpc::Error::internal(cause),
        }
    }
}
