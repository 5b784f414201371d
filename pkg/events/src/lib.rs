//! Domain events on JetStream, built once for every service.
//!
//! PostgreSQL is the system of record and JetStream the replayable transport:
//!
//! - **Declarations** live in the contracts (`pkg/api/proto/**/events.proto`, a message with the
//!   `(emporium.options.event)` option). [`names`] is the one place that turns a declaration
//!   into a stream name (`EVENTS_PRODUCT`), a subject (`events.product.<id>.created`), a
//!   durable consumer name or a dead-letter subject.
//! - **Streams** ([`streams`]) are declared in code, one per domain, created or updated at
//!   start-up: file storage, max age, max bytes and a duplicate window.
//! - **Publishing** goes through the transactional outbox: a service calls
//!   [`Outbox::append`] inside the transaction of its change, and the [`Relay`] publishes the
//!   rows in commit order with `Nats-Msg-Id` = row id, marks them, and prunes them later.
//! - **Consuming** ([`Consumer`]) hands each handler a typed [`Delivery`]; the handler returns
//!   an [`Outcome`] (done, retry, give up) and the runtime acks, naks or terminates and logs,
//!   or, where a handler needs it, decides through an [`AckGuard`] that naks when dropped
//!   undecided. [`inbox::record`] makes a handler's effect happen once.
//! - **Dead letters** ([`dead_letter`]): what exhausts its deliveries or is terminated is kept
//!   in the `DEAD_LETTERS` stream with the reason, and can be listed and redriven.
//!
//! The tables (`events_outbox`, `events_inbox`) are created by [`migrate`], idempotently, at
//! every start-up, outside the service's own migrations.
//!
//! This crate must never know about a particular service or event, never publish an event
//! that is not in an outbox row first, and never format a subject or stream name outside
//! [`names`].

pub mod consumer;
pub mod dead_letter;
pub mod headers;
pub mod inbox;
pub mod names;
pub mod outbox;
pub mod relay;
pub mod streams;

pub use consumer::{AckError, AckGuard, Consumer, ConsumerConfig, Delivery, Outcome};
pub use outbox::{Outbox, OutboxError};
pub use relay::{Relay, RelayConfig};
pub use streams::StreamSettings;
pub use telemetry::propagation::TraceHeaders;

use sqlx::PgPool;

/// The schema of the outbox and inbox tables.
const SCHEMA: &str = include_str!("../sql/schema.sql");

/// A transaction-level advisory lock key serialising [`migrate`] across replicas: "empevmig".
const MIGRATE_LOCK_KEY: i64 = 0x656d_7065_766d_6967;

/// Prepares a service that publishes events, at start-up: the outbox tables in its database
/// ([`migrate`]) and the streams of the events its contracts declare it produces
/// ([`streams::ensure_for_producer`], default settings).
pub async fn prepare_producer(
    pool: &PgPool,
    jetstream: &async_nats::jetstream::Context,
    producer: &str,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    migrate(pool)
        .await
        .context("creating the events outbox tables")?;
    streams::ensure_for_producer(jetstream, producer, &StreamSettings::default())
        .await
        .context("declaring the event streams")
}

/// Creates the outbox and inbox tables if they do not exist.
///
/// Plain idempotent DDL rather than a second sqlx `Migrator`: sqlx keeps one version table per
/// database, so a second migrator would see the service's migrations as unknown (and the
/// service's would see these). The advisory lock keeps two replicas starting at once from
/// racing on the catalog.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await
}
