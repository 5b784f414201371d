//! The comment service: product reviews. One review per customer and product, rated 1 to 5
//! with a plain-text title and body; published at once unless a moderation rule holds it for
//! an admin; marked "verified purchase" from the order events; helpful votes, reports and one
//! seller reply per review; and a rating summary per product kept up to date by every change.
//!
//! It serves the contract `pkg/api/proto/emporium/comment/v1/comment.proto` over NATS,
//! publishes `review.published` / `review.hidden` through the transactional outbox, and
//! consumes `order.paid`, `suborder.delivered`, `order.cancelled` and `order.refunded`
//! (`consumer.rs`). Its state is JSON documents: in MongoDB when `--mongodb-url`
//! (MONGODB_URL) is set, otherwise in its own PostgreSQL database (`store.rs`).
//!
//! A request flows handler (`handlers.rs`: who may do what) -> domain (`domain.rs`, pure
//! rules) -> store; products and shops are asked through their contracts (`catalog.rs`). The
//! lifecycle (admin port, registration, consumers, relay, shutdown) is `pkg/host`'s.
//!
//! It must never speak HTTP, read another service's data, or write a NATS subject by hand:
//! other services are reached only through their contracts and events.

pub mod catalog;
pub mod consumer;
pub mod domain;
mod handlers;
pub mod metrics;
pub mod store;
pub mod views;

use std::sync::Arc;

use anyhow::Context as _;

pub use handlers::CommentHandlers;

use crate::catalog::Catalog;
use crate::domain::ModerationRules;
use crate::store::Reviews;

/// Everything the service reads at start-up, from flags or environment variables.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "comment-service", version, about)]
pub struct Config {
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
    /// When set, the reviews live in MongoDB; PostgreSQL keeps only the events outbox and
    /// inbox (see `store/mongo.rs`).
    #[command(flatten)]
    pub mongo: config::MongoArgs,
    #[command(flatten)]
    pub service: config::ServiceArgs,
    #[command(flatten)]
    pub outbox: config::OutboxArgs,
    /// Words that hold a review for a moderator, comma-separated, matched as whole words
    /// ignoring case ("scam,fake"). Links always do.
    #[arg(long, env = "REVIEW_BANNED_WORDS", default_value = "")]
    pub banned_words: String,
}

/// Starts the service on what `config` names: NATS, its store (MongoDB when its URL is given,
/// otherwise its PostgreSQL database, created and migrated), the outbox relay and the order
/// event consumers. Requests are served and events consumed once this returns.
pub async fn start(config: Config) -> anyhow::Result<host::Serving> {
    let mut host = host::Host::connect(&api::comment::SERVICE, &config.service).await?;
    let rules = ModerationRules::new(&config.banned_words);
    match &config.mongo.mongodb_url {
        Some(url) => {
            let database = host.mongo(url).await?;
            // The events still go through PostgreSQL: pkg/events' outbox and inbox live there.
            let pool = host
                .postgres(&config.postgres, &store::mongo::EVENTS_MIGRATOR)
                .await?;
            host.outbox(&pool, &config.outbox).await?;
            let reviews = store::mongo::MongoReviews::open(&database, pool)
                .await
                .context("creating the MongoDB indexes")?;
            serve(host, reviews, rules).await
        }
        None => {
            let pool = host
                .postgres(&config.postgres, &store::postgres::MIGRATOR)
                .await?;
            host.outbox(&pool, &config.outbox).await?;
            serve(host, store::postgres::PgReviews::new(pool), rules).await
        }
    }
}

/// The consumers and the endpoints on `reviews`, whichever store it is.
async fn serve<S: Reviews>(
    mut host: host::Host,
    reviews: S,
    rules: ModerationRules,
) -> anyhow::Result<host::Serving> {
    for consumer in consumer::all(reviews.clone()) {
        host.consumer(consumer);
    }
    let catalog = Catalog::new(rpc::Client::new(host.nats().clone()));
    let handlers = CommentHandlers::new(reviews, rules, catalog);
    host.serve(api::comment::endpoints(Arc::new(handlers)))
        .await
}
