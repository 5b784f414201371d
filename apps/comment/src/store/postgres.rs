//! The comments as JSONB documents in PostgreSQL: the table `comments` (see
//! `migrations/0001_comment.sql`), one row per comment, its fields in the `document`
//! column and its id and timestamps in columns of their own.
//!
//! One small function per query, checked at run time (`query_as` with `FromRow` rows), so no
//! database is needed to build the crate; the store suite runs every query against a real
//! server.
//!
//! Written once by `cargo xtask new-service comment`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::{CommentDocument, CommentDocuments, CommentRecord, StoreError, patch};
use crate::domain::{CommentChanges, CommentId, NewComment, Page};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

const COLUMNS: &str = "id, document, created_at, updated_at";

#[derive(FromRow)]
struct Row {
    id: Uuid,
    document: Json<CommentDocument>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for CommentRecord {
    fn from(row: Row) -> Self {
        Self::of(row.id, row.document.0, row.created_at, row.updated_at)
    }
}

/// The comments in the service's PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgComments {
    pool: PgPool,
}

impl PgComments {
    /// The comments in the database `pool` connects to, which [`MIGRATOR`] has
    /// migrated.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl CommentDocuments for PgComments {
    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn insert(&self, id: CommentId, new: &NewComment) -> Result<CommentRecord, StoreError> {
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO comments (id, document) VALUES ($1, $2) RETURNING {COLUMNS}"
        ))
        .bind(id.0)
        .bind(Json(CommentDocument::from(new)))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn get(&self, id: CommentId) -> Result<Option<CommentRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM comments WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, page: Page, limit: usize) -> Result<Vec<CommentRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM comments \
             WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(page.after.map(|id| id.0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// `||` merges the patch into the stored document in the row's own update, so two
    /// concurrent updates of different fields both stay.
    #[tracing::instrument(skip_all, fields(id = %changes.id))]
    async fn update(&self, changes: &CommentChanges) -> Result<Option<CommentRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE comments SET document = document || $2, updated_at = now() \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(changes.id.0)
        .bind(Json(patch(changes)))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn delete(&self, id: CommentId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM comments WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
