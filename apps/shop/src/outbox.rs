//! The record of each change in the transactional outbox: the events the service publishes
//! on the EVENTS_SHOP stream.

use api::shop::{ShopCreated, ShopStatusChanged, ShopUpdated};
use events::{Outbox, TraceHeaders};
use sqlx::PgConnection;

use crate::domain::ShopStatus;
use crate::error::Error;
use crate::store::ShopRecord;

/// A change to a shop, as the event it is published as.
#[derive(Debug)]
pub enum Change<'a> {
    Created(&'a ShopRecord),
    Updated(&'a ShopRecord),
    StatusChanged {
        shop: &'a ShopRecord,
        previous: ShopStatus,
        /// The user id of the admin or owner who changed it.
        changed_by: &'a str,
    },
}

/// Records `change` in the transaction that made it: the transactional outbox.
///
/// The event row is inserted through `conn`, so an event is published (by the relay) if and
/// only if the change it describes committed. Call it after the write that locks the changed
/// row, so that two changes of one shop append their events in commit order.
#[tracing::instrument(skip_all)]
pub async fn record_change(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    change: Change<'_>,
) -> Result<(), Error> {
    match change {
        Change::Created(shop) => {
            let event = ShopCreated {
                shop: Some(shop.clone().into()),
            };
            Outbox::append(conn, trace, &shop.id.to_string(), &event).await?;
        }
        Change::Updated(shop) => {
            let event = ShopUpdated {
                shop: Some(shop.clone().into()),
            };
            Outbox::append(conn, trace, &shop.id.to_string(), &event).await?;
        }
        Change::StatusChanged {
            shop,
            previous,
            changed_by,
        } => {
            let event = ShopStatusChanged {
                shop: Some(shop.clone().into()),
                previous_status: previous.as_str().to_owned(),
                changed_by: changed_by.to_owned(),
            };
            Outbox::append(conn, trace, &shop.id.to_string(), &event).await?;
        }
    }
    Ok(())
}
