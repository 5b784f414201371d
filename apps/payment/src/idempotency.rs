//! The callers' idempotency keys: one operation per key, one provider call at a time per key,
//! and none at all once the key has a result.
//!
//! A key's life:
//!
//! 1. **Claimed.** `INSERT ... ON CONFLICT DO NOTHING` of the row (`in_progress`, the
//!    operation, the request's fingerprint and the payment it is for), committed on its own
//!    before anything else happens. So an attempt is on record before the provider is called:
//!    a crash after the provider's answer and before this service's commit leaves the key
//!    `in_progress`, and the next request with it finishes the job.
//! 2. **Owned.** The request that finishes it holds the row `FOR UPDATE` in the transaction
//!    that calls the provider and records the result. Others with the same key find it locked
//!    (`SKIP LOCKED`), let go of their connection and look again shortly, until the owner has
//!    committed or their deadline has passed (`unavailable`, retryable). Waiting holds no
//!    connection, so any number of duplicates cannot exhaust the pool.
//! 3. **Completed.** The owner's transaction marks the row `completed` with the answer, in the
//!    same commit as the payment's change, its ledger entry and its event. From then on the key
//!    is answered from the row, without the provider.
//!
//! A request whose fingerprint differs from the row's is refused (`conflict`), whatever the
//! state. A refusal before the provider was called (a payment that does not exist, a
//! transition the state machine forbids) forgets the key: nothing happened, and the key may be
//! used again. A processing error of the provider keeps the row `in_progress` with no answer:
//! nothing is known to have happened, and the same request may be tried again with the key.

use std::time::{Duration, Instant};

use api::payment::Payment;
use rpc::Context;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::Operation;
use crate::error::Error;

/// How long a request without a deadline waits for another with its key.
const WAIT_WITHOUT_DEADLINE: Duration = Duration::from_secs(10);
/// How often a waiting request looks at a key another request holds.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A request's key and what it asks for.
#[derive(Clone, Debug)]
pub struct KeyedRequest<'a> {
    pub key: &'a str,
    pub operation: Operation,
    pub fingerprint: &'a str,
    /// The payment the operation is for; an authorisation's new payment id (used only if this
    /// request is the first with the key).
    pub payment_id: Uuid,
}

/// What [`acquire`] found.
pub enum Acquired {
    /// The key has a result: answer it again.
    Answered(Box<Payment>),
    /// This request holds the key; it goes on with `payment_id` (for an authorisation, the id
    /// the first attempt with the key chose) in `tx`, which holds the key's row locked.
    Owned {
        tx: Transaction<'static, Postgres>,
        payment_id: Uuid,
    },
}

#[derive(Debug, FromRow)]
struct KeyRow {
    operation: String,
    request_fingerprint: String,
    payment_id: Uuid,
    state: String,
    response: Option<serde_json::Value>,
}

impl KeyRow {
    /// The stored answer, or `None` when the key has none yet; a different request is refused.
    fn answer(self, request: &KeyedRequest<'_>) -> Result<Option<Box<Payment>>, Error> {
        if self.operation != request.operation.as_str()
            || self.request_fingerprint != request.fingerprint
        {
            return Err(Error::KeyReused(request.key.to_owned()));
        }
        match (self.state.as_str(), self.response) {
            ("completed", Some(response)) => Ok(Some(Box::new(serde_json::from_value(response)?))),
            _ => Ok(None),
        }
    }
}

const KEY_COLUMNS: &str = "operation, request_fingerprint, payment_id, state, response";

/// Claims `request.key`, waits for any other request holding it, and answers its result or
/// hands the key to this request (see the module's documentation).
#[tracing::instrument(skip_all, fields(operation = request.operation.as_str()))]
pub async fn acquire(
    pool: &PgPool,
    ctx: &Context,
    request: &KeyedRequest<'_>,
) -> Result<Acquired, Error> {
    let gives_up_at = ctx
        .deadline()
        .unwrap_or_else(|| Instant::now() + WAIT_WITHOUT_DEADLINE);
    loop {
        sqlx::query(
            "INSERT INTO idempotency_keys \
                 (idempotency_key, operation, request_fingerprint, payment_id, state) \
             VALUES ($1, $2, $3, $4, 'in_progress') ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(request.key)
        .bind(request.operation.as_str())
        .bind(request.fingerprint)
        .bind(request.payment_id)
        .execute(pool)
        .await?;

        // A completed key, or a different request, is answered without waiting for a lock.
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE idempotency_key = $1"
        ))
        .bind(request.key)
        .fetch_optional(pool)
        .await?;
        if let Some(row) = row
            && let Some(answer) = row.answer(request)?
        {
            return Ok(Acquired::Answered(answer));
        }

        let mut tx = begin(pool, ctx).await?;
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE idempotency_key = $1 \
             FOR UPDATE SKIP LOCKED"
        ))
        .bind(request.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let payment_id = row.payment_id;
            return Ok(match row.answer(request)? {
                Some(answer) => Acquired::Answered(answer),
                None => Acquired::Owned { tx, payment_id },
            });
        }
        // Another request holds the key (or it was forgotten just now: the next round claims
        // it again). Let go of the connection while waiting.
        tx.rollback().await?;
        if Instant::now() + POLL_INTERVAL >= gives_up_at {
            return Err(Error::KeyBusy(request.key.to_owned()));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Gives the key its result: from now on it is answered with `response`.
#[tracing::instrument(skip_all)]
pub async fn complete(conn: &mut PgConnection, key: &str, response: &Payment) -> Result<(), Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'completed', response = $2, completed_at = now() \
         WHERE idempotency_key = $1",
    )
    .bind(key)
    .bind(serde_json::to_value(response)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a key whose request was refused before the provider was called.
#[tracing::instrument(skip_all)]
pub async fn forget(conn: &mut PgConnection, key: &str) -> Result<(), Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE idempotency_key = $1 AND state = 'in_progress'",
    )
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// A transaction whose statements are cancelled once the request's deadline passes.
pub async fn begin(pool: &PgPool, ctx: &Context) -> Result<Transaction<'static, Postgres>, Error> {
    Ok(match ctx.remaining() {
        Some(remaining) => ::db::postgres::begin_within(pool, remaining).await?,
        None => pool.begin().await?,
    })
}
