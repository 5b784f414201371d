//! The inbox: which events a consumer has already applied.
//!
//! A handler calls [`record`] inside the transaction that applies the event's effect. When it
//! returns `false` the event was applied before (a redelivery: the ack of the first delivery
//! was lost, or the message was redriven), and the handler skips the effect and acks. Because
//! the record and the effect commit together, a redelivered event has its effect exactly once.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Records that `consumer` applied `event_id`; `false` if it already had.
///
/// Run it first in the handler's transaction: a concurrent delivery of the same event waits on
/// the primary key until this transaction ends, then sees it recorded.
pub async fn record(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO events_inbox (consumer, event_id) VALUES ($1, $2) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Deletes inbox entries older than `older_than`. Keep them at least as long as the stream
/// keeps messages (its max age), since any stored message can still be redelivered.
pub async fn prune(pool: &PgPool, older_than: Duration) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM events_inbox WHERE processed_at < now() - make_interval(secs => $1)",
    )
    .bind(older_than.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted)
}
