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

use std::sync::Arc;

use anyhow::Context as _;

pub use handlers::UserHandlers;

use crate::store::ProfileStore;
use crate::store::mongo::MongoProfiles;
use crate::store::postgres::PgProfiles;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "user-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    /// When set, profiles live in MongoDB and PostgreSQL is not used.
    #[command(flatten)]
    pub mongo: config::MongoArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
}

/// Starts the service on what `config` names: NATS and the profile store (MongoDB when its URL
/// is given, otherwise the service's PostgreSQL database, created and migrated), with the
/// `user.registered` consumer. Requests are served and events consumed once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::user::SERVICE, &config.service).await?;
    match &config.mongo.mongodb_url {
        Some(url) => {
            let database = host.mongo(url).await?;
            let profiles = MongoProfiles::open(&database)
                .await
                .context("creating the MongoDB indexes")?;
            serve(host, profiles).await
        }
        None => {
            let pool = host
                .postgres(&config.postgres, &store::postgres::MIGRATOR)
                .await?;
            serve(host, PgProfiles::new(pool)).await
        }
    }
}

/// The consumer and the endpoints on `profiles`, whichever store it is.
async fn serve<S: ProfileStore>(
    mut host: host::Host,
    profiles: S,
) -> anyhow::Result<host::Serving> {
    host.consumer(consumer::registered(profiles.clone()));
    host.serve(api::user::endpoints(Arc::new(UserHandlers::new(profiles))))
        .await
}
