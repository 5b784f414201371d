//! The cart service: shopping carts for users and guests, priced from the catalog when read.
//!
//! It serves the contract `pkg/api/proto/emporium/cart/v1/cart.proto` over NATS. A cart
//! holds product ids and quantities only; every answer prices it then and there with one
//! `LookupProducts` batch to product, and evaluates its voucher with voucher's
//! `EvaluateVoucher` (a cart still answers, its voucher shown as not applying, while vouchers
//! are down). PostgreSQL keeps the durable copy of every cart and Redis the hot one; writes go
//! through PostgreSQL first (see `store.rs` for why, and how a stale Redis copy is kept out).
//!
//! A request flows handler (`handlers.rs`) -> domain (`domain.rs`, pure rules) -> store
//! (`store.rs`); its wiring and lifecycle (stores, admin port, registration, shutdown) are
//! `pkg/host`'s.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand:
//! other services are reached only through their contracts. It never stores a guest cart's
//! token, only its SHA-256.

pub mod domain;
mod error;
mod handlers;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use handlers::{CartHandlers, VOUCHER_UNAVAILABLE};

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "cart-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub redis: config::RedisArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    /// How often guest carts past their expiry are deleted from PostgreSQL, in milliseconds.
    /// (Redis forgets them by itself; PostgreSQL already answers them as missing.)
    #[arg(
        long,
        env = "EXPIRED_CART_SWEEP_INTERVAL_MS",
        default_value_t = 3_600_000
    )]
    pub expired_cart_sweep_interval_ms: u64,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated) and Redis, and the sweeper of expired guest carts. Requests are served once this
/// returns. Redis is only the hot copy: while it is down the service answers from PostgreSQL
/// and says it is degraded.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::cart::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    let redis = host.redis_optional(&config.redis)?;
    let sweeper_pool = pool.clone();
    host.every(
        "expired cart sweeper",
        Duration::from_millis(config.expired_cart_sweep_interval_ms),
        "deleted expired guest carts",
        move || {
            let pool = sweeper_pool.clone();
            async move { store::delete_expired(&pool).await }
        },
    );
    let settings = host.settings().await;
    let handlers = CartHandlers::new(pool, store::HotCarts::new(redis), host.nats().clone())
        .with_settings(settings);
    host.serve(api::cart::endpoints(Arc::new(handlers))).await
}
