//! Profiles as JSONB documents in PostgreSQL: the table `profiles` (see
//! `migrations/0001_user.sql`), one row per account.
//!
//! One small function per query, checked at run time (`query_as` with `FromRow` rows), so no
//! database is needed to build the crate; the conformance suite runs every query against a
//! real server. The username's uniqueness is the partial unique index
//! `profiles_username_key`, turned into [`StoreError::UsernameTaken`] by its name.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::{ProfileRecord, ProfileStore, StoreError, patch};
use crate::domain::{NewProfile, Page, Profile, ProfileChanges, Search, UserId};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The unique index that keeps usernames unique (case-insensitively, when set).
const USERNAME_KEY: &str = "profiles_username_key";

const COLUMNS: &str = "user_id, document, created_at, updated_at";

#[derive(FromRow)]
struct Row {
    user_id: Uuid,
    document: Json<Profile>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for ProfileRecord {
    fn from(row: Row) -> Self {
        Self {
            user_id: UserId::from_uuid(row.user_id),
            profile: row.document.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn records(rows: Vec<Row>) -> Vec<ProfileRecord> {
    rows.into_iter().map(Into::into).collect()
}

/// The profiles in the service's PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgProfiles {
    pool: PgPool,
}

impl PgProfiles {
    /// Profiles in the database `pool` connects to, which [`MIGRATOR`] has migrated.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl ProfileStore for PgProfiles {
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    async fn get(&self, user_id: UserId) -> Result<Option<ProfileRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM profiles WHERE user_id = $1"
        ))
        .bind(user_id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip_all, fields(user_id = %new.user_id))]
    async fn create_if_absent(&self, new: &NewProfile) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO profiles (user_id, document) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(new.user_id.as_uuid())
        .bind(Json(&new.profile))
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The fields present are merged into the document in one statement, so concurrent
    /// updates of different fields both stay.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    async fn update(
        &self,
        user_id: UserId,
        changes: &ProfileChanges,
    ) -> Result<Option<ProfileRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE profiles SET document = document || $2, updated_at = now() \
             WHERE user_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(user_id.as_uuid())
        .bind(Json(serde_json::Value::Object(patch(changes))))
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.constraint() == Some(USERNAME_KEY) => {
                StoreError::UsernameTaken
            }
            _ => StoreError::Postgres(error),
        })?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, page: Page, limit: usize) -> Result<Vec<ProfileRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM profiles \
             WHERE $1::uuid IS NULL OR user_id > $1 ORDER BY user_id LIMIT $2"
        ))
        .bind(page.after.map(UserId::as_uuid))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(records(rows))
    }

    /// `search_text` holds the four fields lower-cased, one per line; the query is lower
    /// case and has no line break, so it matches within one field. The trigram index serves
    /// the `LIKE`.
    #[tracing::instrument(skip_all)]
    async fn search(&self, search: &Search) -> Result<Vec<ProfileRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM profiles WHERE search_text LIKE lower($1) ESCAPE '\\' \
             ORDER BY user_id LIMIT $2"
        ))
        .bind(search.text.like_pattern())
        .bind(search.size.get() as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(records(rows))
    }

    #[tracing::instrument(skip_all, fields(count = user_ids.len()))]
    async fn batch_get(&self, user_ids: &[UserId]) -> Result<Vec<ProfileRecord>, StoreError> {
        let ids: Vec<Uuid> = user_ids.iter().map(|id| id.as_uuid()).collect();
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM profiles WHERE user_id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(records(rows))
    }
}
