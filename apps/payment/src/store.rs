//! PostgreSQL access for payments: one small function per query, checked at run time
//! (`query_as` with `FromRow` rows), so no database is needed to build the crate and the
//! integration tests run every query against a real server.
//!
//! Written once by `cargo xtask new-service payment`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::{NewPayment, Page, PaymentChanges, PaymentId};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A stored payment.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The payments of this service, in its own database.
#[derive(Clone, Debug)]
pub struct PaymentStore {
    pool: PgPool,
}

impl PaymentStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn insert(
        &self,
        id: PaymentId,
        new: &NewPayment,
    ) -> Result<PaymentRecord, StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO payments (id, name, description) VALUES ($1, $2, $3) \
             RETURNING id, name, description, created_at, updated_at",
        )
        .bind(id.0)
        .bind(&new.name)
        .bind(&new.description)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn get(&self, id: PaymentId) -> Result<Option<PaymentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, description, created_at, updated_at FROM payments WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Up to `limit` payments in id (creation) order, after `page.after`.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, page: Page, limit: usize) -> Result<Vec<PaymentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, description, created_at, updated_at FROM payments \
             WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after.map(|id| id.0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// `None` when there is no such payment.
    #[tracing::instrument(skip_all, fields(id = %changes.id))]
    pub async fn update(
        &self,
        changes: &PaymentChanges,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE payments SET name = COALESCE($2, name), \
             description = COALESCE($3, description), updated_at = now() WHERE id = $1 \
             RETURNING id, name, description, created_at, updated_at",
        )
        .bind(changes.id.0)
        .bind(&changes.name)
        .bind(&changes.description)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether there was such a payment.
    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn delete(&self, id: PaymentId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM payments WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
