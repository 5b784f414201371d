//! The platform's settings as every service reads them.
//!
//! The settings service (apps/settings) keeps each value in PostgreSQL with its audit
//! history and copies it into the JetStream key-value bucket [`BUCKET`]. This crate is the
//! other side: [`Settings::start`] loads the bucket and watches it, so a change reaches every
//! service within a second without a restart, and typed getters answer from that copy, with
//! each key's default when nothing is set. While NATS is away the last values stay in force;
//! the watcher reconnects and catches up by itself.
//!
//! - [`catalogue`]: every key, its schema (a validator that names each bad field), its
//!   default and the scopes it may be set in: the one registry the service and the readers
//!   share.
//! - [`Flags`]: feature flags (on/off, a percentage rollout stable per user, role targeting),
//!   evaluated locally.
//! - [`Faults`]: fault flags for resilience tests (payment failures and latency, product
//!   latency, cart read failures, SMTP failures), all off unless set.
//!
//! It must never write the bucket (only the settings service does, and NATS permits no other
//! writer) and never block a request on NATS: getters read memory.

pub mod catalogue;
mod flags;
mod scope;
mod watcher;

pub use catalogue::{
    FeatureFlag, Key, KeyKind, NotificationSender, ShippingMethods, ShippingRate, TaxRates,
};
pub use flags::{Faults, Flags, rollout_bucket};
pub use scope::{Scope, ScopeKind};
pub use watcher::{Settings, Stored};

/// The JetStream key-value bucket the settings are distributed through. Its stream is
/// `KV_settings`, its subjects `$KV.settings.>`.
pub const BUCKET: &str = "settings";

/// How many versions of each value the bucket keeps (the record is the settings service's
/// database; these only help whoever inspects the bucket with `nats kv history`).
const BUCKET_HISTORY: i64 = 5;

/// Opens [`BUCKET`], creating it with the platform's configuration if it is not there yet:
/// the settings service does at its start, and so do tests that play its part.
pub async fn open_bucket(
    jetstream: &async_nats::jetstream::Context,
) -> Result<async_nats::jetstream::kv::Store, async_nats::jetstream::context::CreateKeyValueError> {
    if let Ok(bucket) = jetstream.get_key_value(BUCKET).await {
        return Ok(bucket);
    }
    jetstream
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: BUCKET.to_owned(),
            description: "Platform and shop settings, copied from the settings service's \
                          database; read by every service."
                .to_owned(),
            history: BUCKET_HISTORY,
            ..Default::default()
        })
        .await
}

/// Puts `stored` into `bucket` as `key`'s value in `scope`, in the form every [`Settings`]
/// reads; the bucket's revision.
pub async fn put(
    bucket: &async_nats::jetstream::kv::Store,
    scope: &Scope,
    key: &str,
    stored: &Stored,
) -> Result<u64, async_nats::jetstream::kv::PutError> {
    let payload = serde_json::to_vec(stored).expect("JSON values serialize");
    bucket.put(scope.bucket_key(key), payload.into()).await
}

/// The stream behind [`BUCKET`].
pub fn bucket_stream() -> String {
    format!("KV_{BUCKET}")
}

/// The subjects of [`BUCKET`]'s values.
pub fn bucket_subjects() -> String {
    format!("$KV.{BUCKET}.>")
}
