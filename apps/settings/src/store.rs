//! PostgreSQL access for settings: one small function per query, checked at run time
//! (`query_as` with `FromRow` rows), so no database is needed to build the crate and the
//! integration tests run every query against a real server.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool, Postgres, Transaction};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Someone changed the value since the caller read it.
    #[error("the current version is {current}, not {expected}")]
    Conflict { expected: i64, current: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(error: sqlx::Error) -> Self {
        ChangeError::Store(error.into())
    }
}

/// A key's current value in one scope.
#[derive(Clone, Debug, PartialEq, FromRow)]
pub struct SettingRecord {
    pub scope: String,
    pub key: String,
    pub value: Value,
    pub version: i64,
    pub published_version: i64,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// One change of a key in one scope.
#[derive(Clone, Debug, PartialEq, FromRow)]
pub struct HistoryRecord {
    pub version: i64,
    pub old_value: Option<Value>,
    pub new_value: Value,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
    pub reason: String,
}

/// What a change sets.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub value: &'a Value,
    /// The version the caller read (0: none yet).
    pub expected_version: i64,
    pub changed_by: &'a str,
    pub reason: &'a str,
}

const COLUMNS: &str = "scope, key, value, version, published_version, updated_by, updated_at";

/// The settings and their history, in this service's own database.
#[derive(Clone, Debug)]
pub struct SettingsStore {
    pool: PgPool,
}

impl SettingsStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Every value set in `scope`.
    #[tracing::instrument(skip_all, fields(scope))]
    pub async fn list(&self, scope: &str) -> Result<Vec<SettingRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM settings WHERE scope = $1 ORDER BY key"
        ))
        .bind(scope)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip_all, fields(scope, key))]
    pub async fn get(&self, scope: &str, key: &str) -> Result<Option<SettingRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM settings WHERE scope = $1 AND key = $2"
        ))
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Up to `limit` changes, newest first.
    #[tracing::instrument(skip_all, fields(scope, key))]
    pub async fn history(
        &self,
        scope: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT version, old_value, new_value, changed_by, changed_at, reason \
             FROM setting_history WHERE scope = $1 AND key = $2 ORDER BY version DESC LIMIT $3",
        )
        .bind(scope)
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The value `version` set, if there was such a version.
    #[tracing::instrument(skip_all, fields(scope, key, version))]
    pub async fn value_at(
        &self,
        scope: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<Value>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT new_value FROM setting_history WHERE scope = $1 AND key = $2 AND version = $3",
        )
        .bind(scope)
        .bind(key)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Sets the value if its version is still `change.expected_version`, with its history
    /// row, in one transaction. The row lock makes concurrent changes of one key take turns:
    /// exactly one of two changes from the same version wins.
    #[tracing::instrument(skip_all, fields(scope = change.scope, key = change.key))]
    pub async fn change(&self, change: &Change<'_>) -> Result<SettingRecord, ChangeError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<(Value, i64)> = sqlx::query_as(
            "SELECT value, version FROM settings WHERE scope = $1 AND key = $2 FOR UPDATE",
        )
        .bind(change.scope)
        .bind(change.key)
        .fetch_optional(&mut *tx)
        .await?;
        let (old_value, current_version) = match current {
            Some((value, version)) => (Some(value), version),
            None => (None, 0),
        };
        if current_version != change.expected_version {
            return Err(ChangeError::Conflict {
                expected: change.expected_version,
                current: current_version,
            });
        }
        let record = match write(&mut tx, change, old_value, current_version).await {
            Ok(record) => record,
            // Two first versions raced past the empty read: the loser's upsert finds the
            // winner's row and changes nothing.
            Err(sqlx::Error::RowNotFound) => {
                return Err(ChangeError::Conflict {
                    expected: change.expected_version,
                    current: current_version + 1,
                });
            }
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                return Err(ChangeError::Conflict {
                    expected: change.expected_version,
                    current: current_version + 1,
                });
            }
            Err(error) => return Err(error.into()),
        };
        tx.commit().await?;
        Ok(record)
    }

    /// Stores `value` as version 1 of `key` in `scope` unless a value is there already.
    /// Whether it did.
    #[tracing::instrument(skip_all, fields(scope, key))]
    pub async fn seed(
        &self,
        scope: &str,
        key: &str,
        value: &Value,
        by: &str,
    ) -> Result<bool, StoreError> {
        let change = Change {
            scope,
            key,
            value,
            expected_version: 0,
            changed_by: by,
            reason: "default",
        };
        match self.change(&change).await {
            Ok(_) => Ok(true),
            Err(ChangeError::Conflict { .. }) => Ok(false),
            Err(ChangeError::Store(error)) => Err(error),
        }
    }

    /// The (scope, key) pairs whose current version is not in the bucket yet.
    #[tracing::instrument(skip_all)]
    pub async fn unpublished(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT scope, key FROM settings WHERE published_version < version \
             ORDER BY updated_at LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Starts publishing one value: its row, locked until the returned transaction ends, so
    /// that publishers (a handler and the relay, or two replicas) take turns on a key and the
    /// bucket never goes back to an older version.
    pub async fn lock_for_publishing(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<(Transaction<'static, Postgres>, SettingRecord)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let record: Option<SettingRecord> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM settings WHERE scope = $1 AND key = $2 FOR UPDATE"
        ))
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(record.map(|record| (tx, record)))
    }

    /// Records that `version` is in the bucket, and ends the publishing transaction.
    pub async fn mark_published(
        mut tx: Transaction<'static, Postgres>,
        scope: &str,
        key: &str,
        version: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE settings SET published_version = $3 \
             WHERE scope = $1 AND key = $2 AND published_version < $3",
        )
        .bind(scope)
        .bind(key)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn write(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change<'_>,
    old_value: Option<Value>,
    current_version: i64,
) -> Result<SettingRecord, sqlx::Error> {
    let version = current_version + 1;
    let record: SettingRecord = sqlx::query_as(&format!(
        "INSERT INTO settings (scope, key, value, version, updated_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (scope, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, \
         updated_by = EXCLUDED.updated_by, updated_at = now() \
         WHERE settings.version = $4 - 1 RETURNING {COLUMNS}"
    ))
    .bind(change.scope)
    .bind(change.key)
    .bind(change.value)
    .bind(version)
    .bind(change.changed_by)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO setting_history (scope, key, version, old_value, new_value, changed_by, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(change.scope)
    .bind(change.key)
    .bind(version)
    .bind(old_value)
    .bind(change.value)
    .bind(change.changed_by)
    .bind(change.reason)
    .execute(&mut **tx)
    .await?;
    Ok(record)
}
