//! PostgreSQL access for payment methods, payments and the ledger: one small function per
//! query, checked at run time (`query_as` with `FromRow` rows), so no database is needed to
//! build the crate and the integration tests run every query against a real server.

use api::payment::{LedgerEntry, Payment, PaymentMethod};
use api::timestamp;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;
use vocab::{Currency, Money};

use crate::domain::{Operation, PaymentId, PaymentQuery, PaymentState, PaymentStatus};
use crate::error::Error;

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

// ---------------------------------------------------------------------------------------------
// Payment methods
// ---------------------------------------------------------------------------------------------

/// A stored payment method: no card number, no CVC.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct PaymentMethodRecord {
    pub id: String,
    pub user_id: Uuid,
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
    pub provider_token: String,
    pub created_at: DateTime<Utc>,
}

impl From<PaymentMethodRecord> for PaymentMethod {
    fn from(record: PaymentMethodRecord) -> Self {
        PaymentMethod {
            id: record.id,
            user_id: record.user_id.to_string(),
            brand: record.brand,
            last4: record.last4,
            exp_month: record.exp_month,
            exp_year: record.exp_year,
            created_at: timestamp(record.created_at),
        }
    }
}

const METHOD_COLUMNS: &str =
    "id, user_id, brand, last4, exp_month, exp_year, provider_token, created_at";

/// The fields of a new payment method.
pub struct NewMethodRow<'a> {
    pub id: &'a str,
    pub user_id: Uuid,
    pub brand: &'a str,
    pub last4: &'a str,
    pub exp_month: i32,
    pub exp_year: i32,
    pub provider_token: &'a str,
}

#[tracing::instrument(skip_all, fields(id = %row.id))]
pub async fn insert_payment_method(
    pool: &PgPool,
    row: &NewMethodRow<'_>,
) -> Result<PaymentMethodRecord, Error> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO payment_methods \
             (id, user_id, brand, last4, exp_month, exp_year, provider_token) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {METHOD_COLUMNS}"
    ))
    .bind(row.id)
    .bind(row.user_id)
    .bind(row.brand)
    .bind(row.last4)
    .bind(row.exp_month)
    .bind(row.exp_year)
    .bind(row.provider_token)
    .fetch_one(pool)
    .await?)
}

/// The payment method `id` if it is `user_id`'s.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn payment_method_of(
    conn: &mut PgConnection,
    id: &str,
    user_id: Uuid,
) -> Result<Option<PaymentMethodRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {METHOD_COLUMNS} FROM payment_methods WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Payments
// ---------------------------------------------------------------------------------------------

/// A stored payment.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub payment_method_id: String,
    pub brand: String,
    pub last4: String,
    pub currency: String,
    pub amount_minor_units: i64,
    pub captured_minor_units: i64,
    pub refunded_minor_units: i64,
    pub status: String,
    pub failure_code: String,
    pub failure_message: String,
    pub provider_reference: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentRecord {
    pub fn currency(&self) -> Result<Currency, Error> {
        Currency::find(&self.currency).ok_or_else(|| {
            Error::Corrupt(format!(
                "payment {} has an unknown currency {:?}",
                self.id, self.currency
            ))
        })
    }

    /// What the state machine decides on.
    pub fn state(&self) -> Result<PaymentState, Error> {
        let currency = self.currency()?;
        let status = PaymentStatus::parse(&self.status).ok_or_else(|| {
            Error::Corrupt(format!(
                "payment {} has an unknown status {:?}",
                self.id, self.status
            ))
        })?;
        Ok(PaymentState {
            id: PaymentId(self.id),
            status,
            amount: Money::new(self.amount_minor_units, currency),
            captured: Money::new(self.captured_minor_units, currency),
            refunded: Money::new(self.refunded_minor_units, currency),
        })
    }

    /// The contract's message, with `ledger` (empty but for GetPayment).
    pub fn message(&self, ledger: Vec<LedgerEntry>) -> Payment {
        let money = |minor_units| {
            Some(api::common::Money {
                minor_units,
                currency: self.currency.clone(),
            })
        };
        Payment {
            id: self.id.to_string(),
            order_id: self.order_id.to_string(),
            user_id: self.user_id.to_string(),
            payment_method_id: self.payment_method_id.clone(),
            brand: self.brand.clone(),
            last4: self.last4.clone(),
            amount: money(self.amount_minor_units),
            captured: money(self.captured_minor_units),
            refunded: money(self.refunded_minor_units),
            status: self.status.clone(),
            failure_code: self.failure_code.clone(),
            failure_message: self.failure_message.clone(),
            provider_reference: self.provider_reference.clone(),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            ledger,
        }
    }
}

const PAYMENT_COLUMNS: &str = "id, order_id, user_id, payment_method_id, brand, last4, currency, \
     amount_minor_units, captured_minor_units, refunded_minor_units, status, failure_code, \
     failure_message, provider_reference, created_at, updated_at";

/// The fields of a payment made by an authorisation (approved or declined).
pub struct NewPaymentRow<'a> {
    pub id: PaymentId,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub method: &'a PaymentMethodRecord,
    pub amount: Money,
    pub status: PaymentStatus,
    pub failure_code: &'a str,
    pub failure_message: &'a str,
    pub provider_reference: &'a str,
}

#[tracing::instrument(skip_all, fields(id = %row.id))]
pub async fn insert_payment(
    conn: &mut PgConnection,
    row: &NewPaymentRow<'_>,
) -> Result<PaymentRecord, Error> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO payments \
             (id, order_id, user_id, payment_method_id, brand, last4, currency, \
              amount_minor_units, status, failure_code, failure_message, provider_reference) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(row.id.0)
    .bind(row.order_id)
    .bind(row.user_id)
    .bind(&row.method.id)
    .bind(&row.method.brand)
    .bind(&row.method.last4)
    .bind(row.amount.currency().code())
    .bind(row.amount.minor_units())
    .bind(row.status.as_str())
    .bind(row.failure_code)
    .bind(row.failure_message)
    .bind(row.provider_reference)
    .fetch_one(conn)
    .await?)
}

/// The payment, locked until the transaction ends.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn lock_payment(
    conn: &mut PgConnection,
    id: PaymentId,
) -> Result<Option<PaymentRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(conn)
    .await?)
}

/// Moves a payment to `status` with these totals (the domain decided the move is legal; the
/// table's CHECK constraints hold the amounts to it whatever the code does).
#[tracing::instrument(skip_all, fields(id = %id, status = %status))]
pub async fn update_payment(
    conn: &mut PgConnection,
    id: PaymentId,
    status: PaymentStatus,
    captured: Money,
    refunded: Money,
) -> Result<PaymentRecord, Error> {
    Ok(sqlx::query_as(&format!(
        "UPDATE payments SET status = $2, captured_minor_units = $3, \
             refunded_minor_units = $4, updated_at = now() \
         WHERE id = $1 RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(id.0)
    .bind(status.as_str())
    .bind(captured.minor_units())
    .bind(refunded.minor_units())
    .fetch_one(conn)
    .await?)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn get_payment(pool: &PgPool, id: PaymentId) -> Result<Option<PaymentRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(pool)
    .await?)
}

/// Up to `limit` payments, newest first, of `query`'s order if it names one, older than
/// `query.before`.
#[tracing::instrument(skip_all)]
pub async fn list_payments(
    pool: &PgPool,
    query: &PaymentQuery,
    limit: usize,
) -> Result<Vec<PaymentRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments \
         WHERE ($1::uuid IS NULL OR order_id = $1) AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(query.order_id)
    .bind(query.before.map(|id| id.0))
    .bind(limit as i64)
    .fetch_all(pool)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------

/// How a provider call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Declined,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Declined => "declined",
            Outcome::Error => "error",
        }
    }
}

/// One provider call, as the ledger records it.
pub struct LedgerRow<'a> {
    pub payment_id: PaymentId,
    pub operation: Operation,
    pub idempotency_key: &'a str,
    pub amount: Money,
    pub outcome: Outcome,
    pub provider_reference: &'a str,
    pub message: &'a str,
}

#[tracing::instrument(skip_all, fields(payment_id = %row.payment_id, operation = row.operation.as_str()))]
pub async fn append_ledger(conn: &mut PgConnection, row: &LedgerRow<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO payment_ledger \
             (id, payment_id, operation, idempotency_key, currency, amount_minor_units, outcome, \
              provider_reference, message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(row.payment_id.0)
    .bind(row.operation.as_str())
    .bind(row.idempotency_key)
    .bind(row.amount.currency().code())
    .bind(row.amount.minor_units())
    .bind(row.outcome.as_str())
    .bind(row.provider_reference)
    .bind(row.message)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, FromRow)]
struct LedgerRecord {
    operation: String,
    idempotency_key: String,
    currency: String,
    amount_minor_units: i64,
    outcome: String,
    provider_reference: String,
    message: String,
    at: DateTime<Utc>,
}

/// Every provider call made for payment `id`, oldest first.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn ledger_of(pool: &PgPool, id: PaymentId) -> Result<Vec<LedgerEntry>, Error> {
    let records: Vec<LedgerRecord> = sqlx::query_as(
        "SELECT operation, idempotency_key, currency, amount_minor_units, outcome, \
             provider_reference, message, at \
         FROM payment_ledger WHERE payment_id = $1 ORDER BY at, id",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    Ok(records
        .into_iter()
        .map(|record| LedgerEntry {
            operation: record.operation,
            idempotency_key: record.idempotency_key,
            amount: Some(api::common::Money {
                minor_units: record.amount_minor_units,
                currency: record.currency,
            }),
            outcome: record.outcome,
            provider_reference: record.provider_reference,
            message: record.message,
            at: timestamp(record.at),
        })
        .collect())
}
