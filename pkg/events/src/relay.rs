//! The relay: publishes a service's outbox rows to JetStream.
//!
//! One relay per service database is the leader at any time: it holds a session-level
//! advisory lock (`pg_try_advisory_lock`) on a connection of its own, outside the pool, and
//! the other replicas' relays retry every few seconds. A single publisher is what keeps the
//! rows in commit order on the stream and keeps replicas from publishing the same row twice
//! (row locking with SKIP LOCKED would split the work, but also the order). If the leader
//! dies its connection closes, PostgreSQL drops the lock, and a standby takes over.
//!
//! The leader LISTENs on the outbox channel, so a commit wakes it at once; it also polls
//! every `poll_interval` in case a notification was lost (they are, while the listener
//! reconnects). Each pass publishes the unpublished rows in `position` order, one at a time,
//! waiting for each ack before the next: with a pipeline, a failed publish followed by a
//! successful one would store a later event of an aggregate before an earlier one once the
//! failed one is retried. Acked rows are marked published and pruned after `retention`.
//!
//! A crash after a publish and before the mark publishes the row again on restart; the
//! stream's duplicate window drops it because `Nats-Msg-Id` is the row id.
//!
//! A publish that finds no stream (JetStream lost it: deleted, or a server whose store was
//! wiped) declares the event's stream again, with the producer's settings, and publishes once
//! more, so the service carries on without a restart.
//!
//! Metrics: `events_outbox_pending` (gauge, rows not yet published, sampled by the leader),
//! `events_outbox_oldest_pending_age_seconds` (how long the oldest of them has waited),
//! `events_published_total{event}`, `events_relay_leader` (1 on the leader),
//! `events_relay_streams_redeclared_total{stream}`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use sqlx::postgres::PgListener;
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::outbox::{self, NOTIFY_CHANNEL, OutboxRow};
use crate::{StreamSettings, names, streams};

/// The advisory lock key of the relay leadership, one per database: "emprelay" in ASCII.
const LEADER_LOCK_KEY: i64 = 0x656d_7072_656c_6179;

/// How the relay runs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The producing service, for logs.
    pub service: String,
    /// Rows read per query.
    pub batch_size: i64,
    /// The fallback poll, for notifications lost while the listener reconnects.
    pub poll_interval: Duration,
    /// How often a standby tries to become the leader.
    pub standby_retry: Duration,
    /// How long published rows are kept for `cargo xtask events republish`.
    pub retention: Duration,
    /// How often published rows past the retention are deleted.
    pub prune_interval: Duration,
    /// The limits a stream is declared with again when JetStream has lost it.
    pub stream_settings: StreamSettings,
}

impl RelayConfig {
    /// The defaults, with the retention and poll interval a service was configured with.
    pub fn configured(service: impl Into<String>, args: &config::OutboxArgs) -> Self {
        Self {
            retention: args.retention(),
            poll_interval: args.poll_interval(),
            ..Self::new(service)
        }
    }

    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            standby_retry: Duration::from_secs(3),
            retention: Duration::from_secs(24 * 3600),
            prune_interval: Duration::from_secs(60),
            stream_settings: StreamSettings::default(),
        }
    }
}

/// Spawns the relay of the outbox in `pool`'s database.
pub struct Relay;

impl Relay {
    /// Runs the relay until `cancel` fires: as the leader when it gets the lock, as a standby
    /// otherwise. Errors are logged and retried; the task ends only on cancellation.
    pub fn spawn(
        pool: PgPool,
        jetstream: jetstream::Context,
        config: RelayConfig,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if cancel.is_cancelled() {
                    break;
                }
                match try_lead(&pool, &jetstream, &config, &cancel).await {
                    Ok(Leadership::Stopped) => break,
                    Ok(Leadership::Standby) => {}
                    Err(error) => {
                        metrics::gauge!("events_relay_leader").set(0.0);
                        tracing::warn!(service = %config.service, error = format!("{error:#}"), "outbox relay failed; retrying");
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(config.standby_retry) => {}
                }
            }
            tracing::debug!(service = %config.service, "outbox relay stopped");
        })
    }
}

enum Leadership {
    /// Another relay leads; try again later.
    Standby,
    /// Cancelled.
    Stopped,
}

async fn try_lead(
    pool: &PgPool,
    jetstream: &jetstream::Context,
    config: &RelayConfig,
    cancel: &CancellationToken,
) -> anyhow::Result<Leadership> {
    // Its own connection, not a pooled one: a session lock on a pooled connection would stay
    // held by whichever task used that connection next.
    let mut conn = PgConnection::connect_with(&pool.connect_options())
        .await
        .context("connecting for the relay lock")?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK_KEY)
        .fetch_one(&mut conn)
        .await?;
    if !leader {
        let _ = conn.close().await;
        return Ok(Leadership::Standby);
    }
    tracing::info!(service = %config.service, "outbox relay is the leader");
    metrics::gauge!("events_relay_leader").set(1.0);
    let led = lead(&mut conn, pool, jetstream, config, cancel).await;
    metrics::gauge!("events_relay_leader").set(0.0);
    // Closing the session releases the lock.
    let _ = conn.close().await;
    led
}

async fn lead(
    conn: &mut PgConnection,
    pool: &PgPool,
    jetstream: &jetstream::Context,
    config: &RelayConfig,
    cancel: &CancellationToken,
) -> anyhow::Result<Leadership> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .context("connecting the outbox listener")?;
    listener.listen(NOTIFY_CHANNEL).await?;
    let mut last_prune: Option<Instant> = None;
    loop {
        // Publish everything pending, batch after batch.
        loop {
            if cancel.is_cancelled() {
                return Ok(Leadership::Stopped);
            }
            match publish_batch(conn, jetstream, config).await? {
                Pass::Full => continue,
                Pass::Drained | Pass::PublishFailed => break,
            }
        }
        let pending = outbox::count_pending(conn).await?;
        metrics::gauge!("events_outbox_pending").set(pending as f64);
        metrics::gauge!("events_outbox_oldest_pending_age_seconds")
            .set(oldest_pending_age(conn).await?);
        if last_prune.is_none_or(|at| at.elapsed() >= config.prune_interval) {
            let pruned = outbox::prune(conn, config.retention).await?;
            if pruned > 0 {
                tracing::debug!(pruned, "pruned published outbox rows");
            }
            last_prune = Some(Instant::now());
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(Leadership::Stopped),
            notification = listener.recv() => {
                notification.context("listening for outbox rows")?;
            }
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}

/// How long the oldest unpublished row has waited, in seconds; 0 when none waits. The first
/// in `position` order, through the index of unpublished rows.
async fn oldest_pending_age(conn: &mut PgConnection) -> sqlx::Result<f64> {
    let age: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - created_at)::float8 FROM events_outbox
         WHERE published_at IS NULL ORDER BY position LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(age.unwrap_or(0.0).max(0.0))
}

/// Publishes `row`; when no stream takes its subject, declares the event's stream again and
/// publishes once more.
async fn publish_declaring_lost_stream(
    row: &OutboxRow,
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
) -> anyhow::Result<()> {
    let error = match row.publish(jetstream).await {
        Ok(()) => return Ok(()),
        Err(error) if stream_not_found(&error) => error,
        Err(error) => return Err(error),
    };
    let Some(event) = api::EVENTS.iter().find(|e| e.name == row.event_name) else {
        // An event this build does not declare (a row of an older release): its stream is
        // not ours to declare.
        return Err(error);
    };
    let stream = names::stream_of(event);
    tracing::warn!(%stream, event = %row.event_name, "no stream takes the event; JetStream lost it, declaring it again");
    streams::ensure(jetstream, event.domain, settings)
        .await
        .with_context(|| format!("declaring the lost stream {stream} again"))?;
    metrics::counter!("events_relay_streams_redeclared_total", "stream" => stream).increment(1);
    row.publish(jetstream).await
}

/// Whether a publish failed because no stream listens on the subject (no responders).
fn stream_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<PublishError>()
        .is_some_and(|error| error.kind() == PublishErrorKind::StreamNotFound)
}

enum Pass {
    /// A whole batch was published: there may be more.
    Full,
    /// Fewer rows than a batch: nothing is left.
    Drained,
    /// JetStream refused or did not answer: wait and retry from the first unacked row.
    PublishFailed,
}

async fn publish_batch(
    conn: &mut PgConnection,
    jetstream: &jetstream::Context,
    config: &RelayConfig,
) -> anyhow::Result<Pass> {
    let batch_size = config.batch_size;
    let rows = outbox::pending(conn, batch_size).await?;
    let mut published: Vec<Uuid> = Vec::with_capacity(rows.len());
    let mut failed = false;
    for row in &rows {
        match publish_declaring_lost_stream(row, jetstream, &config.stream_settings).await {
            Ok(()) => {
                published.push(row.id);
                metrics::counter!("events_published_total", "event" => row.event_name.clone())
                    .increment(1);
            }
            Err(error) => {
                tracing::warn!(event_id = %row.id, subject = %row.subject, error = format!("{error:#}"), "publishing an event failed; will retry");
                failed = true;
                break;
            }
        }
    }
    if !published.is_empty() {
        outbox::mark_published(conn, &published).await?;
    }
    Ok(if failed {
        Pass::PublishFailed
    } else if rows.len() as i64 >= batch_size {
        Pass::Full
    } else {
        Pass::Drained
    })
}
