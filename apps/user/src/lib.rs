//! The user service: each account's profile and preferences.
//!
//! It serves the `user` contract (`pkg/api/proto/emporium/user/v1/user.proto`) over NATS and
//! makes a profile for every account from the auth service's `user.registered` events
//! (`consumer.rs`, a durable JetStream consumer). Profiles are documents in a store chosen at
//! start-up (`store.rs`): MongoDB when `--mongodb-url` is given, otherwise JSONB in the
//! service's own PostgreSQL database.
//!
//! A request flows handler (`handlers.rs`) -> domain (`domain.rs`, pure rules) -> store; the
//! lifecycle (admin port, registration, background tasks, shutdown) is `pkg/host`'s.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand:
//! other services are reached only through their contracts and events.

pub mod consumer;
pub mod domain;
mod handlers;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

pub use handlers::UserHandlers;

use crate::store::ProfileStore;
use crate::store::mongo::MongoProfiles;
use crate::store::postgres::PgProfiles;

/// The admin port (health, metrics) when `--admin-addr` is not given.
pub const DEFAULT_ADMIN_PORT: u16 = 9103;
/// The database name (PostgreSQL, or MongoDB when its URL names none) when not configured.
pub const DEFAULT_DATABASE: &str = "user";

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "user-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub nats: config::NatsArgs,
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    /// When set, profiles live in MongoDB and PostgreSQL is not used.
    #[command(flatten)]
    pub mongo: config::MongoArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
}

/// The running service: registered on NATS, admin port bound, consumer running.
pub struct Application {
    running: host::Running,
}

impl Application {
    /// Connects to NATS and to the profile store (MongoDB if configured, otherwise PostgreSQL,
    /// creating and migrating the database), creates the `user.registered` consumer, binds the
    /// admin port and registers the service. Requests are served and events consumed once this
    /// returns.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let nats = config.nats.connect("user-service").await?;
        // Installs the Prometheus recorder before the first metric is recorded.
        let host = host::Host::new(api::user::SERVICE_NAME, nats.clone());
        let jetstream = async_nats::jetstream::new(nats);
        let running = match &config.mongo.mongodb_url {
            Some(url) => {
                let client = ::store::mongo::connect(url).await?;
                let database = client
                    .default_database()
                    .unwrap_or_else(|| client.database(DEFAULT_DATABASE));
                let profiles = MongoProfiles::open(&database)
                    .await
                    .context("creating the MongoDB indexes")?;
                let closing = client.clone();
                let host = host
                    .check(::store::mongo::check(client))
                    .on_shutdown(async move { closing.shutdown().await });
                serve(host, jetstream, profiles, &config).await?
            }
            None => {
                let pool = ::store::postgres::connect(
                    &config.postgres.url_or_default(DEFAULT_DATABASE),
                    config.postgres.max_connections,
                    &store::postgres::MIGRATOR,
                )
                .await
                .context("connecting to PostgreSQL")?;
                let closing = pool.clone();
                let host = host
                    .check(::store::postgres::check(pool.clone()))
                    .on_shutdown(async move { closing.close().await });
                serve(host, jetstream, PgProfiles::new(pool), &config).await?
            }
        };
        Ok(Self { running })
    }

    /// Where the admin server (health and metrics) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.running.admin_addr()
    }

    /// Serves until `shutdown` completes, then stops taking requests, answers those in flight,
    /// stops the consumer (letting handlers in flight decide their messages) and the admin
    /// server, and closes the store (the order `host` gives every service).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.running.run_until(shutdown).await
    }
}

/// Starts the consumer and the rpc service on `profiles`, whichever store it is.
async fn serve<S: ProfileStore>(
    host: host::Host,
    jetstream: async_nats::jetstream::Context,
    profiles: S,
    config: &Config,
) -> anyhow::Result<host::Running> {
    // The consumer is created here rather than in the background task so that it exists
    // (and a start-up failure surfaces) before `build` returns.
    let stop_consumer = CancellationToken::new();
    let consumer = consumer::spawn(
        jetstream,
        events::ConsumerConfig::new(api::user::SERVICE_NAME),
        profiles.clone(),
        stop_consumer.clone(),
    )
    .await
    .context("starting the user.registered consumer")?;
    // Stops the consumer again if the service fails to start.
    let stop_on_failure = stop_consumer.clone().drop_guard();

    let handlers = Arc::new(UserHandlers::new(profiles));
    let service = rpc::Service::new(api::user::SERVICE_NAME, api::user::SERVICE_VERSION)
        .description(api::user::SERVICE_DESCRIPTION)
        .endpoints(api::user::endpoints(handlers))
        .limits(host::limits(&config.service));
    let running = host
        .background("user.registered consumer", move |cancel| {
            tokio::spawn(async move {
                cancel.cancelled().await;
                stop_consumer.cancel();
                if let Err(error) = consumer.await {
                    tracing::warn!(%error, "the user.registered consumer ended abnormally");
                }
            })
        })
        .start(service, config.service.admin_addr_or(DEFAULT_ADMIN_PORT))
        .await?;
    stop_on_failure.disarm();
    Ok(running)
}
