//! The payment service: payment methods (a card turned into the provider's token; only the
//! brand, last four digits and expiry are kept), and payments authorised, captured, voided and
//! refunded through a provider adapter, each operation idempotent on its caller's key.
//!
//! It serves the contract `pkg/api/proto/emporium/payment/v1/payment.proto` over NATS and
//! keeps its state in its own PostgreSQL database. Every change of a payment, its ledger entry
//! (the provider call), its key's answer and its event (the transactional outbox of
//! `pkg/events`, published by the relay to EVENTS_PAYMENT) commit together.
//!
//! A request flows handler (`handlers.rs`) -> idempotency key (`idempotency.rs`) -> domain
//! (`domain.rs`: parsing, the state machine) -> provider (`provider.rs`: the trait and the
//! built-in simulated card processor) -> store (`store.rs`, `outbox.rs`); the lifecycle
//! (admin port, registration, relay, shutdown) is `pkg/host`'s.
//!
//! It must never keep or log a card number or CVC, speak HTTP, read another service's data,
//! or write a NATS subject by hand.

pub mod domain;
mod error;
mod handlers;
pub mod idempotency;
pub mod outbox;
pub mod provider;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use handlers::PaymentHandlers;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "payment-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
    /// How long the simulated provider takes to answer each call, in milliseconds.
    #[arg(
        long = "simulated-provider-latency-ms",
        env = "SIMULATED_PROVIDER_LATENCY_MS",
        default_value_t = 0
    )]
    pub simulated_provider_latency_ms: u64,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated), the outbox relay and the simulated provider. Requests are served once this
/// returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::payment::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    host.outbox(&pool, &config.outbox).await?;
    let settings = host.settings().await;
    let provider = provider::SimulatedProvider::new(
        &pool,
        Duration::from_millis(config.simulated_provider_latency_ms),
    )
    .with_settings(settings);
    let handlers = PaymentHandlers::new(pool, Arc::new(provider));
    host.serve(api::payment::endpoints(Arc::new(handlers)))
        .await
}
