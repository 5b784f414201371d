//! The voucher service: voucher codes, their discounts and limits, and the redemptions
//! checkout reserves per order.
//!
//! It serves the contract `pkg/api/proto/emporium/voucher/v1/voucher.proto` over NATS and
//! keeps its state in its own PostgreSQL database. The usage limits (in all and per user) are
//! enforced by the database under any concurrency (see `redemptions.rs` and `migrations/`).
//! Commits, releases and returns of redemptions are recorded in the transactional outbox
//! (`pkg/events`) in the transaction that makes them, and the relay publishes them to the
//! EVENTS_VOUCHER stream. A background sweeper expires held redemptions whose time is up and
//! gives their uses back.
//!
//! A request flows handler (`handlers.rs`: who may do what, asking the shop service who owns
//! a shop) -> domain (`domain.rs`, pure rules, including what a code saves on a cart) -> store
//! (`store.rs`, `redemptions.rs`); the lifecycle (admin port, registration, background tasks,
//! shutdown) is `pkg/host`'s.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand:
//! the shop and cart services are reached only through their contracts.

pub mod domain;
mod error;
mod handlers;
pub mod outbox;
pub mod redemptions;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use handlers::VoucherHandlers;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "voucher-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    /// How often held redemptions past their expiry give their use back, in milliseconds.
    #[arg(long, env = "REDEMPTION_SWEEP_INTERVAL_MS", default_value_t = 5_000)]
    pub redemption_sweep_interval_ms: u64,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated), the outbox relay and the redemption sweeper. Requests are served once this
/// returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::voucher::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    host.outbox(&pool, &config.outbox).await?;
    let sweeper_pool = pool.clone();
    host.every(
        "redemption sweeper",
        Duration::from_millis(config.redemption_sweep_interval_ms),
        "expired voucher redemptions",
        move || {
            let pool = sweeper_pool.clone();
            async move { redemptions::expire_due_redemptions(&pool).await }
        },
    );
    let handlers = VoucherHandlers::new(pool, rpc::Client::new(host.nats().clone()));
    host.serve(api::voucher::endpoints(Arc::new(handlers)))
        .await
}
