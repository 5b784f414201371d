//! Document storage for users: each one is a JSON document (`UserDocument`)
//! in a PostgreSQL JSONB column, keyed by id.
//!
//! The service was generated with `--store mongo`. The platform's document store is PostgreSQL
//! JSONB until a MongoDB deployment exists: it needs no extra server in development or tests,
//! and the documents keep the shape a MongoDB collection would hold. Moving to MongoDB means
//! replacing this module's queries with `::store::mongo` (feature `mongo` of pkg/store) behind
//! the same `UserStore` methods; handlers and domain do not change.
//!
//! Written once by `cargo xtask new-service user`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::{NewUser, Page, UserChanges, UserId};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What one document holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDocument {
    pub name: String,
    pub description: String,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    document: Json<UserDocument>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A stored user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Row> for UserRecord {
    fn from(row: Row) -> Self {
        let Json(document) = row.document;
        Self {
            id: row.id,
            name: document.name,
            description: document.description,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "id, document, created_at, updated_at";

/// The users of this service, in its own database.
#[derive(Clone, Debug)]
pub struct UserStore {
    pool: PgPool,
}

impl UserStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn insert(&self, id: UserId, new: &NewUser) -> Result<UserRecord, StoreError> {
        let document = UserDocument {
            name: new.name.clone(),
            description: new.description.clone(),
        };
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO users_documents (id, document) VALUES ($1, $2) RETURNING {COLUMNS}"
        ))
        .bind(id.0)
        .bind(Json(document))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn get(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM users_documents WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    /// Up to `limit` users in id (creation) order, after `page.after`.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, page: Page, limit: usize) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM users_documents \
             WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(page.after.map(|id| id.0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// `None` when there is no such user. The fields present are merged into the
    /// document in one statement, so concurrent updates of different fields both stay.
    #[tracing::instrument(skip_all, fields(id = %changes.id))]
    pub async fn update(&self, changes: &UserChanges) -> Result<Option<UserRecord>, StoreError> {
        let mut patch = serde_json::Map::new();
        if let Some(name) = &changes.name {
            patch.insert("name".into(), name.clone().into());
        }
        if let Some(description) = &changes.description {
            patch.insert("description".into(), description.clone().into());
        }
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE users_documents SET document = document || $2, updated_at = now() \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(changes.id.0)
        .bind(Json(serde_json::Value::Object(patch)))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    /// Whether there was such a user.
    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn delete(&self, id: UserId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM users_documents WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
