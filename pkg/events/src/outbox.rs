//! The transactional outbox: an event is a row written in the transaction of the change it
//! describes, so it exists if and only if the change committed.
//!
//! [`Outbox::append`] is all a service calls. The [`crate::Relay`] publishes the rows; the
//! functions here are the SQL it (and `cargo xtask events republish`) runs.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use telemetry::propagation::TraceHeaders;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{headers, names};

/// The `pg_notify` channel that wakes the relay when a row is appended.
pub(crate) const NOTIFY_CHANNEL: &str = "events_outbox";

/// Why an event could not be appended or published.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Name(#[from] names::NameError),
    #[error("encoding the payload of {event}: {source}")]
    Encode {
        event: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Appends events to the outbox of the service's database.
pub struct Outbox;

impl Outbox {
    /// Inserts `payload` as an event of `aggregate_id` through `conn`, which must be inside
    /// the transaction of the change the event describes, and wakes the relay when that
    /// transaction commits (NOTIFY is delivered at commit, and not at all on rollback).
    ///
    /// Append after the write that locks the aggregate's row: then two changes of one
    /// aggregate append in commit order, which is the order the relay publishes in.
    ///
    /// `trace` is the trace context of the request that made the change (`ctx.trace()` in a
    /// handler), so a consumer's span joins that request's trace. Work no request started
    /// (seeding, a sweeper, a saga step) passes [`TraceHeaders::default`]: the current span's
    /// context is used when there is one.
    ///
    /// Returns the event id (UUID v7), which is also its `Nats-Msg-Id`.
    pub async fn append<E: api::Event>(
        conn: &mut PgConnection,
        trace: &TraceHeaders,
        aggregate_id: &str,
        payload: &E,
    ) -> Result<Uuid, OutboxError> {
        let descriptor = E::DESCRIPTOR;
        let subject = names::subject(descriptor, aggregate_id)?;
        let payload = serde_json::to_value(payload).map_err(|source| OutboxError::Encode {
            event: descriptor.name,
            source,
        })?;
        let id = Uuid::now_v7();
        let headers = event_headers(descriptor, id, aggregate_id, trace);
        sqlx::query(
            "INSERT INTO events_outbox (id, aggregate_id, event_name, subject, payload, headers) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(aggregate_id)
        .bind(descriptor.name)
        .bind(&subject)
        .bind(&payload)
        .bind(serde_json::to_value(&headers).unwrap_or_default())
        .execute(&mut *conn)
        .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }
}

/// The headers stored with an event (Nats-Msg-Id is added when it is published).
fn event_headers(
    descriptor: &api::EventDescriptor,
    id: Uuid,
    aggregate_id: &str,
    trace: &TraceHeaders,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    map.insert(headers::EVENT_ID.to_owned(), id.to_string());
    map.insert(headers::EVENT_TYPE.to_owned(), descriptor.name.to_owned());
    map.insert(
        headers::EVENT_VERSION.to_owned(),
        descriptor.version.to_string(),
    );
    map.insert(headers::PRODUCER.to_owned(), descriptor.producer.to_owned());
    map.insert(headers::AGGREGATE_ID.to_owned(), aggregate_id.to_owned());
    map.insert(headers::CONTENT_TYPE.to_owned(), headers::JSON.to_owned());
    // The trace context of the change, so a consumer's span joins the request's trace.
    let mut carried = HeaderMap::new();
    telemetry::propagation::inject_current(&mut carried, trace);
    for name in [headers::TRACEPARENT, headers::TRACESTATE] {
        if let Some(value) = carried.get(name) {
            map.insert(name.to_owned(), value.as_str().to_owned());
        }
    }
    map
}

/// An outbox row as the relay reads it.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub position: i64,
    pub aggregate_id: String,
    pub event_name: String,
    pub subject: String,
    pub payload: serde_json::Value,
    pub headers: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

const ROW_COLUMNS: &str = "id, position, aggregate_id, event_name, subject, payload, headers, \
                           created_at, published_at";

impl OutboxRow {
    /// The NATS headers of the message, with `Nats-Msg-Id` = `msg_id`.
    pub fn nats_headers(&self, msg_id: &str) -> HeaderMap {
        let mut out = HeaderMap::new();
        if let Some(map) = self.headers.as_object() {
            for (name, value) in map {
                if let Some(value) = value.as_str() {
                    out.insert(name.as_str(), value);
                }
            }
        }
        out.insert(headers::MSG_ID, msg_id);
        out
    }

    /// The payload as published: compact JSON.
    pub fn payload_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(&self.payload).unwrap_or_default())
    }

    /// Publishes the row with its own id as `Nats-Msg-Id` and waits for JetStream's ack.
    /// A duplicate (the stream already has that id within its window) is a success.
    ///
    /// The publication is a producer span (`send <event type>`), a child of the trace context
    /// stored with the row (the change's), and the message carries the producer span's context,
    /// so each consumer's span is a child of the publication.
    pub async fn publish(&self, jetstream: &jetstream::Context) -> anyhow::Result<()> {
        let id = self.id.to_string();
        let mut headers = self.nats_headers(&id);
        let span = self.producer_span();
        telemetry::propagation::set_parent(&span, &TraceHeaders::from_nats(Some(&headers)));
        telemetry::propagation::inject_span(&span, &mut headers);
        let publish = PublishMessage::build()
            .payload(self.payload_bytes())
            .headers(headers);
        let published = async {
            let ack = jetstream
                .send_publish(self.subject.clone(), publish)
                .await?
                .await?;
            if ack.duplicate {
                tracing::debug!(event_id = %self.id, "already in the stream; dropped as a duplicate");
            }
            anyhow::Ok(())
        }
        .instrument(span.clone())
        .await;
        if let Err(error) = &published {
            span.record("error.type", "publish_failed");
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", error.to_string());
        }
        published
    }

    /// The span of the row's publication: DEBUG like the request spans (the relay publishes
    /// every event), exported whenever traces are.
    fn producer_span(&self) -> tracing::Span {
        tracing::debug_span!(
            target: telemetry::REQUEST_TARGET,
            "event.publish",
            otel.name = %format_args!("send {}", self.event_name),
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.destination.name = %self.subject,
            messaging.operation.type = "send",
            messaging.operation.name = "publish",
            messaging.message.id = %self.id,
            "error.type" = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        )
    }
}

/// The oldest `limit` rows not yet published, in commit order.
pub(crate) async fn pending(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<OutboxRow>> {
    sqlx::query_as(&format!(
        "SELECT {ROW_COLUMNS} FROM events_outbox WHERE published_at IS NULL \
         ORDER BY position LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn mark_published(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query("UPDATE events_outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn count_pending(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM events_outbox WHERE published_at IS NULL")
        .fetch_one(conn)
        .await
}

/// Deletes published rows older than `retention`; returns how many.
pub(crate) async fn prune(
    conn: &mut PgConnection,
    retention: std::time::Duration,
) -> sqlx::Result<u64> {
    let seconds = retention.as_secs_f64();
    let deleted = sqlx::query(
        "DELETE FROM events_outbox WHERE published_at IS NOT NULL \
         AND published_at < now() - make_interval(secs => $1)",
    )
    .bind(seconds)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(deleted)
}

/// Every row, published or not, created at or after `since`, in commit order.
pub async fn rows_since(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<OutboxRow>> {
    sqlx::query_as(&format!(
        "SELECT {ROW_COLUMNS} FROM events_outbox WHERE created_at >= $1 ORDER BY position"
    ))
    .bind(since)
    .fetch_all(pool)
    .await
}

/// Re-publishes every kept row created at or after `since`, with its original `Nats-Msg-Id`:
/// messages the stream still has inside its duplicate window are dropped by JetStream, the
/// others (lost in a broker crash, or older) are stored again. Unpublished rows are left to the
/// relay. Returns how many rows were sent.
pub async fn republish_since(
    pool: &PgPool,
    jetstream: &jetstream::Context,
    since: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rows = rows_since(pool, since).await?;
    let mut sent = 0;
    for row in rows.iter().filter(|r| r.published_at.is_some()) {
        row.publish(jetstream).await?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::Event as _;

    #[test]
    fn stored_headers_name_the_event_and_carry_the_trace() {
        let trace = TraceHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
        };
        let id = Uuid::now_v7();
        let map = event_headers(api::product::ProductCreated::DESCRIPTOR, id, "p1", &trace);
        assert_eq!(map[headers::EVENT_TYPE], "product.created");
        assert_eq!(map[headers::EVENT_VERSION], "1");
        assert_eq!(map[headers::PRODUCER], "product");
        assert_eq!(map[headers::AGGREGATE_ID], "p1");
        assert_eq!(map[headers::EVENT_ID], id.to_string());
        assert_eq!(map[headers::CONTENT_TYPE], "application/json");
        assert!(map[headers::TRACEPARENT].contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    }
}
