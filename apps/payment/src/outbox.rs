//! The record of each change of a payment in the transactional outbox: the events the service
//! publishes on EVENTS_PAYMENT (subjects `events.payment.<payment id>.<event>`).

use api::payment::{
    Payment, PaymentAuthorized, PaymentCaptured, PaymentFailed, PaymentRefunded, PaymentVoided,
};
use events::{Outbox, TraceHeaders};
use sqlx::PgConnection;
use vocab::Money;

use crate::error::Error;

/// A change of a payment, as the event it is published as.
#[derive(Debug)]
pub enum Change {
    /// The provider approved the authorisation.
    Authorized,
    /// The provider declined the authorisation.
    Failed,
    Captured,
    Voided,
    /// This refund's own amount.
    Refunded(Money),
}

/// Records `change` of `payment` (as it is after the change) in the transaction that made it:
/// the event is published (by the relay) if and only if the change committed. Call it after
/// the write that inserted or locked the payment's row, so that one payment's events are
/// appended in commit order.
#[tracing::instrument(skip_all, fields(payment_id = %payment.id))]
pub async fn record_change(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    payment: &Payment,
    change: Change,
) -> Result<(), Error> {
    let aggregate = payment.id.as_str();
    let payment = Some(payment.clone());
    match change {
        Change::Authorized => {
            Outbox::append(conn, trace, aggregate, &PaymentAuthorized { payment }).await?
        }
        Change::Failed => {
            Outbox::append(conn, trace, aggregate, &PaymentFailed { payment }).await?
        }
        Change::Captured => {
            Outbox::append(conn, trace, aggregate, &PaymentCaptured { payment }).await?
        }
        Change::Voided => {
            Outbox::append(conn, trace, aggregate, &PaymentVoided { payment }).await?
        }
        Change::Refunded(amount) => {
            let event = PaymentRefunded {
                payment,
                amount: Some(amount.into()),
            };
            Outbox::append(conn, trace, aggregate, &event).await?
        }
    };
    Ok(())
}
