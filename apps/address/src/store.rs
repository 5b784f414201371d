//! PostgreSQL access for addresses: one small function per query.
//!
//! Every query filters by the owner, so no function here can read or change another user's
//! address, whatever id it is given. Reads take any executor; the writes that move the default
//! take a connection that the caller has opened a transaction on and locked the owner with
//! ([`lock_owner`]), so a user's changes of the default happen one after another and commit
//! together. Queries are checked at run time (`query_as` with `FromRow` rows): no database is
//! needed to build the crate, and the integration tests run every query against a real server.
//!
//! Constraint violations are turned into errors by constraint name (the names are spelled out
//! in the migration); every other database failure stays `Error::Database`.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{AddressFields, AddressId, AddressReplacement, OwnerId};
use crate::error::Error;

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The columns of an [`AddressRecord`], for every query that returns addresses.
macro_rules! address_columns {
    () => {
        "id, user_id, recipient_name, phone, line1, line2, city, region, postal_code, \
         country_code, is_default, created_at, updated_at"
    };
}

/// A stored address.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct AddressRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub recipient_name: String,
    pub phone: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country_code: String,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The error for a violated constraint of the addresses table, or the database error.
fn on_constraint(error: sqlx::Error) -> Error {
    let Some(constraint) = error.as_database_error().and_then(|db| db.constraint()) else {
        return Error::Database(error);
    };
    let invalid = |field, problem| Error::InvalidField { field, problem };
    match constraint {
        "addresses_recipient_name_length" => {
            invalid("recipient_name", "must have 1 to 200 characters")
        }
        "addresses_phone_format" => invalid("phone", "must be an E.164 number or empty"),
        "addresses_line1_length" => invalid("line1", "must have 1 to 200 characters"),
        "addresses_line2_length" => invalid("line2", "must have at most 200 characters"),
        "addresses_city_length" => invalid("city", "must have 1 to 100 characters"),
        "addresses_region_length" => invalid("region", "must have at most 100 characters"),
        "addresses_postal_code_format" => invalid(
            "postal_code",
            "must be at most 20 letters, digits, spaces and hyphens",
        ),
        "addresses_country_code_format" => {
            invalid("country_code", "must be an ISO 3166-1 alpha-2 code")
        }
        "addresses_one_default_per_user" | "addresses_default_required" => {
            // Writes of one user hold its lock, so this is a writer that did not take it.
            tracing::warn!(
                constraint,
                "the database refused a change of the default address"
            );
            Error::ConcurrentChange
        }
        _ => Error::Database(error),
    }
}

/// Commits `tx`; the deferred "every user with addresses has a default" check runs here.
pub async fn commit(tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), Error> {
    tx.commit().await.map_err(on_constraint)
}

/// Serialises the writes of `owner`'s addresses until the transaction ends.
///
/// An advisory lock rather than `SELECT ... FOR UPDATE`, because the first address of a user
/// has no row to lock yet: without it, two concurrent first addresses would both become the
/// default. The key is the owner's UUID folded to 64 bits; two users sharing a key only wait
/// for each other.
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

/// The owner's addresses: the default first, then newest first.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn list(
    executor: impl PgExecutor<'_>,
    owner: OwnerId,
) -> Result<Vec<AddressRecord>, Error> {
    let addresses = sqlx::query_as(concat!(
        "SELECT ",
        address_columns!(),
        " FROM addresses WHERE user_id = $1 \
          ORDER BY is_default DESC, created_at DESC, id DESC"
    ))
    .bind(owner.as_uuid())
    .fetch_all(executor)
    .await?;
    Ok(addresses)
}

/// How many addresses the owner has.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn count(conn: &mut PgConnection, owner: OwnerId) -> Result<i64, Error> {
    let count = sqlx::query_scalar("SELECT count(*) FROM addresses WHERE user_id = $1")
        .bind(owner.as_uuid())
        .fetch_one(conn)
        .await?;
    Ok(count)
}

/// The owner's address `id`; `None` when there is none (or it is another user's).
#[tracing::instrument(skip_all, fields(owner = %owner, address_id = %id))]
pub async fn get(
    executor: impl PgExecutor<'_>,
    owner: OwnerId,
    id: AddressId,
) -> Result<Option<AddressRecord>, Error> {
    let address = sqlx::query_as(concat!(
        "SELECT ",
        address_columns!(),
        " FROM addresses WHERE id = $1 AND user_id = $2"
    ))
    .bind(id.as_uuid())
    .bind(owner.as_uuid())
    .fetch_optional(executor)
    .await?;
    Ok(address)
}

#[tracing::instrument(skip_all, fields(owner = %owner, address_id = %id))]
pub async fn insert(
    conn: &mut PgConnection,
    owner: OwnerId,
    id: AddressId,
    fields: &AddressFields,
    is_default: bool,
) -> Result<AddressRecord, Error> {
    sqlx::query_as(concat!(
        "INSERT INTO addresses (id, user_id, recipient_name, phone, line1, line2, city, \
         region, postal_code, country_code, is_default) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
        address_columns!()
    ))
    .bind(id.as_uuid())
    .bind(owner.as_uuid())
    .bind(fields.recipient_name.as_str())
    .bind(fields.phone.as_str())
    .bind(fields.line1.as_str())
    .bind(fields.line2.as_str())
    .bind(fields.city.as_str())
    .bind(fields.region.as_str())
    .bind(fields.postal_code.as_str())
    .bind(fields.country_code.as_str())
    .bind(is_default)
    .fetch_one(conn)
    .await
    .map_err(on_constraint)
}

/// Replaces every field of the owner's address but whether it is the default; `None` when
/// the owner has no such address.
#[tracing::instrument(skip_all, fields(owner = %owner, address_id = %replacement.id))]
pub async fn replace(
    executor: impl PgExecutor<'_>,
    owner: OwnerId,
    replacement: &AddressReplacement,
) -> Result<Option<AddressRecord>, Error> {
    let fields = &replacement.fields;
    sqlx::query_as(concat!(
        "UPDATE addresses SET recipient_name = $3, phone = $4, line1 = $5, line2 = $6, \
         city = $7, region = $8, postal_code = $9, country_code = $10, updated_at = now() \
         WHERE id = $1 AND user_id = $2 RETURNING ",
        address_columns!()
    ))
    .bind(replacement.id.as_uuid())
    .bind(owner.as_uuid())
    .bind(fields.recipient_name.as_str())
    .bind(fields.phone.as_str())
    .bind(fields.line1.as_str())
    .bind(fields.line2.as_str())
    .bind(fields.city.as_str())
    .bind(fields.region.as_str())
    .bind(fields.postal_code.as_str())
    .bind(fields.country_code.as_str())
    .fetch_optional(executor)
    .await
    .map_err(on_constraint)
}

/// Makes none of the owner's addresses the default; the transaction must set a new one
/// before it commits, or delete the last address.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn clear_default(conn: &mut PgConnection, owner: OwnerId) -> Result<(), Error> {
    sqlx::query(
        "UPDATE addresses SET is_default = false, updated_at = now() \
         WHERE user_id = $1 AND is_default",
    )
    .bind(owner.as_uuid())
    .execute(conn)
    .await
    .map_err(on_constraint)?;
    Ok(())
}

/// Makes the owner's address `id` the default; the old default must have been cleared in
/// this transaction. `None` when the owner has no such address.
#[tracing::instrument(skip_all, fields(owner = %owner, address_id = %id))]
pub async fn set_default(
    conn: &mut PgConnection,
    owner: OwnerId,
    id: AddressId,
) -> Result<Option<AddressRecord>, Error> {
    sqlx::query_as(concat!(
        "UPDATE addresses SET is_default = true, updated_at = now() \
         WHERE id = $1 AND user_id = $2 RETURNING ",
        address_columns!()
    ))
    .bind(id.as_uuid())
    .bind(owner.as_uuid())
    .fetch_optional(conn)
    .await
    .map_err(on_constraint)
}

/// Makes the owner's most recently created address the default, if they have any left.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn promote_newest(conn: &mut PgConnection, owner: OwnerId) -> Result<(), Error> {
    sqlx::query(
        "UPDATE addresses SET is_default = true, updated_at = now() \
         WHERE id = (SELECT id FROM addresses WHERE user_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT 1)",
    )
    .bind(owner.as_uuid())
    .execute(conn)
    .await
    .map_err(on_constraint)?;
    Ok(())
}

/// Deletes the owner's address `id`: `Some(was_default)`, or `None` when there was none.
#[tracing::instrument(skip_all, fields(owner = %owner, address_id = %id))]
pub async fn delete(
    conn: &mut PgConnection,
    owner: OwnerId,
    id: AddressId,
) -> Result<Option<bool>, Error> {
    let was_default = sqlx::query_scalar(
        "DELETE FROM addresses WHERE id = $1 AND user_id = $2 RETURNING is_default",
    )
    .bind(id.as_uuid())
    .bind(owner.as_uuid())
    .fetch_optional(conn)
    .await?;
    Ok(was_default)
}
