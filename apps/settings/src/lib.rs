//! The settings service: typed platform and shop settings with a schema per key and an audit
//! history, feature flags, and (on dev and test stacks) fault flags.
//!
//! It serves the contract `pkg/api/proto/emporium/settings/v1/settings.proto` over NATS and
//! keeps its state in its own PostgreSQL database. Every change commits there with its
//! history row, then is copied into the JetStream key-value bucket `settings`
//! (`publish.rs`), which this service creates at start and every service watches through
//! pkg/settings; a relay copies whatever a crash or an outage left behind.
//!
//! A request flows handler (`handlers.rs`) -> domain (`domain.rs`, with the key catalogue of
//! pkg/settings) -> store (`store.rs`) -> publisher.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand.

pub mod domain;
mod handlers;
pub mod publish;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use handlers::SettingsHandlers;
use settings::catalogue::{self, KeyKind};

/// Who the seeded defaults are recorded as set by.
pub const SEEDED_BY: &str = "settings-service";

/// How often the relay looks for changes not yet in the bucket.
const RELAY_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "settings-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    /// Lets admins set fault flags (payment failures, latency, cart read failures): for dev
    /// and test stacks only, never production.
    #[arg(long, env = "ALLOW_FAULT_FLAGS", default_value_t = false)]
    pub allow_fault_flags: bool,
}

/// Starts the service on what `config` names: NATS, its PostgreSQL database (created and
/// migrated), the bucket (created if missing) with every default seeded and every committed
/// change copied in, and the relay. Requests are served once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::settings::SERVICE, &config.service).await?;
    let pool = host.postgres(&config.postgres, &store::MIGRATOR).await?;
    let store = store::SettingsStore::new(pool);
    seed_defaults(&store).await?;
    let publisher = publish::Publisher::open(store.clone(), &host.jetstream()).await?;
    if let Err(error) = publisher.catch_up().await {
        tracing::warn!(%error, "copying settings into the bucket at start failed; the relay will retry");
    }
    let relay = publisher.clone();
    host.every(
        "settings relay",
        RELAY_INTERVAL,
        "settings copied into the bucket",
        move || {
            let relay = relay.clone();
            async move { relay.catch_up().await }
        },
    );
    if config.allow_fault_flags {
        tracing::warn!("fault flags may be set: this must be a dev or test stack");
    }
    let handlers = SettingsHandlers::new(store, publisher, config.allow_fault_flags);
    host.serve(api::settings::endpoints(Arc::new(handlers)))
        .await
}

/// Stores each ordinary setting's default as its first platform version, so the bucket and
/// the admin listing show what is in force and the history starts from it. Feature and fault
/// flags stay unset (off) until someone sets them.
async fn seed_defaults(store: &store::SettingsStore) -> anyhow::Result<()> {
    for key in catalogue::KEYS
        .iter()
        .filter(|key| key.kind == KeyKind::Setting)
    {
        store
            .seed("platform", key.name, &key.default_value(), SEEDED_BY)
            .await?;
    }
    Ok(())
}
