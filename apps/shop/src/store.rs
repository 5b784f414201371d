//! PostgreSQL access for shops: one small function per query.
//!
//! Reads take any executor (the pool, or a transaction); writes take a connection that the
//! caller has opened a transaction on (`&mut *tx`), so that a change, its history row and the
//! record of the change in the outbox commit or roll back together. Queries are checked at
//! run time (`query_as` with `FromRow` rows): no database is needed to build the crate, and the
//! integration tests run every query against a real server.
//!
//! Constraint violations are turned into domain errors by constraint name (the names are
//! spelled out in the migration); every other database failure stays `Error::Database`.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::{NewShop, OwnerId, Page, ShopChanges, ShopId, ShopKey, ShopStatus};
use crate::error::Error;

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The columns of a [`ShopRecord`], for every query that returns shops.
macro_rules! shop_columns {
    () => {
        "id, owner_id, name, slug, description, logo_url, contact_email, currency, status, \
         status_reason, created_at, updated_at"
    };
}

/// A stored shop.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct ShopRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub logo_url: String,
    pub contact_email: String,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: ShopStatus,
    pub status_reason: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ShopRecord {
    pub fn shop_id(&self) -> ShopId {
        ShopId::from_uuid(self.id)
    }

    pub fn is_owned_by(&self, owner: Option<OwnerId>) -> bool {
        owner.is_some_and(|owner| owner.as_uuid() == self.owner_id)
    }
}

/// The domain error for a violated constraint, or the database error.
fn on_constraint(error: sqlx::Error) -> Error {
    let Some(constraint) = error.as_database_error().and_then(|db| db.constraint()) else {
        return Error::Database(error);
    };
    let invalid = |field, problem| Error::InvalidField { field, problem };
    match constraint {
        "shops_name_length" => invalid("name", "must have 1 to 100 characters"),
        "shops_slug_format" => invalid(
            "slug",
            "may contain only lower case letters, digits and single hyphens between them",
        ),
        "shops_description_length" => invalid("description", "must have at most 2000 characters"),
        "shops_logo_url_length" => invalid("logo_url", "must have at most 2048 characters"),
        "shops_contact_email_format" => invalid("contact_email", "must be an email address"),
        "shops_currency_format" => invalid("currency", "is not an ISO 4217 currency code"),
        _ => Error::Database(error),
    }
}

/// Like [`on_constraint`], with a taken slug named.
fn on_write_constraint(error: sqlx::Error, slug: Option<&str>) -> Error {
    let constraint = error.as_database_error().and_then(|db| db.constraint());
    match (constraint, slug) {
        (Some("shops_slug_key"), Some(slug)) => Error::SlugTaken(slug.to_owned()),
        _ => on_constraint(error),
    }
}

/// Serialises the shop openings of `owner` until the transaction ends, so that counting their
/// shops and inserting one cannot interleave with another opening (the limit holds under
/// concurrency).
///
/// An advisory lock rather than `SELECT ... FOR UPDATE`, because a seller's first shop has no
/// row to lock. The key is the owner's UUID folded to 64 bits; two owners sharing a key only
/// wait for each other.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn lock_owner(conn: &mut PgConnection, owner: OwnerId) -> Result<(), Error> {
    let bits = owner.as_uuid().as_u128();
    let key = ((bits >> 64) as u64 ^ bits as u64) as i64;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many shops `owner` has, in any status.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn count_owned(conn: &mut PgConnection, owner: OwnerId) -> Result<i64, Error> {
    let count = sqlx::query_scalar("SELECT count(*) FROM shops WHERE owner_id = $1")
        .bind(owner.as_uuid())
        .fetch_one(conn)
        .await?;
    Ok(count)
}

#[tracing::instrument(skip_all, fields(shop_id = %id, slug = shop.slug.as_str()))]
pub async fn insert(
    conn: &mut PgConnection,
    id: ShopId,
    owner: OwnerId,
    shop: &NewShop,
) -> Result<ShopRecord, Error> {
    sqlx::query_as(concat!(
        "INSERT INTO shops (id, owner_id, name, slug, description, logo_url, contact_email, \
         currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
        shop_columns!()
    ))
    .bind(id.as_uuid())
    .bind(owner.as_uuid())
    .bind(shop.name.as_str())
    .bind(shop.slug.as_str())
    .bind(shop.description.as_str())
    .bind(shop.logo_url.as_str())
    .bind(shop.contact_email.as_str())
    .bind(shop.currency.code())
    .fetch_one(conn)
    .await
    .map_err(|e| on_write_constraint(e, Some(shop.slug.as_str())))
}

/// The shop by id or slug, whoever owns it and whatever its status.
#[tracing::instrument(skip_all, fields(shop = %key))]
pub async fn find(
    executor: impl PgExecutor<'_>,
    key: &ShopKey,
) -> Result<Option<ShopRecord>, Error> {
    let query = match key {
        ShopKey::Id(id) => sqlx::query_as(concat!(
            "SELECT ",
            shop_columns!(),
            " FROM shops WHERE id = $1"
        ))
        .bind(id.as_uuid()),
        ShopKey::Slug(slug) => sqlx::query_as(concat!(
            "SELECT ",
            shop_columns!(),
            " FROM shops WHERE slug = $1"
        ))
        .bind(slug.as_str()),
    };
    Ok(query.fetch_optional(executor).await?)
}

/// The shops of the given ids that exist, whatever their status.
#[tracing::instrument(skip_all, fields(shops = ids.len()))]
pub async fn find_many(
    executor: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<ShopRecord>, Error> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        shop_columns!(),
        " FROM shops WHERE id = ANY($1) ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(executor)
    .await?)
}

/// The shop `id`, locked until the transaction ends so that concurrent changes of it happen
/// one after another (and record their events in commit order).
#[tracing::instrument(skip_all, fields(shop_id = %id))]
pub async fn lock(conn: &mut PgConnection, id: ShopId) -> Result<Option<ShopRecord>, Error> {
    let shop = sqlx::query_as(concat!(
        "SELECT ",
        shop_columns!(),
        " FROM shops WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.as_uuid())
    .fetch_optional(conn)
    .await?;
    Ok(shop)
}

/// Sets the fields `changes` has and leaves the others alone.
#[tracing::instrument(skip_all, fields(shop_id = %changes.id))]
pub async fn update(conn: &mut PgConnection, changes: &ShopChanges) -> Result<ShopRecord, Error> {
    let slug = changes.slug.as_ref().map(|s| s.as_str());
    sqlx::query_as(concat!(
        "UPDATE shops SET \
             name = COALESCE($2, name), \
             slug = COALESCE($3, slug), \
             description = COALESCE($4, description), \
             logo_url = COALESCE($5, logo_url), \
             contact_email = COALESCE($6, contact_email), \
             updated_at = now() \
         WHERE id = $1 RETURNING ",
        shop_columns!()
    ))
    .bind(changes.id.as_uuid())
    .bind(changes.name.as_ref().map(|n| n.as_str()))
    .bind(slug)
    .bind(changes.description.as_ref().map(|d| d.as_str()))
    .bind(changes.logo_url.as_ref().map(|l| l.as_str()))
    .bind(changes.contact_email.as_ref().map(|e| e.as_str()))
    .fetch_one(conn)
    .await
    .map_err(|e| on_write_constraint(e, slug))
}

/// Moves the shop to `status` with `reason` (empty unless suspended) and records the change
/// in the shop's history.
#[tracing::instrument(skip_all, fields(shop_id = %shop.id, status = %status))]
pub async fn set_status(
    conn: &mut PgConnection,
    shop: &ShopRecord,
    status: ShopStatus,
    reason: &str,
    changed_by: &str,
) -> Result<ShopRecord, Error> {
    let updated: ShopRecord = sqlx::query_as(concat!(
        "UPDATE shops SET status = $2, status_reason = $3, updated_at = now() \
         WHERE id = $1 RETURNING ",
        shop_columns!()
    ))
    .bind(shop.id)
    .bind(status.as_str())
    .bind(reason)
    .fetch_one(&mut *conn)
    .await
    .map_err(on_constraint)?;
    sqlx::query(
        "INSERT INTO shop_status_changes (shop_id, previous_status, status, reason, changed_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(shop.id)
    .bind(shop.status.as_str())
    .bind(status.as_str())
    .bind(reason)
    .bind(changed_by)
    .execute(conn)
    .await?;
    Ok(updated)
}

/// Which shops a listing shows.
#[derive(Clone, Copy, Debug)]
pub enum Listing {
    /// Every shop in this status.
    Status(ShopStatus),
    /// Every shop of this owner, in any status.
    Owner(OwnerId),
}

/// One page of a listing.
#[derive(Debug)]
pub struct ShopPage {
    pub shops: Vec<ShopRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ShopId>,
}

/// One page of `listing`, oldest first (keyset on the id, a UUID v7), after `page.after`.
#[tracing::instrument(skip_all, fields(listing = ?listing))]
pub async fn list(pool: &PgPool, listing: Listing, page: Page) -> Result<ShopPage, Error> {
    let mut sql = QueryBuilder::<Postgres>::new(concat!("SELECT ", shop_columns!(), " FROM shops"));
    match listing {
        Listing::Status(status) => sql.push(" WHERE status = ").push_bind(status.as_str()),
        Listing::Owner(owner) => sql.push(" WHERE owner_id = ").push_bind(owner.as_uuid()),
    };
    if let Some(after) = page.after {
        sql.push(" AND id > ").push_bind(after.as_uuid());
    }
    // One more than a page tells whether there is a next page.
    sql.push(" ORDER BY id LIMIT ")
        .push_bind(page.size.as_i64() + 1);
    let mut shops: Vec<ShopRecord> = sql.build_query_as().fetch_all(pool).await?;
    let next = if shops.len() > page.size.get() {
        shops.truncate(page.size.get());
        shops.last().map(ShopRecord::shop_id)
    } else {
        None
    };
    Ok(ShopPage { shops, next })
}

impl From<ShopRecord> for api::shop::Shop {
    fn from(record: ShopRecord) -> Self {
        api::shop::Shop {
            id: record.id.to_string(),
            owner_id: record.owner_id.to_string(),
            name: record.name,
            slug: record.slug,
            description: record.description,
            logo_url: record.logo_url,
            contact_email: record.contact_email,
            currency: record.currency,
            status: record.status.as_str().to_owned(),
            status_reason: record.status_reason,
            created_at: api::timestamp(record.created_at),
            updated_at: api::timestamp(record.updated_at),
        }
    }
}
