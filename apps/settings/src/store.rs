//! PostgreSQL access for settingses: one small function per query, checked at run time
//! (`query_as` with `FromRow` rows), so no database is needed to build the crate and the
//! integration tests run every query against a real server.
//!
//! Written once by `cargo xtask new-service settings`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::{NewSettings, Page, SettingsChanges, SettingsId};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A stored settings.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct SettingsRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The settingses of this service, in its own database.
#[derive(Clone, Debug)]
pub struct SettingsStore {
    pool: PgPool,
}

impl SettingsStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn insert(
        &self,
        id: SettingsId,
        new: &NewSettings,
    ) -> Result<SettingsRecord, StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO settingses (id, name, description) VALUES ($1, $2, $3) \
             RETURNING id, name, description, created_at, updated_at",
        )
        .bind(id.0)
        .bind(&new.name)
        .bind(&new.description)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn get(&self, id: SettingsId) -> Result<Option<SettingsRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, description, created_at, updated_at FROM settingses WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Up to `limit` settingses in id (creation) order, after `page.after`.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, page: Page, limit: usize) -> Result<Vec<SettingsRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, description, created_at, updated_at FROM settingses \
             WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after.map(|id| id.0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// `None` when there is no such settings.
    #[tracing::instrument(skip_all, fields(id = %changes.id))]
    pub async fn update(
        &self,
        changes: &SettingsChanges,
    ) -> Result<Option<SettingsRecord>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE settingses SET name = COALESCE($2, name), \
             description = COALESCE($3, description), updated_at = now() WHERE id = $1 \
             RETURNING id, name, description, created_at, updated_at",
        )
        .bind(changes.id.0)
        .bind(&changes.name)
        .bind(&changes.description)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether there was such a settings.
    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn delete(&self, id: SettingsId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM settingses WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
