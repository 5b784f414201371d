//! The product service: the catalog (products and hierarchical categories), full-text search,
//! and the inventory that checkout reserves stock from.
//!
//! It serves the `product` contract (`pkg/api/proto/emporium/product/v1/product.proto`) over
//! NATS and keeps its state in its own PostgreSQL database, with `GetProduct` cached in Redis.
//! A request flows handler (parse, decide what the caller may see) -> domain (pure rules) ->
//! store (SQL); writes run in one transaction together with the record of the change they make,
//! an event in the transactional outbox (`pkg/events`), which the relay then publishes to the
//! EVENTS_PRODUCT and EVENTS_INVENTORY streams.
//!
//! It must never speak HTTP, read another service's database, or write a NATS subject by hand:
//! other services are reached only through their contracts.

pub mod domain;
mod error;
mod handlers;
pub mod inventory;
pub mod seed;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use error::Error;
pub use handlers::ProductHandlers;

/// The admin port (health, metrics) when `--admin-addr` is not given.
pub const DEFAULT_ADMIN_PORT: u16 = 9101;
/// The database name on the configured server when `--database-url` is not given.
pub const DEFAULT_DATABASE: &str = "product";
/// The key prefix of cached products; bump the version when `ProductRecord` changes shape.
pub const CACHE_NAMESPACE: &str = "product:v1";

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "product-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub nats: config::NatsArgs,
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub redis: config::RedisArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    /// Insert the demo shop's products at start-up; running it again adds nothing.
    #[arg(long, env = "SEED_DEMO_CATALOG")]
    pub seed_demo_catalog: bool,
    /// How often held reservations past their expiry give their stock back, in milliseconds.
    #[arg(long, env = "RESERVATION_SWEEP_INTERVAL_MS", default_value_t = 5_000)]
    pub reservation_sweep_interval_ms: u64,
    /// How long a product stays cached in Redis, in milliseconds.
    #[arg(long, env = "PRODUCT_CACHE_TTL_MS", default_value_t = 60_000)]
    pub product_cache_ttl_ms: u64,
    /// How long a product stays cached in this process, in milliseconds; 0 turns that tier
    /// off. Other replicas' updates can take this long to show here.
    #[arg(long, env = "PRODUCT_CACHE_LOCAL_TTL_MS", default_value_t = 1_000)]
    pub product_cache_local_ttl_ms: u64,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
}

impl Config {
    fn cache_config(&self) -> ::store::cache::CacheConfig {
        ::store::cache::CacheConfig {
            namespace: CACHE_NAMESPACE.to_owned(),
            redis_ttl: Duration::from_millis(self.product_cache_ttl_ms),
            local_ttl: (self.product_cache_local_ttl_ms > 0)
                .then(|| Duration::from_millis(self.product_cache_local_ttl_ms)),
        }
    }
}

/// The running service: registered on NATS, admin port bound, sweeper and outbox relay running.
pub struct Application {
    running: host::Running,
}

impl Application {
    /// Connects to NATS, PostgreSQL (creating the database and migrating it) and Redis, seeds
    /// the demo catalog if asked, binds the admin port and registers the service. Requests are
    /// served once this returns.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let nats = config.nats.connect("product-service").await?;
        // Installs the Prometheus recorder before the first metric is recorded.
        let host = host::Host::new(api::product::SERVICE_NAME, nats.clone());
        let pool = ::store::postgres::connect(
            &config.postgres.url_or_default(DEFAULT_DATABASE),
            config.postgres.max_connections,
            &crate::store::MIGRATOR,
        )
        .await
        .context("connecting to PostgreSQL")?;
        let jetstream = async_nats::jetstream::new(nats.clone());
        events::prepare_producer(&pool, &jetstream, api::product::SERVICE_NAME).await?;
        let redis = ::store::redis::connect(&config.redis.redis_url)
            .await
            .context("connecting to Redis")?;

        if config.seed_demo_catalog {
            seed::seed_demo_catalog(&pool)
                .await
                .context("seeding the demo catalog")?;
        }

        let cache = ::store::cache::Cache::new(redis.clone(), config.cache_config());
        let handlers = Arc::new(ProductHandlers::new(pool.clone(), cache));
        let service = rpc::Service::new(api::product::SERVICE_NAME, api::product::SERVICE_VERSION)
            .description(api::product::SERVICE_DESCRIPTION)
            .endpoints(api::product::endpoints(handlers))
            .limits(host::limits(&config.service));

        let sweep_interval = Duration::from_millis(config.reservation_sweep_interval_ms.max(1));
        let sweeper_pool = pool.clone();
        let relay_pool = pool.clone();
        let relay_config =
            events::RelayConfig::configured(api::product::SERVICE_NAME, &config.outbox);
        let closing_pool = pool.clone();
        let running = host
            .check(::store::postgres::check(pool.clone()))
            .check(::store::redis::check(redis))
            .background("reservation sweeper", move |cancel| {
                inventory::spawn_sweeper(sweeper_pool, sweep_interval, cancel)
            })
            // Events still in the outbox at shutdown are published by the next relay to run.
            .background("outbox relay", move |cancel| {
                events::Relay::spawn(relay_pool, jetstream, relay_config, cancel)
            })
            .on_shutdown(async move { closing_pool.close().await })
            .start(service, config.service.admin_addr_or(DEFAULT_ADMIN_PORT))
            .await?;
        Ok(Self { running })
    }

    /// Where the admin server (health and metrics) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.running.admin_addr()
    }

    /// Serves until `shutdown` completes, then stops taking requests, answers those in flight,
    /// and stops the sweeper, the outbox relay and the admin server before closing the
    /// database pool (the order `host` gives every service).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.running.run_until(shutdown).await
    }
}
