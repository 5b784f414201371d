//! The failures of the service's operations past request parsing, and what callers are told.

use rpc::FieldViolation;
use uuid::Uuid;
use vocab::Currency;

use crate::domain::{MAX_LINES, MAX_QUANTITY};

/// Why a cart operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such cart: a guest token that opens none (never issued, expired, merged), or a user
    /// without one where one is needed. Deliberately the same answer for all.
    #[error("cart not found")]
    CartNotFound,

    /// Neither signed in nor a guest token.
    #[error("send the X-Cart-Token header or sign in")]
    NoCart,

    #[error("product {0} not found")]
    ProductNotFound(Uuid),

    #[error("{name} is no longer sold")]
    ProductInactive { name: String },

    #[error(
        "this cart is in {cart}; {name} is priced in {product}. Check out or empty the cart \
         before adding products priced in {product}"
    )]
    OtherCurrency {
        cart: Currency,
        product: Currency,
        name: String,
    },

    #[error(
        "your cart already holds {MAX_LINES} different products, the most a cart may; \
         remove one to add another"
    )]
    TooManyLines,

    #[error("at most {MAX_QUANTITY} of one product fit in a cart")]
    QuantityTooLarge,

    /// The voucher service knows no such code.
    #[error("{message}")]
    VoucherNotFound { message: String },

    /// The code exists but does not apply to this cart now.
    #[error("{message}")]
    VoucherDoesNotApply { message: String },

    /// A retry of CompleteCheckout must repeat the first call exactly.
    #[error("order {0} already completed a cart, for another user or with other lines")]
    OrderDiffers(Uuid),

    /// A service this one calls failed; its error is passed on when the caller can act on it.
    #[error("{0}")]
    Upstream(rpc::Error),

    #[error("stored cart is not valid: {0}")]
    Corrupt(String),

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// `error` with `field` named as the one to fix.
fn naming(error: rpc::Error, field: &str) -> rpc::Error {
    let problem = error.message().to_owned();
    error.with_details(vec![FieldViolation {
        field: field.to_owned(),
        problem,
    }])
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::CartNotFound => rpc::Error::not_found(message),
            Error::NoCart => rpc::Error::invalid_field("cart_token", message),
            Error::ProductNotFound(_) => naming(rpc::Error::not_found(message), "product_id"),
            Error::ProductInactive { .. } | Error::OtherCurrency { .. } | Error::TooManyLines => {
                naming(rpc::Error::failed_precondition(message), "product_id")
            }
            Error::QuantityTooLarge => rpc::Error::invalid_field("quantity", message),
            Error::VoucherNotFound { .. } => naming(rpc::Error::not_found(message), "code"),
            Error::VoucherDoesNotApply { .. } => {
                naming(rpc::Error::failed_precondition(message), "code")
            }
            Error::OrderDiffers(_) => rpc::Error::conflict(message),
            Error::Upstream(error) => match error.code() {
                rpc::ErrorCode::Unavailable | rpc::ErrorCode::DeadlineExceeded => {
                    rpc::Error::unavailable("the catalog is not answering; try again shortly")
                }
                _ => rpc::Error::internal(anyhow::anyhow!(
                    "a call to another service failed: {error}"
                )),
            },
            Error::Database(cause) if db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Redis(cause) => rpc::Error::internal(cause),
            Error::Corrupt(cause) => rpc::Error::internal(anyhow::anyhow!(cause)),
        }
    }
}
