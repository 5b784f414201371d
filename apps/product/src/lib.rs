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
//! Sellers manage their own shops' products: before every write by a seller the service asks
//! the shop service who owns the shop and whether it trades (`shop.get_shop_access`), so a
//! suspended shop stops at once; admins may change any product.
//!
//! It must never speak HTTP, read another service's database, or write a NATS subject by hand:
//! other services are reached only through their contracts.

pub mod domain;
mod error;
mod handlers;
pub mod inventory;
pub mod outbox;
pub mod records;
pub mod seed;
pub mod shops;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use error::Error;
pub use handlers::ProductHandlers;

/// The key prefix of cached products; bump the version when `ProductRecord` changes shape.
pub const CACHE_NAMESPACE: &str = "product:v1";

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "product-service", version, about)]
pub struct Config {
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
    fn cache_config(&self) -> ::db::cache::CacheConfig {
        ::db::cache::CacheConfig {
            namespace: CACHE_NAMESPACE.to_owned(),
            redis_ttl: Duration::from_millis(self.product_cache_ttl_ms),
            local_ttl: (self.product_cache_local_ttl_ms > 0)
                .then(|| Duration::from_millis(self.product_cache_local_ttl_ms)),
        }
    }
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated), Redis for the product cache (the service starts, stays ready and serves from
/// PostgreSQL while Redis is down), the outbox relay and the reservation sweeper; seeds the
/// demo catalog first if asked. Requests are served once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::product::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    // Redis only caches products: the service starts and serves from PostgreSQL without it.
    let redis = host.redis_optional(&config.redis)?;
    host.outbox(&pool, &config.outbox).await?;
    if config.seed_demo_catalog {
        seed::seed_demo_catalog(&pool)
            .await
            .context("seeding the demo catalog")?;
    }
    let sweeper_pool = pool.clone();
    host.every(
        "reservation sweeper",
        Duration::from_millis(config.reservation_sweep_interval_ms),
        "expired reservations",
        move || {
            let pool = sweeper_pool.clone();
            async move { inventory::expire_due_reservations(&pool).await }
        },
    );
    let cache = ::db::cache::Cache::new(redis, config.cache_config());
    let shops = shops::Shops::new(host.nats().clone());
    let settings = host.settings().await;
    let mut handlers = ProductHandlers::new(pool, cache, shops).with_settings(settings);
    if config.product_cache_local_ttl_ms > 0 {
        // The cart's lookups share the in-process tier's freshness bound.
        handlers =
            handlers.with_offer_cache(Duration::from_millis(config.product_cache_local_ttl_ms));
    }
    host.serve(api::product::endpoints(Arc::new(handlers)))
        .await
}
