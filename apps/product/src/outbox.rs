//! The record of each change in the transactional outbox: the events the service publishes.
//!
//! Both `store` and `inventory` write changes, and the sweeper in `inventory` records its own,
//! so this lives apart from both: it depends on the rows (`records`) only.

use events::{Outbox, TraceHeaders};
use sqlx::PgConnection;

use crate::domain::{ProductId, ReservationId, StockLevel};
use crate::error::Error;
use crate::records::{CategoryRecord, ProductRecord, ReservationRecord};

/// A change to the catalog or the inventory, as the event it is published as.
#[derive(Debug)]
pub enum Change<'a> {
    ProductCreated {
        product: &'a ProductRecord,
        initial_stock: i64,
    },
    ProductUpdated(&'a ProductRecord),
    CategoryCreated(&'a CategoryRecord),
    StockSet {
        product_id: ProductId,
        level: StockLevel,
    },
    ReservationHeld(&'a ReservationRecord),
    ReservationReleased(&'a ReservationRecord),
    ReservationCommitted(&'a ReservationRecord),
    ReservationRestocked(&'a ReservationRecord),
    ReservationExpired(ReservationId),
}

/// Records `change` in the transaction that made it: the transactional outbox.
///
/// The event row is inserted through `conn`, so an event is published (by the relay) if and
/// only if the change it describes committed. Call it after the write that locks the changed
/// row, so that two changes of one aggregate append their events in commit order. Changes no
/// other service needs to hear about (categories, stock levels) are not published yet.
#[tracing::instrument(skip_all)]
pub async fn record_change(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    change: Change<'_>,
) -> Result<(), Error> {
    use api::product::{
        InventoryCommitted, InventoryExpired, InventoryReleased, InventoryReserved,
        InventoryRestocked, ProductCreated, ProductUpdated,
    };
    match change {
        Change::ProductCreated {
            product,
            initial_stock,
        } => {
            let event = ProductCreated {
                product: Some(product.clone().into()),
                initial_stock,
            };
            Outbox::append(conn, trace, &product.id.to_string(), &event).await?;
        }
        Change::ProductUpdated(product) => {
            let event = ProductUpdated {
                product: Some(product.clone().into()),
            };
            Outbox::append(conn, trace, &product.id.to_string(), &event).await?;
        }
        Change::ReservationHeld(reservation) => {
            let event = InventoryReserved {
                reservation: Some(reservation.clone().into()),
            };
            Outbox::append(conn, trace, &reservation.id.to_string(), &event).await?;
        }
        Change::ReservationReleased(reservation) => {
            let event = InventoryReleased {
                reservation: Some(reservation.clone().into()),
            };
            Outbox::append(conn, trace, &reservation.id.to_string(), &event).await?;
        }
        Change::ReservationCommitted(reservation) => {
            let event = InventoryCommitted {
                reservation: Some(reservation.clone().into()),
            };
            Outbox::append(conn, trace, &reservation.id.to_string(), &event).await?;
        }
        Change::ReservationRestocked(reservation) => {
            let event = InventoryRestocked {
                reservation: Some(reservation.clone().into()),
            };
            Outbox::append(conn, trace, &reservation.id.to_string(), &event).await?;
        }
        Change::ReservationExpired(id) => {
            let event = InventoryExpired {
                reservation_id: id.to_string(),
            };
            Outbox::append(conn, trace, &id.to_string(), &event).await?;
        }
        Change::CategoryCreated(_) | Change::StockSet { .. } => {
            tracing::trace!(?change, "change not published");
        }
    }
    Ok(())
}
