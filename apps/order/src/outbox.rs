//! The record of each change in the transactional outbox: the events the service publishes.
//!
//! Every event's aggregate is the order (subjects `events.order.<order id>.<event>` and
//! `events.suborder.<order id>.<event>`), so whoever follows an order follows its sub-orders
//! too. Call these after the write that locked the order's row, so that one order's events
//! are appended in commit order.

use api::order::{
    OrderCancelled, OrderCreated, OrderFailed, OrderPaid, OrderRefunded, SubOrderDelivered,
    SubOrderShipped,
};
use events::{Outbox, OutboxError, TraceHeaders};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{OrderStatus, SubOrderStatus};
use crate::store::{self, Actor, FailureRecord};
use crate::views;

/// A change to an order, as the event it is published as.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    Created,
    Paid,
    Failed,
    Cancelled,
    Refunded,
    Shipped { sub_order_id: Uuid },
    Delivered { sub_order_id: Uuid },
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("order {0} vanished while its change was recorded")]
    Missing(Uuid),
}

/// Appends the event of `change` to order `order_id` through `conn`, with the order as it
/// now stands in this transaction.
#[tracing::instrument(skip_all, fields(order_id = %order_id, change = ?change))]
pub async fn record(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    order_id: Uuid,
    change: Change,
) -> Result<(), RecordError> {
    let record = store::get_order(&mut *conn, order_id)
        .await?
        .ok_or(RecordError::Missing(order_id))?;
    let aggregate = order_id.to_string();
    let order_status = record.status().as_str().to_owned();
    let order = views::order(&mut *conn, record, false).await?;
    let sub_order = |id: Uuid| {
        order
            .sub_orders
            .iter()
            .find(|s| s.id == id.to_string())
            .cloned()
    };
    match change {
        Change::Created => {
            let event = OrderCreated { order: Some(order) };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
        Change::Paid => {
            let event = OrderPaid { order: Some(order) };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
        Change::Failed => {
            let event = OrderFailed { order: Some(order) };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
        Change::Cancelled => {
            let event = OrderCancelled { order: Some(order) };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
        Change::Refunded => {
            let event = OrderRefunded { order: Some(order) };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
        Change::Shipped { sub_order_id } => {
            let event = SubOrderShipped {
                sub_order: sub_order(sub_order_id),
                order_status,
            };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
        Change::Delivered { sub_order_id } => {
            let event = SubOrderDelivered {
                sub_order: sub_order(sub_order_id),
                order_status,
            };
            Outbox::append(conn, trace, &aggregate, &event).await?;
        }
    }
    Ok(())
}

/// A status change of an order, and of those of its sub-orders in some statuses, as one
/// history row and one event.
pub struct Move<'a> {
    pub to: OrderStatus,
    /// Sub-orders in one of `.0` move to `.1`.
    pub sub_orders: Option<(&'a [SubOrderStatus], SubOrderStatus)>,
    pub failure: Option<&'a FailureRecord>,
    pub actor: Actor,
    pub reason: &'a str,
    pub event: Change,
}

/// Makes `change` to order `order_id` through `conn`: the statuses, the history row and the
/// event, in the caller's transaction (which holds the order's row lock).
pub async fn apply(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    order_id: Uuid,
    change: Move<'_>,
) -> Result<(), RecordError> {
    let (from, to) = match change.sub_orders {
        Some((from, to)) => (from, Some(to)),
        None => (&[][..], None),
    };
    store::set_status(
        conn,
        order_id,
        change.to,
        from,
        to,
        change.failure,
        change.actor,
        change.reason,
    )
    .await?;
    record(conn, trace, order_id, change.event).await
}
