//! Integration tests of the events crate: a private nats-server with JetStream and a fresh
//! PostgreSQL database per test, the real relay and consumer runtime on them.

mod consumers;
mod dead_letters;
mod losses;
mod relay;

use std::future::Future;
use std::time::{Duration, Instant};

use api::Event;
use async_nats::jetstream;
use events::{Outbox, Relay, RelayConfig, StreamSettings};
use sqlx::PgPool;
use testkit::{NatsServer, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A service's view of the events machinery: its database (migrated), NATS with the streams of
/// the product domains, and relays it starts and stops.
pub struct TestEnv {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    _database: TestDatabase,
    _nats_server: NatsServer,
}

impl TestEnv {
    pub async fn start() -> Self {
        telemetry::init_for_tests();
        // The recorder must be installed before the first metric is recorded.
        telemetry::metrics();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let database = testkit::fresh_database().await.expect("a database");
        let pool = PgPool::connect(database.url()).await.expect("connecting");
        events::migrate(&pool).await.expect("migrating");
        events::migrate(&pool)
            .await
            .expect("migrating twice changes nothing");
        let nats = nats_server.connect().await;
        let jetstream = jetstream::new(nats.clone());
        events::streams::ensure_for_producer(
            &jetstream,
            api::product::SERVICE_NAME,
            &StreamSettings::default(),
        )
        .await
        .expect("creating the streams");
        Self {
            pool,
            nats,
            jetstream,
            _database: database,
            _nats_server: nats_server,
        }
    }

    /// A relay with short intervals, so tests do not wait on defaults.
    pub fn relay_config() -> RelayConfig {
        RelayConfig {
            poll_interval: Duration::from_millis(200),
            standby_retry: Duration::from_millis(100),
            ..RelayConfig::new("product")
        }
    }

    pub fn spawn_relay(&self, config: RelayConfig) -> RunningRelay {
        let cancel = CancellationToken::new();
        let handle = Relay::spawn(
            self.pool.clone(),
            self.jetstream.clone(),
            config,
            cancel.clone(),
        );
        RunningRelay { cancel, handle }
    }

    /// Appends `payload` as an event of `aggregate_id` in its own committed transaction.
    pub async fn append<E: Event>(&self, aggregate_id: &str, payload: &E) -> Uuid {
        let mut tx = self.pool.begin().await.unwrap();
        let id = Outbox::append(&mut tx, &Default::default(), aggregate_id, payload)
            .await
            .expect("appending an event");
        tx.commit().await.unwrap();
        id
    }

    /// Every message of `stream`, in stream order.
    pub async fn stream_messages(&self, stream: &str) -> Vec<jetstream::message::StreamMessage> {
        let stream = self.jetstream.get_stream(stream).await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut messages = Vec::new();
        for sequence in 1..=last {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                messages.push(message);
            }
        }
        messages
    }

    pub async fn stream_count(&self, stream: &str) -> u64 {
        self.jetstream
            .get_stream(stream)
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages
    }

    pub async fn unpublished_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events_outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

pub struct RunningRelay {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl RunningRelay {
    /// Stops it the graceful way.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.handle.await.expect("the relay task panicked");
    }

    /// Kills it where it stands, as a crash would.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// A product event payload whose name carries `label`, to tell events apart.
pub fn product_updated(label: &str) -> api::product::ProductUpdated {
    api::product::ProductUpdated {
        product: Some(api::product::Product {
            name: label.to_owned(),
            ..Default::default()
        }),
    }
}

pub fn header(message: &jetstream::message::StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
