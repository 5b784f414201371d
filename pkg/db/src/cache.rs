//! Cache-aside over Redis, with an optional in-process tier in front of it.
//!
//! A read looks in the local tier (when configured), then in Redis, then calls the loader and
//! stores what it returns in both. Values are JSON under `<namespace>:<key>` with a TTL, so a
//! new release that changes a type bumps the namespace (`product:v2`) instead of reading old
//! shapes. A loader that finds nothing (`None`) is not cached: the next read asks again.
//!
//! The cache is an optimisation, never a dependency: when Redis fails or is slow, the read is
//! served by the loader and the failure is logged and counted. After a failure Redis is left
//! alone for [`REDIS_PAUSE_AFTER_ERROR`] so an outage costs one timeout, not one per read or
//! write. Invalidations that could not reach Redis meanwhile are remembered (up to
//! [`MAX_MISSED_INVALIDATIONS`]) and sent before Redis is read again, so a Redis that was only
//! cut off does not serve what was changed while it was.
//!
//! Staleness is bounded, not prevented: [`Cache::invalidate`] clears Redis and this process's
//! local tier, but other replicas' local tiers keep their copy until their `local_ttl` passes,
//! and a read that loaded just before a write may store the old value after the write's
//! invalidation (until `redis_ttl` passes). Keep `local_ttl` short (a second or two) and use
//! the cache only for data where that is acceptable.
//!
//! Metrics: `cache_requests_total{namespace, tier="local"|"redis", result="hit"|"miss"}` and
//! `cache_errors_total{namespace}`.

use std::any::Any;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use dashmap::DashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest a single Redis command of the cache may take before the read goes to the loader.
pub const REDIS_OPERATION_TIMEOUT: Duration = Duration::from_millis(500);
/// How long reads skip Redis after a Redis failure.
pub const REDIS_PAUSE_AFTER_ERROR: Duration = Duration::from_secs(1);
/// The default bound of the local tier; see [`Cache::with_local_max_entries`].
pub const DEFAULT_LOCAL_MAX_ENTRIES: usize = 10_000;
/// The most invalidations kept while Redis is unreachable; past that, the values of the keys
/// not kept may be served stale for up to `redis_ttl` once Redis is back.
pub const MAX_MISSED_INVALIDATIONS: usize = 10_000;

/// What a [`Cache`] caches, where, and for how long.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// The key prefix, e.g. "product:v1"; bump the version when the cached type changes.
    pub namespace: String,
    /// How long a value lives in Redis.
    pub redis_ttl: Duration,
    /// How long a value lives in this process' memory; `None` turns the local tier off.
    pub local_ttl: Option<Duration>,
}

/// A cache-aside helper; share one per namespace (it is cheap to keep behind an `Arc`).
pub struct Cache {
    redis: ConnectionManager,
    namespace: String,
    redis_ttl: Duration,
    local: Option<LocalTier>,
    redis_paused_until: Mutex<Option<Instant>>,
    /// Keys invalidated while Redis could not be told; deleted before Redis is read again.
    missed_invalidations: Mutex<HashSet<String>>,
}

/// The in-process tier on its own: values kept for `ttl` in this process' memory, at most
/// `max_entries` of them. For data a replica may serve a moment stale but that is not worth a
/// Redis round trip (what changes with every reservation, say); a write on this replica
/// removes its key, other replicas see it once their copy's `ttl` passes.
pub struct LocalCache(LocalTier);

impl LocalCache {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self(LocalTier {
            entries: DashMap::new(),
            ttl,
            max_entries: max_entries.max(1),
        })
    }

    /// The value of `key` while it is fresh (and of type `T`).
    pub fn get<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        self.0.get(key)
    }

    pub fn insert<T: Send + Sync + 'static>(&self, key: String, value: T) {
        self.0.insert(key, value);
    }

    pub fn remove(&self, key: &str) {
        self.0.entries.remove(key);
    }
}

struct LocalTier {
    entries: DashMap<String, LocalEntry>,
    ttl: Duration,
    max_entries: usize,
}

struct LocalEntry {
    value: Arc<dyn Any + Send + Sync>,
    inserted_at: Instant,
}

impl LocalTier {
    fn get<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        let fresh = {
            // The shard lock is held only inside this block: removing while holding it deadlocks.
            let entry = self.entries.get(key)?;
            (entry.inserted_at.elapsed() < self.ttl)
                .then(|| entry.value.downcast_ref::<T>().cloned())
        };
        match fresh {
            Some(value) => value,
            None => {
                self.entries
                    .remove_if(key, |_, entry| entry.inserted_at.elapsed() >= self.ttl);
                None
            }
        }
    }

    /// Inserts, keeping at most `max_entries`: when the map is full, expired entries are
    /// dropped, and if that frees nothing, everything is. The tier shields hot keys for a
    /// moment; it is not a store, and starting cold costs only Redis round trips.
    fn insert<T: Send + Sync + 'static>(&self, key: String, value: T) {
        if self.entries.len() >= self.max_entries {
            self.entries
                .retain(|_, entry| entry.inserted_at.elapsed() < self.ttl);
            if self.entries.len() >= self.max_entries {
                self.entries.clear();
            }
        }
        self.entries.insert(
            key,
            LocalEntry {
                value: Arc::new(value),
                inserted_at: Instant::now(),
            },
        );
    }
}

impl Cache {
    pub fn new(redis: ConnectionManager, config: CacheConfig) -> Self {
        Self {
            redis,
            namespace: config.namespace,
            redis_ttl: config.redis_ttl,
            local: config.local_ttl.map(|ttl| LocalTier {
                entries: DashMap::new(),
                ttl,
                max_entries: DEFAULT_LOCAL_MAX_ENTRIES,
            }),
            redis_paused_until: Mutex::new(None),
            missed_invalidations: Mutex::new(HashSet::new()),
        }
    }

    /// Caps the local tier at `max_entries` values (default [`DEFAULT_LOCAL_MAX_ENTRIES`]).
    pub fn with_local_max_entries(mut self, max_entries: usize) -> Self {
        if let Some(local) = &mut self.local {
            local.max_entries = max_entries.max(1);
        }
        self
    }

    /// The cached value of `key`, or what `load` returns (cached when it is `Some`). Only the
    /// loader's own error fails the read; cache failures fall back to the loader.
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, load: F) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let full_key = self.full_key(key);

        if let Some(local) = &self.local {
            if let Some(value) = local.get::<T>(&full_key) {
                self.count_request("local", "hit");
                return Ok(Some(value));
            }
            self.count_request("local", "miss");
        }

        let mut redis_usable = !self.redis_paused() && self.send_missed_invalidations().await;
        if redis_usable {
            match self.redis_get(&full_key).await {
                Ok(Some(json)) => match serde_json::from_str::<T>(&json) {
                    Ok(value) => {
                        self.count_request("redis", "hit");
                        if let Some(local) = &self.local {
                            local.insert(full_key, value.clone());
                        }
                        return Ok(Some(value));
                    }
                    Err(error) => {
                        // An old shape under the same namespace: replace it with a fresh load.
                        self.count_error();
                        tracing::warn!(namespace = %self.namespace, %error, "cached value does not decode; reloading");
                        self.count_request("redis", "miss");
                    }
                },
                Ok(None) => self.count_request("redis", "miss"),
                Err(error) => {
                    self.redis_failed("GET", &error);
                    self.count_request("redis", "miss");
                    redis_usable = false;
                }
            }
        } else {
            self.count_request("redis", "miss");
        }

        let loaded = load().await?;
        if let Some(value) = &loaded {
            if redis_usable {
                self.redis_set(&full_key, value).await;
            }
            if let Some(local) = &self.local {
                local.insert(full_key, value.clone());
            }
        }
        Ok(loaded)
    }

    /// Forgets `key` in Redis and in this process' local tier. Call it after every write of
    /// the underlying data. While Redis is unreachable (or when the delete fails) the key is
    /// remembered and deleted before Redis is read again, so the write does not wait for a
    /// Redis that is down.
    pub async fn invalidate(&self, key: &str) {
        let full_key = self.full_key(key);
        if let Some(local) = &self.local {
            local.entries.remove(&full_key);
        }
        if self.redis_paused() {
            self.remember_missed(vec![full_key]);
            return;
        }
        if let Err(error) = self.redis_delete(std::slice::from_ref(&full_key)).await {
            self.redis_failed("DEL", &error);
            self.remember_missed(vec![full_key]);
        }
    }

    /// Deletes the keys invalidated while Redis was unreachable; `false` (and Redis paused
    /// again) when that fails, so the read must not use Redis.
    async fn send_missed_invalidations(&self) -> bool {
        let missed: Vec<String> = {
            let mut missed = self.missed();
            if missed.is_empty() {
                return true;
            }
            missed.drain().collect()
        };
        match self.redis_delete(&missed).await {
            Ok(()) => {
                tracing::info!(namespace = %self.namespace, keys = missed.len(), "Redis is back; sent the invalidations it missed");
                true
            }
            Err(error) => {
                self.redis_failed("DEL", &error);
                self.remember_missed(missed);
                false
            }
        }
    }

    fn remember_missed(&self, keys: Vec<String>) {
        let mut missed = self.missed();
        for key in keys {
            if missed.len() >= MAX_MISSED_INVALIDATIONS {
                tracing::warn!(namespace = %self.namespace, "too many invalidations while Redis is unreachable; some values may be stale until their TTL");
                break;
            }
            missed.insert(key);
        }
    }

    fn missed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.missed_invalidations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn redis_delete(&self, full_keys: &[String]) -> Result<(), String> {
        let mut conn = self.redis.clone();
        tokio::time::timeout(
            REDIS_OPERATION_TIMEOUT,
            ::redis::cmd("DEL")
                .arg(full_keys)
                .query_async::<()>(&mut conn),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|error| error.to_string())
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }

    async fn redis_get(&self, full_key: &str) -> Result<Option<String>, String> {
        let mut conn = self.redis.clone();
        tokio::time::timeout(
            REDIS_OPERATION_TIMEOUT,
            ::redis::cmd("GET")
                .arg(full_key)
                .query_async::<Option<String>>(&mut conn),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|error| error.to_string())
    }

    async fn redis_set<T: Serialize>(&self, full_key: &str, value: &T) {
        let json = match serde_json::to_string(value) {
            Ok(json) => json,
            Err(error) => {
                self.count_error();
                tracing::warn!(namespace = %self.namespace, %error, "value does not encode; not cached");
                return;
            }
        };
        // PX rather than EX keeps sub-second TTLs exact; at least 1 ms, as Redis requires.
        let ttl_ms = u64::try_from(self.redis_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut conn = self.redis.clone();
        let stored = tokio::time::timeout(
            REDIS_OPERATION_TIMEOUT,
            ::redis::cmd("SET")
                .arg(full_key)
                .arg(json)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut conn),
        )
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.redis_failed("SET", &error),
            Err(_) => self.redis_failed("SET", &"timed out"),
        }
    }

    fn redis_paused(&self) -> bool {
        let mut paused_until = self
            .redis_paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *paused_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *paused_until = None;
                false
            }
            None => false,
        }
    }

    fn redis_failed(&self, command: &str, error: &dyn std::fmt::Display) {
        self.count_error();
        tracing::warn!(namespace = %self.namespace, command, %error, "Redis cache unavailable; using the loader");
        *self
            .redis_paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(Instant::now() + REDIS_PAUSE_AFTER_ERROR);
    }

    fn count_request(&self, tier: &'static str, result: &'static str) {
        metrics::counter!(
            "cache_requests_total",
            "namespace" => self.namespace.clone(),
            "tier" => tier,
            "result" => result,
        )
        .increment(1);
    }

    fn count_error(&self) {
        metrics::counter!("cache_errors_total", "namespace" => self.namespace.clone()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(ttl: Duration, max_entries: usize) -> LocalTier {
        LocalTier {
            entries: DashMap::new(),
            ttl,
            max_entries,
        }
    }

    #[test]
    fn the_local_tier_returns_fresh_values_of_the_right_type_only() {
        let local = tier(Duration::from_secs(60), 10);
        local.insert("ns:1".to_owned(), "widget".to_owned());
        assert_eq!(local.get::<String>("ns:1"), Some("widget".to_owned()));
        assert_eq!(local.get::<u64>("ns:1"), None, "another type is a miss");
        assert_eq!(local.get::<String>("ns:2"), None);
    }

    #[test]
    fn expired_local_values_are_misses_and_are_removed() {
        let local = tier(Duration::from_millis(20), 10);
        local.insert("ns:1".to_owned(), 1_u32);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(local.get::<u32>("ns:1"), None);
        assert!(local.entries.is_empty());
    }

    #[test]
    fn the_local_tier_never_grows_past_its_bound() {
        let local = tier(Duration::from_secs(60), 3);
        for i in 0..10_u32 {
            local.insert(format!("ns:{i}"), i);
            assert!(local.entries.len() <= 3, "{} entries", local.entries.len());
        }
        assert_eq!(
            local.get::<u32>("ns:9"),
            Some(9),
            "the newest value is kept"
        );
    }

    #[test]
    fn a_full_local_tier_drops_expired_entries_before_fresh_ones() {
        let local = tier(Duration::from_millis(50), 3);
        local.insert("ns:old".to_owned(), 0_u32);
        std::thread::sleep(Duration::from_millis(60));
        local.insert("ns:a".to_owned(), 1_u32);
        local.insert("ns:b".to_owned(), 2_u32);
        local.insert("ns:c".to_owned(), 3_u32);
        assert_eq!(local.entries.len(), 3);
        assert_eq!(local.get::<u32>("ns:a"), Some(1));
        assert_eq!(local.get::<u32>("ns:c"), Some(3));
    }
}
