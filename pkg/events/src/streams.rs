//! The streams, declared in code: one per event domain, and the dead-letter stream.
//!
//! A producer calls [`ensure_for_producer`] at start-up: each stream it publishes to is created,
//! or updated when its limits differ from the declared ones, so a deploy is how stream limits
//! change. Consumers only make sure the stream exists ([`ensure_exists`]) and never change its
//! limits: the producer owns them.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, stream};

use crate::names;

/// The limits of an event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long a message is kept. Consumers that fall further behind than this lose events,
    /// and a broker crash older than this cannot be repaired from the outbox anyway.
    pub max_age: Duration,
    /// The most the stream may hold; the oldest messages go first.
    pub max_bytes: i64,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a re-publication of it. It must be
    /// longer than a relay takes to come back after a crash between publishing and marking.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

impl StreamSettings {
    /// The dead-letter stream keeps messages longer: someone has to look at them.
    pub fn dead_letters() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            ..Self::default()
        }
    }

    fn config(&self, name: String, subjects: String, description: String) -> stream::Config {
        stream::Config {
            name,
            subjects: vec![subjects],
            description: Some(description),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            duplicate_window: self.duplicate_window,
            num_replicas: 1,
            ..Default::default()
        }
    }

    /// Whether `current` already has these limits (the server fills in every other field).
    fn matches(&self, current: &stream::Config, subjects: &str) -> bool {
        current.subjects == [subjects]
            && current.storage == stream::StorageType::File
            && current.max_age == self.max_age
            && current.max_bytes == self.max_bytes
            && current.duplicate_window == self.duplicate_window
    }
}

/// The domains of the events `producer` (a service name) declares.
pub fn domains_of(producer: &str) -> BTreeSet<&'static str> {
    api::EVENTS
        .iter()
        .filter(|e| e.producer == producer)
        .map(|e| e.domain)
        .collect()
}

/// Creates or updates the stream of every domain `producer` publishes to.
pub async fn ensure_for_producer(
    jetstream: &jetstream::Context,
    producer: &str,
    settings: &StreamSettings,
) -> anyhow::Result<()> {
    for domain in domains_of(producer) {
        ensure(jetstream, domain, settings).await?;
        // At zero, so the relay's redeclarations read 0 rather than no data until one happens.
        metrics::counter!("events_relay_streams_redeclared_total", "stream" => names::stream_name(domain))
            .increment(0);
    }
    Ok(())
}

/// Creates the stream of `domain` with `settings`, or updates it when its limits differ.
pub async fn ensure(
    jetstream: &jetstream::Context,
    domain: &str,
    settings: &StreamSettings,
) -> anyhow::Result<()> {
    let name = names::stream_name(domain);
    let subjects = names::stream_subjects(domain);
    let config = settings.config(
        name.clone(),
        subjects.clone(),
        format!("Domain events of {domain}"),
    );
    create_or_update(jetstream, config, settings, &subjects).await
}

/// Creates the dead-letter stream, or updates it when its limits differ.
pub async fn ensure_dead_letters(
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
) -> anyhow::Result<()> {
    let subjects = names::dead_letter_subjects();
    let config = settings.config(
        names::DEAD_LETTER_STREAM.to_owned(),
        subjects.clone(),
        "Event messages consumers gave up on; see cargo xtask dlq".to_owned(),
    );
    create_or_update(jetstream, config, settings, &subjects).await
}

/// Creates the stream of `domain` with default limits if it does not exist; never changes an
/// existing one. For consumers, which may start before the producer.
pub async fn ensure_exists(jetstream: &jetstream::Context, domain: &str) -> anyhow::Result<()> {
    let settings = StreamSettings::default();
    let name = names::stream_name(domain);
    let config = settings.config(
        name.clone(),
        names::stream_subjects(domain),
        format!("Domain events of {domain}"),
    );
    jetstream
        .get_or_create_stream(config)
        .await
        .with_context(|| format!("creating stream {name}"))?;
    Ok(())
}

async fn create_or_update(
    jetstream: &jetstream::Context,
    config: stream::Config,
    settings: &StreamSettings,
    subjects: &str,
) -> anyhow::Result<()> {
    let name = config.name.clone();
    let mut stream = jetstream
        .get_or_create_stream(config)
        .await
        .with_context(|| format!("creating stream {name}"))?;
    let current = stream
        .info()
        .await
        .with_context(|| format!("reading stream {name}"))?
        .config
        .clone();
    if !settings.matches(&current, subjects) {
        let updated = stream::Config {
            subjects: vec![subjects.to_owned()],
            storage: stream::StorageType::File,
            max_age: settings.max_age,
            max_bytes: settings.max_bytes,
            duplicate_window: settings.duplicate_window,
            ..current
        };
        jetstream
            .update_stream(updated)
            .await
            .with_context(|| format!("updating the limits of stream {name}"))?;
        tracing::info!(stream = %name, "stream limits updated");
    }
    Ok(())
}
