//! Where carts are kept: PostgreSQL holds the durable copy, Redis the hot one.
//!
//! **Write-through.** Every write runs in a PostgreSQL transaction that locks the cart's row
//! (`SELECT ... FOR UPDATE`), bumps its `version` and commits; only then is the new cart
//! written to Redis. Reads come from Redis; a miss (a flush, a restart, an eviction) loads
//! the row from PostgreSQL and refills Redis. So losing Redis loses nothing, and a write that
//! was answered is durable. A write-behind queue (Redis first, PostgreSQL later) would be
//! faster to answer but would lose the last writes when the process or Redis dies.
//!
//! **No stale refill.** A reader that missed Redis and loaded version 5 from PostgreSQL may
//! be overtaken by a writer that commits version 6 and writes it to Redis before the reader
//! refills. Every Redis write therefore goes through one Lua script ([`PUT_SCRIPT`]) that
//! replaces the hash only when its version is newer than the one Redis holds; the older copy
//! is dropped. A cart that ends (a merged guest cart) leaves a tombstone with a newer version
//! rather than no key, so a slow refill cannot bring it back; the tombstone expires when the
//! cart would have.
//!
//! What remains: when Redis refuses a write that PostgreSQL committed (Redis down at that
//! moment), the Redis copy may be older until the next write or until it is flushed. The
//! service logs it; while Redis is unreachable, reads go to PostgreSQL.
//!
//! Redis layout: the hash `cart:v1:<key>` holds a field per product id (its quantity) and
//! meta fields starting with `_` (version, order of the lines, currency, voucher, owner,
//! timestamps). Guest carts expire at their `expires_at` (30 days after the last write); user
//! carts never do.

use chrono::{DateTime, TimeZone, Utc};
use redis::aio::ConnectionManager;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;
use vocab::Currency;

use crate::domain::{CartContents, CartKey, GUEST_CART_DAYS, Line};
use crate::error::Error;

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A stored cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCart {
    pub key: CartKey,
    pub contents: CartContents,
    /// 0 for a user's cart that was never written.
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
    /// Guest carts only.
    pub expires_at: Option<DateTime<Utc>>,
}

impl StoredCart {
    /// The cart of a user who has never had one.
    pub fn empty(key: CartKey) -> Self {
        Self {
            key,
            contents: CartContents::default(),
            version: 0,
            updated_at: None,
            expires_at: None,
        }
    }
}

macro_rules! cart_columns {
    () => {
        "key, user_id, lines, currency, voucher_code, version, updated_at, expires_at"
    };
}

#[derive(FromRow)]
struct CartRow {
    key: String,
    user_id: Option<String>,
    lines: Json<Vec<Line>>,
    currency: Option<String>,
    voucher_code: Option<String>,
    version: i64,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

impl CartRow {
    fn into_cart(self) -> Result<StoredCart, Error> {
        let key = match (self.user_id, self.key.strip_prefix("guest:")) {
            (Some(user_id), _) => CartKey::User(user_id),
            (None, Some(hash)) => CartKey::Guest(hash.to_owned()),
            (None, None) => return Err(Error::Corrupt(format!("cart {} has no owner", self.key))),
        };
        let currency = self
            .currency
            .map(|code| Currency::parse(code.trim()))
            .transpose()
            .map_err(|problem| Error::Corrupt(format!("cart {}: currency {problem}", self.key)))?;
        Ok(StoredCart {
            key,
            contents: CartContents {
                lines: self.lines.0,
                currency,
                voucher_code: self.voucher_code,
            },
            version: self.version,
            // A row at version 0 was created by this transaction and never written.
            updated_at: (self.version > 0).then_some(self.updated_at),
            expires_at: self.expires_at,
        })
    }
}

/// The cart at `key`; `None` when there is none, or it is a guest cart that expired.
#[tracing::instrument(skip_all)]
pub async fn load(
    executor: impl PgExecutor<'_>,
    key: &CartKey,
) -> Result<Option<StoredCart>, Error> {
    let row: Option<CartRow> = sqlx::query_as(concat!(
        "SELECT ",
        cart_columns!(),
        " FROM carts WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())"
    ))
    .bind(key.as_stored())
    .fetch_optional(executor)
    .await?;
    row.map(CartRow::into_cart).transpose()
}

/// The cart at `key`, locked until the transaction ends. A user's cart is created (empty, at
/// version 0) when it does not exist yet; a guest cart that does not exist is `None`.
#[tracing::instrument(skip_all)]
pub async fn lock(conn: &mut PgConnection, key: &CartKey) -> Result<Option<StoredCart>, Error> {
    if let CartKey::User(user_id) = key {
        sqlx::query(
            "INSERT INTO carts (key, user_id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.as_stored())
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    }
    let row: Option<CartRow> = sqlx::query_as(concat!(
        "SELECT ",
        cart_columns!(),
        " FROM carts WHERE key = $1 AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE"
    ))
    .bind(key.as_stored())
    .fetch_optional(conn)
    .await?;
    row.map(CartRow::into_cart).transpose()
}

/// Starts a guest cart at `key`, empty.
#[tracing::instrument(skip_all)]
pub async fn insert_guest(
    executor: impl PgExecutor<'_>,
    key: &CartKey,
) -> Result<StoredCart, Error> {
    let row: CartRow = sqlx::query_as(concat!(
        "INSERT INTO carts (key, user_id, version, expires_at) \
         VALUES ($1, NULL, 1, now() + make_interval(days => $2)) RETURNING ",
        cart_columns!()
    ))
    .bind(key.as_stored())
    .bind(GUEST_CART_DAYS as i32)
    .fetch_one(executor)
    .await?;
    row.into_cart()
}

/// Replaces the locked cart's contents, bumping its version; a guest cart lives another
/// [`GUEST_CART_DAYS`] from now.
#[tracing::instrument(skip_all)]
pub async fn save(
    conn: &mut PgConnection,
    key: &CartKey,
    contents: &CartContents,
) -> Result<StoredCart, Error> {
    let row: CartRow = sqlx::query_as(concat!(
        "UPDATE carts SET lines = $2, currency = $3, voucher_code = $4, version = version + 1, \
         updated_at = now(), \
         expires_at = CASE WHEN user_id IS NULL THEN now() + make_interval(days => $5) END \
         WHERE key = $1 RETURNING ",
        cart_columns!()
    ))
    .bind(key.as_stored())
    .bind(Json(&contents.lines))
    .bind(contents.currency.map(|currency| currency.code().to_owned()))
    .bind(contents.voucher_code.as_deref())
    .bind(GUEST_CART_DAYS as i32)
    .fetch_one(conn)
    .await
    .map_err(on_constraint)?;
    row.into_cart()
}

/// The error for a violated constraint of the carts table, or the database error. The
/// domain refuses the same things first; these are the last line of defence.
fn on_constraint(error: sqlx::Error) -> Error {
    let constraint = error.as_database_error().and_then(|db| db.constraint());
    match constraint {
        Some("carts_lines_array") => Error::TooManyLines,
        _ => Error::Database(error),
    }
}

/// Ends the guest cart at `key` and returns it, or `None` when there is none (any more). The
/// row lock makes this happen once: a concurrent second call waits, then finds nothing.
#[tracing::instrument(skip_all)]
pub async fn take_guest(
    conn: &mut PgConnection,
    key: &CartKey,
) -> Result<Option<StoredCart>, Error> {
    let row: Option<CartRow> = sqlx::query_as(concat!(
        "DELETE FROM carts WHERE key = $1 AND user_id IS NULL AND expires_at > now() RETURNING ",
        cart_columns!()
    ))
    .bind(key.as_stored())
    .fetch_optional(conn)
    .await?;
    row.map(CartRow::into_cart).transpose()
}

/// Whether the checkout of an order is recorded now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutRecord {
    /// First time: the cart is to be completed.
    New,
    /// The order had completed this user's cart before, with the same lines.
    Repeat,
    /// The order id completed a cart before with another user or other lines.
    Different,
}

/// Records that `order_id` completes `user_id`'s cart, taking `lines` out of it.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn record_checkout(
    conn: &mut PgConnection,
    order_id: Uuid,
    user_id: &str,
    lines: &[Line],
) -> Result<CheckoutRecord, Error> {
    let mut lines = lines.to_vec();
    lines.sort_by_key(|line| line.product_id);
    let inserted = sqlx::query(
        "INSERT INTO checkouts (order_id, user_id, lines) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(user_id)
    .bind(Json(&lines))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(CheckoutRecord::New);
    }
    let (owner, recorded): (String, Json<Vec<Line>>) =
        sqlx::query_as("SELECT user_id, lines FROM checkouts WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(conn)
            .await?;
    Ok(if owner == user_id && recorded.0 == lines {
        CheckoutRecord::Repeat
    } else {
        CheckoutRecord::Different
    })
}

/// Deletes the guest carts that expired; how many.
#[tracing::instrument(skip_all)]
pub async fn delete_expired(pool: &PgPool) -> Result<u64, Error> {
    let deleted = sqlx::query("DELETE FROM carts WHERE expires_at <= now()")
        .execute(pool)
        .await?
        .rows_affected();
    Ok(deleted)
}

/// Replaces the hash at KEYS[1] with the field/value pairs ARGV[3..] unless Redis already
/// holds version ARGV[1] or a newer one; ARGV[2] is when it expires (Unix milliseconds, 0 for
/// never). Returns 1 when it wrote.
pub const PUT_SCRIPT: &str = r"
local held = tonumber(redis.call('HGET', KEYS[1], '_version') or '-1')
if held >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
";

/// What Redis holds for a cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hot {
    Cart(StoredCart),
    /// The cart ended (a guest cart merged into a user's).
    Gone,
}

/// The hot copies of carts, in Redis.
#[derive(Clone)]
pub struct HotCarts {
    redis: ConnectionManager,
}

fn redis_key(key: &CartKey) -> String {
    format!("cart:v1:{}", key.as_stored())
}

impl HotCarts {
    pub fn new(redis: ConnectionManager) -> Self {
        Self { redis }
    }

    /// The cart at `key` as Redis holds it; `None` when Redis does not have it.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, key: &CartKey) -> Result<Option<Hot>, Error> {
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(redis_key(key))
            .query_async(&mut self.redis.clone())
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode(key, fields).map(Some)
    }

    /// Writes `cart` unless Redis holds the same or a newer version.
    #[tracing::instrument(skip_all)]
    pub async fn put(&self, cart: &StoredCart) -> Result<(), Error> {
        let mut fields: Vec<(String, String)> = vec![
            ("_version".into(), cart.version.to_string()),
            (
                "_order".into(),
                cart.contents
                    .lines
                    .iter()
                    .map(|line| line.product_id.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        if let Some(currency) = cart.contents.currency {
            fields.push(("_currency".into(), currency.code().to_owned()));
        }
        if let Some(code) = &cart.contents.voucher_code {
            fields.push(("_voucher".into(), code.clone()));
        }
        if let Some(updated_at) = cart.updated_at {
            fields.push((
                "_updated_at".into(),
                updated_at.timestamp_micros().to_string(),
            ));
        }
        if let Some(expires_at) = cart.expires_at {
            fields.push((
                "_expires_at".into(),
                expires_at.timestamp_micros().to_string(),
            ));
        }
        for line in &cart.contents.lines {
            fields.push((line.product_id.to_string(), line.quantity.to_string()));
        }
        self.write(&cart.key, cart.version, cart.expires_at, fields)
            .await
    }

    /// Marks the cart at `key` as ended, as of `version` (newer than its last), until
    /// `expires_at` (a day from now when it has none).
    #[tracing::instrument(skip_all)]
    pub async fn bury(
        &self,
        key: &CartKey,
        version: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        let expires_at = expires_at.unwrap_or_else(|| Utc::now() + chrono::Duration::days(1));
        let fields = vec![
            ("_version".to_owned(), version.to_string()),
            ("_gone".to_owned(), "1".to_owned()),
        ];
        self.write(key, version, Some(expires_at), fields).await
    }

    async fn write(
        &self,
        key: &CartKey,
        version: i64,
        expires_at: Option<DateTime<Utc>>,
        fields: Vec<(String, String)>,
    ) -> Result<(), Error> {
        let script = redis::Script::new(PUT_SCRIPT);
        let mut invocation = script.key(redis_key(key));
        invocation
            .arg(version)
            .arg(expires_at.map_or(0, |at| at.timestamp_millis()));
        for (field, value) in fields {
            invocation.arg(field).arg(value);
        }
        let _written: i64 = invocation.invoke_async(&mut self.redis.clone()).await?;
        Ok(())
    }
}

fn micros(value: &str) -> Option<DateTime<Utc>> {
    Utc.timestamp_micros(value.parse().ok()?).single()
}

/// Reads a cart's hash back; a hash that does not parse is reported, and the caller falls
/// back to PostgreSQL.
fn decode(key: &CartKey, fields: Vec<(String, String)>) -> Result<Hot, Error> {
    let corrupt = |what: &str| Error::Corrupt(format!("the Redis copy of a cart: {what}"));
    let mut version = None;
    let mut order = String::new();
    let mut contents = CartContents::default();
    let mut updated_at = None;
    let mut expires_at = None;
    let mut quantities = std::collections::HashMap::new();
    for (field, value) in fields {
        match field.as_str() {
            "_gone" => return Ok(Hot::Gone),
            "_version" => version = value.parse::<i64>().ok(),
            "_order" => order = value,
            "_currency" => {
                contents.currency = Some(Currency::parse(&value).map_err(|_| corrupt("currency"))?);
            }
            "_voucher" => contents.voucher_code = Some(value),
            "_updated_at" => updated_at = micros(&value),
            "_expires_at" => expires_at = micros(&value),
            _ if field.starts_with('_') => {}
            _ => {
                let product_id = Uuid::try_parse(&field).map_err(|_| corrupt("product id"))?;
                let quantity = value.parse::<i32>().map_err(|_| corrupt("quantity"))?;
                quantities.insert(product_id, quantity);
            }
        }
    }
    let version = version.ok_or_else(|| corrupt("no version"))?;
    for id in order.split(',').filter(|id| !id.is_empty()) {
        let product_id = Uuid::try_parse(id).map_err(|_| corrupt("order"))?;
        let quantity = quantities
            .remove(&product_id)
            .ok_or_else(|| corrupt("a line without a quantity"))?;
        contents.lines.push(Line {
            product_id,
            quantity,
        });
    }
    if !quantities.is_empty() {
        return Err(corrupt("a quantity without a line"));
    }
    Ok(Hot::Cart(StoredCart {
        key: key.clone(),
        contents,
        version,
        updated_at,
        expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_in_the_order_of_its_lines() {
        let key = CartKey::user("u");
        let [a, b] = [Uuid::now_v7(), Uuid::now_v7()];
        let fields = vec![
            ("_version".to_owned(), "3".to_owned()),
            (a.to_string(), "2".to_owned()),
            ("_order".to_owned(), format!("{b},{a}")),
            (b.to_string(), "1".to_owned()),
            ("_voucher".to_owned(), "SAVE".to_owned()),
            ("_currency".to_owned(), "USD".to_owned()),
        ];
        let Hot::Cart(cart) = decode(&key, fields).unwrap() else {
            panic!("a cart")
        };
        assert_eq!(cart.version, 3);
        assert_eq!(
            cart.contents.lines,
            [
                Line {
                    product_id: b,
                    quantity: 1
                },
                Line {
                    product_id: a,
                    quantity: 2
                }
            ]
        );
        assert_eq!(cart.contents.voucher_code.as_deref(), Some("SAVE"));
    }

    #[test]
    fn a_tombstone_reads_as_gone_and_a_broken_hash_as_an_error() {
        let key = CartKey::guest("t");
        let gone = vec![
            ("_version".to_owned(), "9".to_owned()),
            ("_gone".to_owned(), "1".to_owned()),
        ];
        assert_eq!(decode(&key, gone).unwrap(), Hot::Gone);
        let broken = vec![("_order".to_owned(), Uuid::now_v7().to_string())];
        assert!(decode(&key, broken).is_err());
    }
}
