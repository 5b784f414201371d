//! Redis storage for carts: each one is a JSON value in the hash
//! `cart:v1:carts` (field = id), and the sorted set `cart:v1:ids` orders the ids
//! (all scores 0, so members sort by their text; UUID v7 text sorts in creation order).
//!
//! Written once by `cargo xtask new-service cart`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{CartChanges, CartId, NewCart, Page};

/// The hash of every cart; bump the version when `CartRecord` changes shape.
const RECORDS_KEY: &str = "cart:v1:carts";
/// The ids in creation order.
const IDS_KEY: &str = "cart:v1:ids";

/// Merges a JSON patch into a stored record in one step, so concurrent updates of different
/// fields both stay. Returns the new record, or nil when there is none.
const UPDATE_SCRIPT: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return false end
local record = cjson.decode(current)
for field, value in pairs(cjson.decode(ARGV[2])) do record[field] = value end
local encoded = cjson.encode(record)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
";

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("a stored cart is not valid JSON: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// A stored cart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The carts of this service, in Redis.
#[derive(Clone)]
pub struct CartStore {
    redis: ConnectionManager,
}

impl CartStore {
    pub fn new(redis: ConnectionManager) -> Self {
        Self { redis }
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn insert(&self, id: CartId, new: &NewCart) -> Result<CartRecord, StoreError> {
        let now = Utc::now();
        let record = CartRecord {
            id: id.0,
            name: new.name.clone(),
            description: new.description.clone(),
            created_at: now,
            updated_at: now,
        };
        let id = id.to_string();
        let () = redis::pipe()
            .atomic()
            .hset(RECORDS_KEY, &id, serde_json::to_string(&record)?)
            .ignore()
            .zadd(IDS_KEY, &id, 0)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(record)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn get(&self, id: CartId) -> Result<Option<CartRecord>, StoreError> {
        let stored: Option<String> = redis::cmd("HGET")
            .arg(RECORDS_KEY)
            .arg(id.to_string())
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(stored.map(|json| serde_json::from_str(&json)).transpose()?)
    }

    /// Up to `limit` carts in id (creation) order, after `page.after`.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, page: Page, limit: usize) -> Result<Vec<CartRecord>, StoreError> {
        let start = match page.after {
            Some(after) => format!("({after}"),
            None => "-".to_owned(),
        };
        let mut redis = self.redis.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(IDS_KEY)
            .arg(start)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut redis)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(RECORDS_KEY)
            .arg(&ids)
            .query_async(&mut redis)
            .await?;
        // An id whose record was deleted between the two reads is skipped.
        stored
            .into_iter()
            .flatten()
            .map(|json| Ok(serde_json::from_str(&json)?))
            .collect()
    }

    /// `None` when there is no such cart.
    #[tracing::instrument(skip_all, fields(id = %changes.id))]
    pub async fn update(&self, changes: &CartChanges) -> Result<Option<CartRecord>, StoreError> {
        let mut patch = serde_json::Map::new();
        if let Some(name) = &changes.name {
            patch.insert("name".into(), name.clone().into());
        }
        if let Some(description) = &changes.description {
            patch.insert("description".into(), description.clone().into());
        }
        patch.insert("updated_at".into(), serde_json::to_value(Utc::now())?);
        let updated: Option<String> = redis::Script::new(UPDATE_SCRIPT)
            .key(RECORDS_KEY)
            .arg(changes.id.to_string())
            .arg(serde_json::Value::Object(patch).to_string())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(updated
            .map(|json| serde_json::from_str(&json))
            .transpose()?)
    }

    /// Whether there was such a cart.
    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn delete(&self, id: CartId) -> Result<bool, StoreError> {
        let id = id.to_string();
        let (deleted,): (u32,) = redis::pipe()
            .atomic()
            .hdel(RECORDS_KEY, &id)
            .zrem(IDS_KEY, &id)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(deleted == 1)
    }
}
