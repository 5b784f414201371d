//! The record of each change in the transactional outbox: the events the service publishes.
//!
//! Requests and the expiry sweeper both record changes, so this lives apart from both.

use events::{Outbox, TraceHeaders};
use sqlx::PgConnection;

use crate::error::Error;
use crate::redemptions::RedemptionRecord;

/// A change to a redemption, as the event it is published as.
#[derive(Debug)]
pub enum Change<'a> {
    /// Committed: the use is final.
    Redeemed(&'a RedemptionRecord),
    /// Released by the checkout, or expired: the held use was given back.
    Released(&'a RedemptionRecord),
    /// Returned after its order was cancelled: the committed use was given back.
    Returned(&'a RedemptionRecord),
}

/// Records `change` in the transaction that made it: the transactional outbox.
///
/// The event row is inserted through `conn`, so an event is published (by the relay) if and
/// only if the change it describes committed. The aggregate is the voucher (subjects are
/// `events.voucher.<voucher id>.<event>`); call it after the write that locks the voucher's
/// row, so that the events of one voucher are appended in commit order.
#[tracing::instrument(skip_all)]
pub async fn record_change(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    change: Change<'_>,
) -> Result<(), Error> {
    use api::voucher::{VoucherRedeemed, VoucherReleased, VoucherReturned};
    match change {
        Change::Redeemed(redemption) => {
            let event = VoucherRedeemed {
                redemption: Some(redemption.clone().into()),
            };
            Outbox::append(conn, trace, &redemption.voucher_id.to_string(), &event).await?;
        }
        Change::Released(redemption) => {
            let event = VoucherReleased {
                redemption: Some(redemption.clone().into()),
            };
            Outbox::append(conn, trace, &redemption.voucher_id.to_string(), &event).await?;
        }
        Change::Returned(redemption) => {
            let event = VoucherReturned {
                redemption: Some(redemption.clone().into()),
            };
            Outbox::append(conn, trace, &redemption.voucher_id.to_string(), &event).await?;
        }
    }
    Ok(())
}
