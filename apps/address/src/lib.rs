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

use std::sync::Arc;

pub use error::Error;
pub use handlers::AddressHandlers;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "address-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
}

/// Starts the service on what `config` names: NATS and its PostgreSQL database (created and
/// migrated). Requests are served once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::address::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    host.serve(api::address::endpoints(Arc::new(AddressHandlers::new(
        pool,
    ))))
    .await
}
