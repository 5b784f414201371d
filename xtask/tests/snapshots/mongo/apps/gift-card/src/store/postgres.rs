//! The gift cards as JSONB documents in PostgreSQL: the table `gift_cards` (see
//! `migrations/0001_gift_card.sql`), one row per gift card, its fields in the `document`
//! column and its id and timestamps in columns of their own.
//!
//! One small function per query, checked at run time (`query_as` with `FromRow` rows), so no
//! database is needed to build the crate; the store suite runs every query against a real
//! server.
//!
//! Written once by `cargo xtask new-service gift-card`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::{GiftCardDocument, GiftCardDocuments, GiftCardRecord, StoreError, patch};
use crate::domain::{GiftCardChanges, GiftCardId, NewGiftCard, Page};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

const COLUMNS: &str = "id, document, created_at, updated_at";

#[derive(FromRow)]
struct Row {
    id: Uuid,
    document: Json<GiftCardDocument>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for GiftCardRecord {
    fn from(row: Row) -> Self {
        Self::of(row.id, row.document.0, row.created_at, row.updated_at)
    }
}

/// The gift cards in the service's PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgGiftCards {
    pool: PgPool,
}

impl PgGiftCards {
    /// The gift cards in the database `pool` connects to, which [`MIGRATOR`] has
    /// migrated.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl GiftCardDocuments for PgGiftCards {
    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn insert(
        &self,
        id: GiftCardId,
        new: &NewGiftCard,
    ) -> Result<GiftCardRecord, StoreError> {
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO gift_cards (id, document) VALUES ($1, $2) RETURNING {COLUMNS}"
        ))
        .bind(id.0)
        .bind(Json(GiftCardDocument::from(new)))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn get(&self, id: GiftCardId) -> Result<Option<GiftCardRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM gift_cards WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, page: Page, limit: usize) -> Result<Vec<GiftCardRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM gift_cards \
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
    async fn update(
        &self,
        changes: &GiftCardChanges,
    ) -> Result<Option<GiftCardRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE gift_cards SET document = document || $2, updated_at = now() \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(changes.id.0)
        .bind(Json(patch(changes)))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn delete(&self, id: GiftCardId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM gift_cards WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
