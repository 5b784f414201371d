//! PostgreSQL access for vouchers: one small function per query, checked at run time
//! (`query_as` with `FromRow` rows), so no database is needed to build the crate and the
//! integration tests run every query against a real server. Redemptions are in
//! `redemptions.rs`.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;
use vocab::Currency;

use crate::domain::{CodeKey, Discount, NewVoucher, Offer, Terms, VoucherId, VoucherStatus};
use crate::error::{self, Error};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

const COLUMNS: &str = "id, code, description, shop_id, kind, percent_off, \
     amount_off_minor_units, currency, min_order_minor_units, max_discount_minor_units, \
     valid_from, valid_until, usage_limit, per_user_limit, used_count, reserved_count, status, \
     created_by, created_at, updated_at";

/// A stored voucher.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct VoucherRecord {
    pub id: Uuid,
    pub code: String,
    pub description: String,
    pub shop_id: Option<Uuid>,
    pub kind: String,
    pub percent_off: i32,
    pub amount_off_minor_units: i64,
    pub currency: String,
    pub min_order_minor_units: i64,
    pub max_discount_minor_units: i64,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub usage_limit: i32,
    pub per_user_limit: i32,
    pub used_count: i32,
    pub reserved_count: i32,
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl VoucherRecord {
    /// The terms as the domain reads them. The schema's CHECKs make every stored row valid; a
    /// row that is not is reported rather than guessed at.
    pub fn terms(&self) -> Result<Terms, Error> {
        let discount =
            Discount::from_columns(&self.kind, self.percent_off, self.amount_off_minor_units)
                .ok_or_else(|| self.corrupt("kind"))?;
        let status = VoucherStatus::parse(&self.status).map_err(|_| self.corrupt("status"))?;
        Ok(Terms {
            description: self.description.clone(),
            discount,
            min_order_minor_units: self.min_order_minor_units,
            max_discount_minor_units: self.max_discount_minor_units,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            usage_limit: self.usage_limit,
            per_user_limit: self.per_user_limit,
            status,
        })
    }

    /// What evaluating the voucher needs.
    pub fn offer(&self) -> Result<Offer, Error> {
        Ok(Offer {
            shop_id: self.shop_id,
            currency: Currency::find(&self.currency).ok_or_else(|| self.corrupt("currency"))?,
            terms: self.terms()?,
            used_count: self.used_count,
            reserved_count: self.reserved_count,
        })
    }

    fn corrupt(&self, column: &str) -> Error {
        Error::Database(sqlx::Error::Decode(
            format!("voucher {} has an invalid {column}", self.id).into(),
        ))
    }
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn insert(
    conn: &mut PgConnection,
    id: VoucherId,
    new: &NewVoucher,
    created_by: &str,
) -> Result<VoucherRecord, Error> {
    let terms = &new.terms;
    let inserted = sqlx::query_as(&format!(
        "INSERT INTO vouchers (id, code, description, shop_id, kind, percent_off, \
             amount_off_minor_units, currency, min_order_minor_units, max_discount_minor_units, \
             valid_from, valid_until, usage_limit, per_user_limit, status, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .bind(new.code.as_str())
    .bind(&terms.description)
    .bind(new.shop_id)
    .bind(terms.discount.kind())
    .bind(terms.discount.percent_off())
    .bind(terms.discount.amount_off_minor_units())
    .bind(new.currency.code())
    .bind(terms.min_order_minor_units)
    .bind(terms.max_discount_minor_units)
    .bind(terms.valid_from)
    .bind(terms.valid_until)
    .bind(terms.usage_limit)
    .bind(terms.per_user_limit)
    .bind(terms.status.as_str())
    .bind(created_by)
    .fetch_one(conn)
    .await;
    inserted.map_err(|cause| match error::constraint(&cause) {
        Some("vouchers_code_key") => Error::CodeTaken(new.code.as_str().to_owned()),
        _ => Error::Database(cause),
    })
}

/// The voucher with this code, in any case.
#[tracing::instrument(skip_all, fields(code = code.as_str()))]
pub async fn get_by_code<'e>(
    executor: impl PgExecutor<'e>,
    code: &CodeKey,
) -> Result<Option<VoucherRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vouchers WHERE code_key = $1"
    ))
    .bind(code.as_str())
    .fetch_optional(executor)
    .await?)
}

/// The voucher with this code, locked until the transaction ends.
#[tracing::instrument(skip_all, fields(code = code.as_str()))]
pub async fn lock_by_code(
    conn: &mut PgConnection,
    code: &CodeKey,
) -> Result<Option<VoucherRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vouchers WHERE code_key = $1 FOR UPDATE"
    ))
    .bind(code.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Replaces the terms of voucher `id`. Lowering the usage limit below the uses taken is
/// refused by the database (`vouchers_usage_within_limit`).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_terms(
    conn: &mut PgConnection,
    id: Uuid,
    terms: &Terms,
) -> Result<VoucherRecord, Error> {
    let updated = sqlx::query_as(&format!(
        "UPDATE vouchers SET description = $2, percent_off = $3, amount_off_minor_units = $4, \
             min_order_minor_units = $5, max_discount_minor_units = $6, valid_from = $7, \
             valid_until = $8, usage_limit = $9, per_user_limit = $10, status = $11, \
             updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&terms.description)
    .bind(terms.discount.percent_off())
    .bind(terms.discount.amount_off_minor_units())
    .bind(terms.min_order_minor_units)
    .bind(terms.max_discount_minor_units)
    .bind(terms.valid_from)
    .bind(terms.valid_until)
    .bind(terms.usage_limit)
    .bind(terms.per_user_limit)
    .bind(terms.status.as_str())
    .fetch_one(conn)
    .await;
    match updated {
        Ok(record) => Ok(record),
        Err(cause) if error::constraint(&cause) == Some("vouchers_usage_within_limit") => {
            Err(Error::UsageLimitBelowUses)
        }
        Err(cause) => Err(cause.into()),
    }
}

/// Up to `limit` vouchers, newest first, of `shop_id` (or all), older than `before`.
#[tracing::instrument(skip_all)]
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    shop_id: Option<Uuid>,
    before: Option<VoucherId>,
    limit: usize,
) -> Result<Vec<VoucherRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vouchers \
         WHERE ($1::uuid IS NULL OR shop_id = $1) AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(shop_id)
    .bind(before.map(|id| id.0))
    .bind(limit as i64)
    .fetch_all(executor)
    .await?)
}

/// How many uses (held or committed) `user_id` has of voucher `voucher_id`.
#[tracing::instrument(skip_all)]
pub async fn user_uses<'e>(
    executor: impl PgExecutor<'e>,
    voucher_id: Uuid,
    user_id: Uuid,
) -> Result<i32, Error> {
    let uses: Option<i32> = sqlx::query_scalar(
        "SELECT uses FROM voucher_user_uses WHERE voucher_id = $1 AND user_id = $2",
    )
    .bind(voucher_id)
    .bind(user_id)
    .fetch_optional(executor)
    .await?;
    Ok(uses.unwrap_or(0))
}
