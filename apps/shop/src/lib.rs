//! The shop service: multi-vendor shops, who owns each, and whether it trades.
//!
//! It serves the `shop` contract (`pkg/api/proto/emporium/shop/v1/shop.proto`) over NATS and
//! keeps its state in its own PostgreSQL database. A seller opens shops (pending), an admin
//! approves (active) or suspends them, the owner or an admin closes them for good; other
//! services ask `GetShopAccess` before letting a seller change what belongs to a shop.
//!
//! A request flows handler (parse, decide what the caller may see and change) -> domain (pure
//! rules, the status machine) -> store (SQL); a write runs in one transaction together with
//! its history row and the record of the change in the transactional outbox (`pkg/events`),
//! which the relay then publishes to the EVENTS_SHOP stream.
//!
//! It must never speak HTTP, read another service's database, or write a NATS subject by hand:
//! other services are reached only through their contracts.

pub mod domain;
mod error;
mod handlers;
pub mod outbox;
pub mod seed;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;

pub use error::Error;
pub use handlers::ShopHandlers;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "shop-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    /// Insert the demo seller's active shop at start-up; running it again adds nothing.
    #[arg(long, env = "SEED_DEMO_SHOP")]
    pub seed_demo_shop: bool,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated) and the outbox relay; seeds the demo shop first if asked. Requests are served
/// once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::shop::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    host.outbox(&pool, &config.outbox).await?;
    if config.seed_demo_shop {
        seed::seed_demo_shop(&pool)
            .await
            .context("seeding the demo shop")?;
    }
    let handlers = ShopHandlers::new(pool);
    host.serve(api::shop::endpoints(Arc::new(handlers))).await
}
