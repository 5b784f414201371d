//! PostgreSQL access: one small function per query, checked at run time (`query_as` with
//! `FromRow` rows), so no database is needed to build the crate and the integration tests run
//! every query against a real server.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Channel, Kind, NotificationId, Page, Preference, ReadFilter};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Where a user's emails go.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Recipient {
    pub user_id: Uuid,
    pub email: String,
    pub language: String,
}

/// Records the email of `user_id` unless it is known already (a redelivered registration
/// changes nothing).
pub async fn remember_recipient(
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO recipients (user_id, email) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(email)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn recipient(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<Recipient>, StoreError> {
    Ok(
        sqlx::query_as("SELECT user_id, email, language FROM recipients WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Records whose order `order_id` is, once.
pub async fn remember_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    user_id: Uuid,
    currency: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO orders (order_id, user_id, currency) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(user_id)
    .bind(currency)
    .execute(conn)
    .await?;
    Ok(())
}

/// The user whose order `order_id` is, if an order event told us.
pub async fn order_owner(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT user_id FROM orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The stored choices of `user_id`, as (kind, channel, enabled).
pub async fn stored_preferences(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<(String, String, bool)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kind, channel, enabled FROM notification_preferences WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

pub async fn set_preferences(
    conn: &mut PgConnection,
    user_id: Uuid,
    preferences: &[Preference],
) -> Result<(), StoreError> {
    for preference in preferences {
        sqlx::query(
            "INSERT INTO notification_preferences (user_id, kind, channel, enabled) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, kind, channel) \
             DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()",
        )
        .bind(user_id)
        .bind(preference.kind.as_str())
        .bind(preference.channel.as_str())
        .bind(preference.enabled)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A notification about to be written by a consumer.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub id: NotificationId,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub kind: Kind,
    pub channel: Channel,
    pub recipient: Option<String>,
    pub language: String,
    pub subject_id: String,
    pub title: String,
    pub body: String,
    pub payload: Option<serde_json::Value>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Writes `new` unless the event already made this kind on this channel; whether it did.
pub async fn insert_notification(
    conn: &mut PgConnection,
    new: &NewNotification,
) -> Result<bool, StoreError> {
    let status = match new.channel {
        Channel::Email => "pending",
        Channel::InApp => "delivered",
    };
    let inserted = sqlx::query(
        "INSERT INTO notifications (id, event_id, user_id, kind, channel, status, recipient, \
         language, subject_id, title, body, payload, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT ON CONSTRAINT notifications_once_per_event DO NOTHING",
    )
    .bind(new.id.0)
    .bind(new.event_id)
    .bind(new.user_id)
    .bind(new.kind.as_str())
    .bind(new.channel.as_str())
    .bind(status)
    .bind(&new.recipient)
    .bind(&new.language)
    .bind(&new.subject_id)
    .bind(&new.title)
    .bind(&new.body)
    .bind(&new.payload)
    .bind(new.expires_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// An email a sender holds under a lease.
#[derive(Clone, Debug, FromRow)]
pub struct ClaimedEmail {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub recipient: Option<String>,
    pub language: String,
    pub payload: Option<serde_json::Value>,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: String,
    /// Including the attempt this claim is for.
    pub attempts: i32,
    /// This claim's lease: only its holder records a failed attempt.
    pub lease_until: Option<DateTime<Utc>>,
}

/// Takes up to `limit` pending emails that are due and that no live lease holds, for `lease`;
/// counts the attempt. `SKIP LOCKED` lets several senders claim at once without waiting on
/// each other, and the lease lets another sender take a row whose sender died mid-send.
pub async fn claim_due_emails(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedEmail>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE notifications SET attempts = attempts + 1, \
             lease_until = now() + make_interval(secs => $2), updated_at = now() \
         WHERE id IN (SELECT id FROM notifications \
             WHERE channel = 'email' AND status = 'pending' AND payload IS NOT NULL \
               AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, user_id, kind, recipient, language, payload, expires_at, status, attempts, \
                   lease_until",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?)
}

/// Takes the one pending email `id` (a link email its consumer sends), like
/// [`claim_due_emails`] but whenever it is due or not; `None` when it is not pending or a live
/// lease holds it.
pub async fn claim_email(
    pool: &PgPool,
    id: Uuid,
    lease: Duration,
) -> Result<Option<ClaimedEmail>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE notifications SET attempts = attempts + 1, \
             lease_until = now() + make_interval(secs => $2), updated_at = now() \
         WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < now()) \
         RETURNING id, user_id, kind, recipient, language, payload, expires_at, status, attempts, \
                   lease_until",
    )
    .bind(id)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await?)
}

/// The email an event made of `kind`, if any: (id, status).
pub async fn email_of_event(
    pool: &PgPool,
    event_id: Uuid,
    kind: Kind,
) -> Result<Option<(Uuid, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, status FROM notifications \
         WHERE event_id = $1 AND kind = $2 AND channel = 'email'",
    )
    .bind(event_id)
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await?)
}

/// The relay accepted the email: it is sent.
pub async fn mark_sent(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notifications SET status = 'sent', sent_at = now(), lease_until = NULL, \
         last_error = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The attempt under `lease` failed: try again after `retry_in`, keeping why. Nothing
/// changes if the lease is no longer this claim's (it ran out and another sender took the
/// row): the new holder records its own outcome.
pub async fn retry_later(
    pool: &PgPool,
    id: Uuid,
    lease: Option<DateTime<Utc>>,
    retry_in: Duration,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notifications SET lease_until = NULL, last_error = $3, updated_at = now(), \
         next_attempt_at = now() + make_interval(secs => $2) \
         WHERE id = $1 AND status = 'pending' AND lease_until IS NOT DISTINCT FROM $4",
    )
    .bind(id)
    .bind(retry_in.as_secs_f64())
    .bind(error)
    .bind(lease)
    .execute(pool)
    .await?;
    Ok(())
}

/// The pending email will not be sent: `status` is "failed" (attempts exhausted, or it cannot
/// be rendered) or "expired" (its link stopped working). A row already sent stays sent.
pub async fn give_up(pool: &PgPool, id: Uuid, status: &str, error: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notifications SET status = $2, lease_until = NULL, last_error = $3, \
         updated_at = now() WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many emails wait to be sent, and how old the oldest is.
pub async fn email_backlog(pool: &PgPool) -> Result<(i64, f64), StoreError> {
    let (count, age): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8 \
         FROM notifications WHERE channel = 'email' AND status = 'pending'",
    )
    .fetch_one(pool)
    .await?;
    Ok((count, age.unwrap_or(0.0).max(0.0)))
}

/// An in-app notification as its user sees it.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct InAppRecord {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub subject_id: String,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const IN_APP_COLUMNS: &str = "id, kind, title, body, subject_id, read_at, created_at";

/// Up to `limit` of `user_id`'s in-app notifications, newest first, older than `page.before`.
pub async fn list_in_app(
    pool: &PgPool,
    user_id: Uuid,
    page: Page,
    limit: usize,
) -> Result<Vec<InAppRecord>, StoreError> {
    let filter = match page.filter {
        ReadFilter::All => "",
        ReadFilter::Unread => " AND read_at IS NULL",
        ReadFilter::Read => " AND read_at IS NOT NULL",
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {IN_APP_COLUMNS} FROM notifications \
         WHERE user_id = $1 AND channel = 'in_app' AND ($2::uuid IS NULL OR id < $2){filter} \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(user_id)
    .bind(page.before.map(|id| id.0))
    .bind(limit as i64)
    .fetch_all(pool)
    .await?)
}

pub async fn unread_count(pool: &PgPool, user_id: Uuid) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM notifications \
         WHERE user_id = $1 AND channel = 'in_app' AND read_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?)
}

/// Marks `id` read if it is one of `user_id`'s in-app notifications (keeping the first
/// reading time); `None` when it is not.
pub async fn mark_read(
    pool: &PgPool,
    user_id: Uuid,
    id: NotificationId,
) -> Result<Option<InAppRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE notifications SET read_at = COALESCE(read_at, now()), updated_at = now() \
         WHERE id = $1 AND user_id = $2 AND channel = 'in_app' RETURNING {IN_APP_COLUMNS}"
    ))
    .bind(id.0)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Marks every unread in-app notification of `user_id` read; how many.
pub async fn mark_all_read(pool: &PgPool, user_id: Uuid) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = now(), updated_at = now() \
         WHERE user_id = $1 AND channel = 'in_app' AND read_at IS NULL",
    )
    .bind(user_id)
    .execute(pool)
    .await?
    .rows_affected())
}
