//! The address service: each user's postal addresses, with exactly one default.
//!
//! It serves the contract `pkg/api/proto/emporium/address/v1/address.proto` over NATS
//! and keeps its state in its own PostgreSQL database. Every method acts on the caller's own
//! addresses only: another user's address answers not found, exactly like one that does not
//! exist. "At most one default" and "at least one default while the user has addresses" are
//! enforced by the database itself (a partial unique index and a deferred constraint trigger,
//! see `migrations/`); the service serialises each user's writes so that it never trips them.
//!
//! A request flows handler (`handlers.rs`) -> domain (`domain.rs`, pure rules) -> store
//! (`store.rs`); the lifecycle (admin port, registration, shutdown) is `pkg/host`'s.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand:
//! other services are reached only through their contracts.

pub mod domain;
mod error;
mod handlers;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

pub use error::Error;
pub use handlers::AddressHandlers;

/// The admin port (health, metrics) when `--admin-addr` is not given.
pub const DEFAULT_ADMIN_PORT: u16 = 9104;
/// The database name on the configured server when `--database-url` is not given.
pub const DEFAULT_DATABASE: &str = "address";

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "address-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub nats: config::NatsArgs,
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
}

/// The running service: registered on NATS, admin port bound.
pub struct Application {
    running: host::Running,
}

impl Application {
    /// Connects to NATS and PostgreSQL (creating the database and migrating it), binds
    /// the admin port and registers the service. Requests are served once this returns.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let nats = config.nats.connect("address-service").await?;
        let host = host::Host::new(api::address::SERVICE_NAME, nats);
        let pool = ::store::postgres::connect(
            &config.postgres.url_or_default(DEFAULT_DATABASE),
            config.postgres.max_connections,
            &crate::store::MIGRATOR,
        )
        .await
        .context("connecting to PostgreSQL")?;
        let closing_pool = pool.clone();
        let host = host
            .check(::store::postgres::check(pool.clone()))
            .on_shutdown(async move { closing_pool.close().await });
        let handlers = Arc::new(AddressHandlers::new(pool));
        let service = rpc::Service::new(api::address::SERVICE_NAME, api::address::SERVICE_VERSION)
            .description(api::address::SERVICE_DESCRIPTION)
            .endpoints(api::address::endpoints(handlers))
            .limits(host::limits(&config.service));
        let running = host
            .start(service, config.service.admin_addr_or(DEFAULT_ADMIN_PORT))
            .await?;
        Ok(Self { running })
    }

    /// Where the admin server (health and metrics) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.running.admin_addr()
    }

    /// Serves until `shutdown` completes, then drains and stops (see `pkg/host`).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.running.run_until(shutdown).await
    }
}
