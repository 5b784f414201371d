//! PostgreSQL access for accounts: one small function per query, and the outbox record of a
//! registration.
//!
//! Reads take the pool; writes that must commit together with their event take a connection
//! the caller opened a transaction on. Queries are checked at run time (`query_as` with
//! `FromRow` rows), so no database is needed to build the crate and the integration tests run
//! every query against a real server. Constraint violations become domain outcomes by
//! constraint name (spelled out in `migrations/0001_auth.sql`).

use chrono::{DateTime, Utc};
use events::TraceHeaders;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Email, LinkPurpose, Role, UserId};
use crate::error::Error;

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The unique constraint on `accounts.email`.
const EMAIL_TAKEN: &str = "accounts_email_key";
/// The check that an account keeps at least one role.
const ROLES_NOT_EMPTY: &str = "accounts_roles_not_empty";

const ACCOUNT_COLUMNS: &str = "id, email, roles, created_at, updated_at, email_verified_at";

/// A stored account, without its password hash.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct AccountRecord {
    pub id: Uuid,
    pub email: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the owner followed a verification link sent to `email`; `None` until then.
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// What a login needs of an account. `Debug` leaves the hash out.
#[derive(Clone, FromRow)]
pub struct StoredCredentials {
    pub id: Uuid,
    pub password_hash: String,
    pub roles: Vec<String>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// Inserts an account; `None` when the address is taken (nothing is written then, and the
/// transaction is aborted: the caller rolls it back).
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn insert_account(
    conn: &mut PgConnection,
    id: UserId,
    email: &Email,
    password_hash: &str,
    roles: &[Role],
) -> Result<Option<AccountRecord>, Error> {
    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let inserted = sqlx::query_as(&format!(
        "INSERT INTO accounts (id, email, password_hash, roles) VALUES ($1, $2, $3, $4) \
         RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(email.as_str())
    .bind(password_hash)
    .bind(&roles)
    .fetch_one(&mut *conn)
    .await;
    match inserted {
        Ok(account) => Ok(Some(account)),
        Err(error) if constraint(&error) == Some(EMAIL_TAKEN) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Appends `user.registered` for `account` in the transaction that inserted it.
#[tracing::instrument(skip_all, fields(user_id = %account.id))]
pub async fn record_registered(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    account: &AccountRecord,
) -> Result<(), Error> {
    let event = api::auth::UserRegistered {
        user_id: account.id.to_string(),
        email: account.email.clone(),
        roles: account.roles.clone(),
        registered_at: api::timestamp(account.created_at),
    };
    events::Outbox::append(conn, trace, &account.id.to_string(), &event).await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn find_credentials(
    pool: &PgPool,
    email: &Email,
) -> Result<Option<StoredCredentials>, Error> {
    Ok(
        sqlx::query_as("SELECT id, password_hash, roles FROM accounts WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(pool)
            .await?,
    )
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn get_account(pool: &PgPool, id: UserId) -> Result<Option<AccountRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await?)
}

/// "empadmin": the advisory lock that serialises `bootstrap-admin` runs.
const ADMIN_BOOTSTRAP_LOCK: i64 = 0x656d_7061_646d_696e;

/// Waits for, and holds until the transaction ends, the lock of the first admin's creation.
pub async fn lock_admin_bootstrap(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADMIN_BOOTSTRAP_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether any account has the admin role.
pub async fn admin_exists(conn: &mut PgConnection) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE $1 = ANY (roles))")
            .bind(Role::Admin.as_str())
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Like [`find_credentials`], locking the account's row until the transaction ends.
#[tracing::instrument(skip_all)]
pub async fn find_credentials_for_update(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<StoredCredentials>, Error> {
    Ok(
        sqlx::query_as("SELECT id, password_hash, roles FROM accounts WHERE email = $1 FOR UPDATE")
            .bind(email.as_str())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Adds `role` in the caller's transaction; the account must exist.
#[tracing::instrument(skip_all, fields(user_id = %id, role = %role))]
pub async fn add_role(
    conn: &mut PgConnection,
    id: UserId,
    role: Role,
) -> Result<AccountRecord, Error> {
    sqlx::query_as(&format!(
        "UPDATE accounts \
         SET roles = ARRAY(SELECT DISTINCT r FROM unnest(roles || $2::text) AS r ORDER BY r), \
             updated_at = now() \
         WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(role.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::AccountNotFound(id))
}

/// Adds `role`; an account that has it already is returned unchanged.
#[tracing::instrument(skip_all, fields(user_id = %id, role = %role))]
pub async fn grant_role(pool: &PgPool, id: UserId, role: Role) -> Result<AccountRecord, Error> {
    let granted: Option<AccountRecord> = sqlx::query_as(&format!(
        "UPDATE accounts \
         SET roles = ARRAY(SELECT DISTINCT r FROM unnest(roles || $2::text) AS r ORDER BY r), \
             updated_at = now() \
         WHERE id = $1 AND NOT ($2 = ANY (roles)) RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(role.as_str())
    .fetch_optional(pool)
    .await?;
    unchanged_or(pool, id, granted).await
}

/// Removes `role`; an account without it is returned unchanged. Removing the last role is
/// refused by the database (`accounts_roles_not_empty`).
#[tracing::instrument(skip_all, fields(user_id = %id, role = %role))]
pub async fn revoke_role(pool: &PgPool, id: UserId, role: Role) -> Result<AccountRecord, Error> {
    let revoked = sqlx::query_as(&format!(
        "UPDATE accounts SET roles = array_remove(roles, $2::text), updated_at = now() \
         WHERE id = $1 AND $2 = ANY (roles) RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(role.as_str())
    .fetch_optional(pool)
    .await;
    let revoked = match revoked {
        Ok(revoked) => revoked,
        Err(error) if constraint(&error) == Some(ROLES_NOT_EMPTY) => {
            return Err(Error::LastRole(id));
        }
        Err(error) => return Err(error.into()),
    };
    unchanged_or(pool, id, revoked).await
}

/// The changed account, or the account as it is when nothing needed changing.
async fn unchanged_or(
    pool: &PgPool,
    id: UserId,
    changed: Option<AccountRecord>,
) -> Result<AccountRecord, Error> {
    match changed {
        Some(account) => Ok(account),
        None => get_account(pool, id)
            .await?
            .ok_or(Error::AccountNotFound(id)),
    }
}

/// Like [`get_account`], locking the account's row until the transaction ends.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn get_account_for_update(
    conn: &mut PgConnection,
    id: UserId,
) -> Result<Option<AccountRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?)
}

/// The account with `email`, its row locked until the transaction ends.
#[tracing::instrument(skip_all)]
pub async fn find_account_by_email_for_update(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<AccountRecord>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1 FOR UPDATE"
    ))
    .bind(email.as_str())
    .fetch_optional(&mut *conn)
    .await?)
}

/// A link token that works: issued for its purpose, neither used nor superseded, not expired.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct LinkRecord {
    pub account_id: Uuid,
    /// The address the link was sent to.
    pub email: String,
}

#[tracing::instrument(skip_all, fields(user_id = %account, purpose = purpose.as_str()))]
pub async fn insert_link_token(
    conn: &mut PgConnection,
    token_hash: &str,
    purpose: LinkPurpose,
    account: UserId,
    email: &str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO email_link_tokens \
         (token_hash, purpose, account_id, email, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(account.as_uuid())
    .bind(email)
    .bind(created_at)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The links of `purpose` the account was issued after `since_minute` and after `since_day`.
pub async fn links_issued_since(
    conn: &mut PgConnection,
    account: UserId,
    purpose: LinkPurpose,
    since_minute: DateTime<Utc>,
    since_day: DateTime<Utc>,
) -> Result<(i64, i64), Error> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE created_at > $3), count(*) FILTER (WHERE created_at > $4) \
         FROM email_link_tokens WHERE account_id = $1 AND purpose = $2",
    )
    .bind(account.as_uuid())
    .bind(purpose.as_str())
    .bind(since_minute)
    .bind(since_day)
    .fetch_one(&mut *conn)
    .await?)
}

/// Stops every unused link of `purpose` of the account from working.
pub async fn revoke_link_tokens(
    conn: &mut PgConnection,
    account: UserId,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE email_link_tokens SET revoked_at = $3 \
         WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(account.as_uuid())
    .bind(purpose.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes the account's link records that expired before `before`.
pub async fn delete_stale_link_tokens(
    conn: &mut PgConnection,
    account: UserId,
    before: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query("DELETE FROM email_link_tokens WHERE account_id = $1 AND expires_at < $2")
        .bind(account.as_uuid())
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The link whose token hashes to `token_hash`, if it works at `now` for `purpose`; reads
/// without using it up.
#[tracing::instrument(skip_all, fields(purpose = purpose.as_str()))]
pub async fn find_link_token(
    pool: &PgPool,
    token_hash: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<Option<LinkRecord>, Error> {
    Ok(sqlx::query_as(
        "SELECT account_id, email FROM email_link_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND revoked_at IS NULL \
           AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?)
}

/// Uses up the link whose token hashes to `token_hash`, if it works at `now` for `purpose`:
/// of concurrent uses exactly one gets the record.
#[tracing::instrument(skip_all, fields(purpose = purpose.as_str()))]
pub async fn consume_link_token(
    conn: &mut PgConnection,
    token_hash: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<Option<LinkRecord>, Error> {
    Ok(sqlx::query_as(
        "UPDATE email_link_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND revoked_at IS NULL \
           AND expires_at > $3 \
         RETURNING account_id, email",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Marks the account's email verified, if it is still `email`; whether it is. An address
/// verified before keeps its first verification time.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn mark_email_verified(
    conn: &mut PgConnection,
    id: UserId,
    email: &str,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let updated = sqlx::query(
        "UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, $3), \
         updated_at = now() WHERE id = $1 AND email = $2",
    )
    .bind(id.as_uuid())
    .bind(email)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Replaces the account's password hash, if its email is still `email`; whether it is.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn set_password_hash(
    conn: &mut PgConnection,
    id: UserId,
    email: &str,
    password_hash: &str,
) -> Result<bool, Error> {
    let updated = sqlx::query(
        "UPDATE accounts SET password_hash = $3, updated_at = now() WHERE id = $1 AND email = $2",
    )
    .bind(id.as_uuid())
    .bind(email)
    .bind(password_hash)
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

fn constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|db| db.constraint())
}
