//! The live copy of the bucket: loaded at start, kept current by a watch, kept as it was
//! while NATS is away.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalogue::{self, NotificationSender, ShippingMethods, TaxRates};
use crate::flags::{Faults, Flags};
use crate::{BUCKET, Scope};

/// How long [`Settings::start`] waits for the first load before the service goes on with
/// defaults (the watcher keeps trying and fills them in when the bucket answers).
const FIRST_LOAD_WAIT: Duration = Duration::from_secs(3);
/// The pause between attempts to open or watch the bucket.
const RETRY: Duration = Duration::from_millis(500);

/// A value as the bucket holds it: the value and its version in the settings service's
/// history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub version: i64,
    pub value: Value,
}

/// The settings every getter reads: a copy of the bucket kept current in the background.
/// Cheap to clone; all clones share the copy.
#[derive(Clone)]
pub struct Settings {
    inner: Arc<Inner>,
}

struct Inner {
    /// By bucket key ("platform.checkout.tax_rates").
    values: RwLock<HashMap<String, Stored>>,
    /// Counts the changes applied, for whoever waits for the next one.
    changes: watch::Sender<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::defaults()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("values", &self.inner.values.read().map(|v| v.len()).ok())
            .finish()
    }
}

impl Settings {
    /// Settings without a bucket: every getter answers its key's default. For tests of pure
    /// rules, and tools without NATS.
    pub fn defaults() -> Self {
        Self {
            inner: Arc::new(Inner {
                values: RwLock::new(HashMap::new()),
                changes: watch::channel(0).0,
            }),
        }
    }

    /// Loads the bucket on `nats` and keeps watching it until `stop` is cancelled. It waits
    /// for the first attempt only (at most a few seconds): when the bucket is not there yet
    /// or NATS does not answer, the defaults apply until a later attempt loads the values. The watch is
    /// opened again whenever it ends (NATS restarted, the bucket not there yet), and the last
    /// values stay in force meanwhile.
    pub async fn start(
        nats: async_nats::Client,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let settings = Self::defaults();
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(settings.clone().watch(nats, stop, loaded_tx));
        if tokio::time::timeout(FIRST_LOAD_WAIT, loaded_rx)
            .await
            .is_err()
        {
            tracing::warn!(
                bucket = BUCKET,
                "the settings bucket did not answer at start; using defaults until it does"
            );
        }
        (settings, task)
    }

    async fn watch(
        self,
        nats: async_nats::Client,
        stop: CancellationToken,
        loaded: tokio::sync::oneshot::Sender<()>,
    ) {
        let jetstream = async_nats::jetstream::new(nats);
        let mut loaded = Some(loaded);
        loop {
            let watched = async {
                let store = jetstream.get_key_value(BUCKET).await?;
                let mut entries = store.watch_with_history(">").await?;
                // An empty bucket delivers nothing: it is loaded as soon as the watch is open.
                if store.status().await.is_ok_and(|s| s.values() == 0)
                    && let Some(loaded) = loaded.take()
                {
                    let _ = loaded.send(());
                }
                while let Some(entry) = entries.next().await {
                    let entry = entry?;
                    self.apply(&entry);
                    if entry.delta == 0
                        && let Some(loaded) = loaded.take()
                    {
                        let _ = loaded.send(());
                    }
                }
                Ok::<(), async_nats::Error>(())
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                outcome = watched => match outcome {
                    Ok(()) => tracing::info!(bucket = BUCKET, "the settings watch ended; watching again"),
                    Err(error) => tracing::debug!(bucket = BUCKET, %error, "cannot watch the settings bucket yet; trying again"),
                },
            }
            // A first attempt that failed (no bucket on this stack yet, NATS away) ends the
            // wait at start: the defaults apply until a later attempt loads the values.
            if let Some(loaded) = loaded.take() {
                let _ = loaded.send(());
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    fn apply(&self, entry: &async_nats::jetstream::kv::Entry) {
        use async_nats::jetstream::kv::Operation;
        let mut values = self.inner.values.write().expect("settings lock");
        match entry.operation {
            // Entries arrive in the bucket's order, which is the order the settings service
            // put them in (one publisher at a time per key), so the last one wins. Versions
            // are not compared: a settings database restored from a backup starts counting
            // again, and its values must still reach running services.
            Operation::Put => match serde_json::from_slice::<Stored>(&entry.value) {
                Ok(stored) => {
                    values.insert(entry.key.clone(), stored);
                }
                Err(error) => {
                    tracing::warn!(key = %entry.key, %error, "a settings value that is not a versioned JSON value; ignored")
                }
            },
            Operation::Delete | Operation::Purge => {
                values.remove(&entry.key);
            }
        }
        drop(values);
        self.inner.changes.send_modify(|n| *n += 1);
    }

    /// Sets a value in this copy only, as if the bucket had delivered it: for tests of code
    /// that reads settings.
    pub fn set_locally(&self, scope: Scope, key: &str, version: i64, value: Value) {
        self.inner
            .values
            .write()
            .expect("settings lock")
            .insert(scope.bucket_key(key), Stored { version, value });
        self.inner.changes.send_modify(|n| *n += 1);
    }

    /// What the bucket holds for `key` in exactly `scope`, if anything.
    pub fn stored(&self, scope: Scope, key: &str) -> Option<Stored> {
        self.inner
            .values
            .read()
            .expect("settings lock")
            .get(&scope.bucket_key(key))
            .cloned()
    }

    /// Waits until the copy changes next (or `timeout` passes; `false` then).
    pub async fn changed(&self, timeout: Duration) -> bool {
        let mut changes = self.inner.changes.subscribe();
        changes.mark_unchanged();
        tokio::time::timeout(timeout, changes.changed())
            .await
            .is_ok()
    }

    /// `key`'s value in `scope`: the scope's own, else the platform's, else the key's
    /// default. A value that does not decode as `T` (which the schema prevents) counts as
    /// unset.
    pub fn get_in<T: DeserializeOwned>(&self, key: &str, scope: Scope) -> T {
        let scopes = match scope {
            Scope::Platform => vec![Scope::Platform],
            shop => vec![shop, Scope::Platform],
        };
        for scope in scopes {
            if let Some(stored) = self.stored(scope, key) {
                match serde_json::from_value(stored.value) {
                    Ok(value) => return value,
                    Err(error) => {
                        tracing::warn!(key, %scope, %error, "a settings value of the wrong shape; ignored")
                    }
                }
            }
        }
        let default = catalogue::key(key)
            .map(catalogue::Key::default_value)
            .unwrap_or(Value::Null);
        serde_json::from_value(default)
            .unwrap_or_else(|error| panic!("the default of {key} is not of its type: {error}"))
    }

    /// `key`'s platform value, or its default.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> T {
        self.get_in(key, Scope::Platform)
    }

    /// The shipping methods a checkout offers.
    pub fn shipping_methods(&self) -> ShippingMethods {
        self.get(catalogue::SHIPPING_METHODS)
    }

    /// Tax rates by destination country, in basis points.
    pub fn tax_rates(&self) -> TaxRates {
        self.get(catalogue::TAX_RATES)
    }

    /// How long a checkout holds stock and voucher uses.
    pub fn reservation_expiry(&self) -> Duration {
        Duration::from_secs(
            self.get::<i64>(catalogue::RESERVATION_EXPIRY_SECONDS)
                .clamp(1, 86_400) as u64,
        )
    }

    /// Who notification emails come from: the shop's sender when `scope` is a shop that set
    /// one, the platform's otherwise.
    pub fn notification_sender(&self, scope: Scope) -> NotificationSender {
        self.get_in(catalogue::NOTIFICATION_SENDER, scope)
    }

    /// The feature flags, as the platform sets them.
    pub fn flags(&self) -> Flags<'_> {
        Flags {
            settings: self,
            scope: Scope::Platform,
        }
    }

    /// The feature flags as `scope` sees them (a shop's own setting, else the platform's).
    pub fn flags_in(&self, scope: Scope) -> Flags<'_> {
        Flags {
            settings: self,
            scope,
        }
    }

    /// The fault flags.
    pub fn faults(&self) -> Faults<'_> {
        Faults { settings: self }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn getters_fall_back_from_shop_to_platform_to_default() {
        let settings = Settings::defaults();
        assert_eq!(settings.tax_rates()["DE"], 1900);
        assert_eq!(
            settings.shipping_methods()["standard"].amount_minor_units,
            499
        );
        assert_eq!(settings.faults().payment_failure_percent(), 0);
        assert!(!settings.flags().enabled("new_checkout", None));

        let shop = Scope::Shop(uuid::Uuid::now_v7());
        let platform_sender = json!({"name": "Platform", "address": "p@example.com"});
        settings.set_locally(
            Scope::Platform,
            catalogue::NOTIFICATION_SENDER,
            2,
            platform_sender,
        );
        assert_eq!(settings.notification_sender(shop).name, "Platform");
        let shop_sender = json!({"name": "Shop", "address": "s@example.com"});
        settings.set_locally(shop, catalogue::NOTIFICATION_SENDER, 1, shop_sender);
        assert_eq!(settings.notification_sender(shop).name, "Shop");
        assert_eq!(
            settings.notification_sender(Scope::Platform).name,
            "Platform"
        );

        settings.set_locally(
            Scope::Platform,
            "flag.new_checkout",
            1,
            json!({"enabled": true, "rollout_percent": 100, "roles": []}),
        );
        assert!(settings.flags().enabled("new_checkout", None));
        assert!(!settings.flags().enabled("not_declared", None));
    }
}
