//! The failures of the service's operations past request parsing, and what callers are told.

use uuid::Uuid;

use crate::provider::ProviderError;

/// Why a payment operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored or on the provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such payment method, or another user's: the two are deliberately alike.
    #[error("payment method {0:?} not found")]
    PaymentMethodNotFound(String),

    #[error("payment {0} not found")]
    PaymentNotFound(Uuid),

    #[error(
        "idempotency key {0:?} was used for a different request; use a new key for a new \
         request"
    )]
    KeyReused(String),

    #[error(
        "a request with idempotency key {0:?} is still being processed; try again with the \
         same key"
    )]
    KeyBusy(String),

    /// The payment's status does not allow the operation; the text says which would.
    #[error("{0}")]
    IllegalTransition(String),

    #[error("{0}")]
    AmountTooLarge(String),

    #[error("must be the payment's currency, {expected}")]
    WrongCurrency {
        field: &'static str,
        expected: &'static str,
    },

    /// The provider will not take the card.
    #[error("{0}")]
    CardNotAccepted(String),

    /// The provider failed to process the call: retryable with the same key.
    #[error("{0}")]
    Provider(String),

    /// A stored row breaks a rule the schema should have kept (a bug, not a caller's error).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Outbox(#[from] events::OutboxError),

    #[error("encoding a stored answer: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl From<ProviderError> for Error {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Processing(_) => Error::Provider(error.to_string()),
            ProviderError::CardNotAccepted(message) => Error::CardNotAccepted(message),
        }
    }
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::PaymentMethodNotFound(_) | Error::PaymentNotFound(_) => {
                rpc::Error::not_found(message)
            }
            Error::KeyReused(_) => rpc::Error::conflict(message),
            Error::KeyBusy(_) | Error::Provider(_) => rpc::Error::unavailable(message),
            Error::IllegalTransition(_) | Error::AmountTooLarge(_) | Error::CardNotAccepted(_) => {
                rpc::Error::failed_precondition(message)
            }
            Error::WrongCurrency { field, .. } => rpc::Error::invalid_field(field, message),
            // The request's deadline (or the pool's statement timeout) cancelled a statement.
            Error::Database(cause) if ::db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Outbox(cause) => rpc::Error::internal(cause),
            Error::Encoding(cause) => rpc::Error::internal(cause),
            Error::Corrupt(_) => rpc::Error::internal(anyhow::anyhow!(message)),
        }
    }
}
