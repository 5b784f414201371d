//! The failures of the service's operations past request parsing, and what callers are told.

use uuid::Uuid;

use crate::domain::{Reason, RedemptionStatus};

/// Why a voucher or redemption operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such code, or one the caller may not see: the two are deliberately alike.
    #[error("voucher {0:?} not found")]
    VoucherNotFound(String),

    #[error("a voucher with the code {0:?} already exists (codes match without regard to case)")]
    CodeTaken(String),

    #[error("redemption of order {0} not found")]
    RedemptionNotFound(Uuid),

    #[error("order {0} already redeemed a voucher with a different code, user or amount")]
    RedemptionDiffers(Uuid),

    /// The code cannot be used now; the reason is the evaluation's.
    #[error("voucher {code:?} cannot be used: {reason} ({message})")]
    NotUsable {
        code: String,
        reason: Reason,
        message: String,
    },

    #[error("the amount is in {found}, but voucher {code:?} is in {expected}: wrong_currency")]
    WrongCurrency {
        code: String,
        expected: String,
        found: String,
    },

    #[error("redemption of order {order_id} is {status}")]
    RedemptionEnded {
        order_id: Uuid,
        status: RedemptionStatus,
    },

    #[error("redemption of order {0} has expired")]
    RedemptionExpired(Uuid),

    #[error(
        "redemption of order {order_id} is {status}: only a committed redemption can be \
         returned (it is the only kind whose use counts)"
    )]
    RedemptionNotReturnable {
        order_id: Uuid,
        status: RedemptionStatus,
    },

    #[error(
        "usage_limit cannot go below the uses already committed or held; \
         disable the voucher instead"
    )]
    UsageLimitBelowUses,

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Outbox(#[from] events::OutboxError),
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::VoucherNotFound(_) | Error::RedemptionNotFound(_) => {
                rpc::Error::not_found(message)
            }
            Error::CodeTaken(_) => {
                rpc::Error::conflict(message).with_details(vec![rpc::FieldViolation {
                    field: "code".into(),
                    problem: "is taken by another voucher (codes match without regard to case)"
                        .into(),
                }])
            }
            Error::RedemptionDiffers(_) => rpc::Error::conflict(message),
            Error::NotUsable { .. }
            | Error::WrongCurrency { .. }
            | Error::RedemptionEnded { .. }
            | Error::RedemptionExpired(_)
            | Error::RedemptionNotReturnable { .. }
            | Error::UsageLimitBelowUses => rpc::Error::failed_precondition(message),
            // The request's deadline (or the pool's statement timeout) cancelled a statement.
            Error::Database(cause) if ::db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Outbox(cause) => rpc::Error::internal(cause),
        }
    }
}

/// The name of the constraint a database error broke, if it broke one.
pub fn constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(error) => error.constraint(),
        _ => None,
    }
}
