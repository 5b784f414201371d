//! The failures of the service's operations past request parsing, and what callers are told.

use uuid::Uuid;

use crate::outbox::RecordError;

/// Why an order operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such order, or one the caller may not see: the two are deliberately alike.
    #[error("order {0} not found")]
    OrderNotFound(Uuid),

    #[error("sub-order {0} not found")]
    SubOrderNotFound(Uuid),

    #[error("shop {0} not found")]
    ShopNotFound(Uuid),

    /// No such address among the caller's: another user's is told the same.
    #[error("address {0} not found")]
    AddressNotFound(Uuid),

    /// A service the quote needs did not answer; the cause is logged, not told.
    #[error("the checkout cannot be priced now; try again in a moment")]
    PricingUnavailable,

    #[error("saga {0} not found")]
    SagaNotFound(Uuid),

    /// The state machine refuses the change; the message says why.
    #[error("{0}")]
    NotNow(String),

    #[error(
        "the Idempotency-Key {0:?} was used for a different checkout (address, shipping, \
         voucher or payment method); use a new key for a new checkout"
    )]
    KeyReused(String),

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Record(#[from] RecordError),

    #[error(transparent)]
    Saga(saga::Error),
}

impl From<saga::Error> for Error {
    fn from(error: saga::Error) -> Self {
        match error {
            saga::Error::IllegalState(why) => Error::NotNow(why),
            other => Error::Saga(other),
        }
    }
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::OrderNotFound(_)
            | Error::SubOrderNotFound(_)
            | Error::ShopNotFound(_)
            | Error::AddressNotFound(_)
            | Error::SagaNotFound(_) => rpc::Error::not_found(message),
            Error::PricingUnavailable => rpc::Error::unavailable(message),
            Error::NotNow(_) => rpc::Error::failed_precondition(message),
            Error::KeyReused(_) => rpc::Error::conflict(message),
            // The request's deadline (or the pool's statement timeout) cancelled a statement.
            Error::Database(cause) if ::db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Record(cause) => rpc::Error::internal(cause),
            Error::Saga(cause) => rpc::Error::internal(cause),
        }
    }
}
