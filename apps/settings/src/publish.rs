//! Copies committed values into the JetStream key-value bucket every service watches.
//!
//! PostgreSQL is the record: a change commits there first (with its history row), then is
//! put into the bucket, then marked published. A crash or a NATS outage between the commit
//! and the put leaves the row unpublished, and the relay ([`Publisher::catch_up`], every
//! second) puts it then: nothing is lost, and the bucket only ever moves forward, because a
//! publisher holds the row's lock while it puts.

use async_nats::jetstream::{self, kv};
use settings::{Scope, Stored};

use crate::store::{SettingsStore, StoreError};

/// The most values one relay pass publishes.
const BATCH: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("putting {key} into the settings bucket: {source}")]
    Put {
        key: String,
        #[source]
        source: kv::PutError,
    },
}

/// The settings service's writer of the bucket.
#[derive(Clone)]
pub struct Publisher {
    store: SettingsStore,
    bucket: kv::Store,
}

impl Publisher {
    /// Opens the bucket, creating it if it is not there yet.
    pub async fn open(
        store: SettingsStore,
        jetstream: &jetstream::Context,
    ) -> anyhow::Result<Self> {
        let bucket = settings::open_bucket(jetstream).await?;
        Ok(Self { store, bucket })
    }

    /// Puts the current value of `key` in `scope` into the bucket unless it is there already.
    pub async fn publish(&self, scope: &str, key: &str) -> Result<(), PublishError> {
        let Some((tx, record)) = self.store.lock_for_publishing(scope, key).await? else {
            return Ok(());
        };
        if record.published_version >= record.version {
            return Ok(());
        }
        let scope_parsed = match Scope::parse(scope) {
            Ok(scope) => scope,
            Err(_) => {
                tracing::error!(
                    scope,
                    key,
                    "a stored scope that does not parse; not published"
                );
                return Ok(());
            }
        };
        let stored = Stored {
            version: record.version,
            value: record.value,
        };
        settings::put(&self.bucket, &scope_parsed, key, &stored)
            .await
            .map_err(|source| PublishError::Put {
                key: scope_parsed.bucket_key(key),
                source,
            })?;
        SettingsStore::mark_published(tx, scope, key, record.version).await?;
        Ok(())
    }

    /// Publishes everything committed but not yet in the bucket; how many values it put.
    pub async fn catch_up(&self) -> Result<u64, PublishError> {
        let mut published = 0;
        for (scope, key) in self.store.unpublished(BATCH).await? {
            self.publish(&scope, &key).await?;
            published += 1;
        }
        Ok(published)
    }
}
