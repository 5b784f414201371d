//! Redemptions: one order's use of one voucher, held, then committed, released or expired; a
//! committed one may be returned when its order is cancelled, giving its use back.
//!
//! The limits are the database's. Taking a use is one conditional update
//! (`used_count + reserved_count < usage_limit`) that PostgreSQL re-evaluates on the latest row
//! version after waiting for a concurrent writer, and a user's uses are one conditional upsert
//! (`uses < per_user_limit`) on their row of `voucher_user_uses`; both run in the transaction
//! that inserts the redemption, so either all three happen or none does. A CHECK on `vouchers`
//! refuses more uses than the limit whatever the code does.
//!
//! Locks are always taken in the same order: the redemption row, then the voucher row, then
//! the user's uses row. The expiry sweeper takes redemptions with `FOR UPDATE SKIP LOCKED` and
//! vouchers and uses rows in key order, so several replicas can sweep at once and nothing
//! waits in a cycle.

use chrono::{DateTime, Utc};
use events::TraceHeaders;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{self, NewRedemption, Reason, RedemptionStatus, Transition, Verdict};
use crate::error::Error;
use crate::outbox::{self, Change};
use crate::store;

/// A stored redemption, with its voucher's code.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct RedemptionRecord {
    pub order_id: Uuid,
    pub voucher_id: Uuid,
    pub code: String,
    pub user_id: Uuid,
    pub amount_minor_units: i64,
    pub currency: String,
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl RedemptionRecord {
    fn status(&self) -> Result<RedemptionStatus, Error> {
        RedemptionStatus::parse(&self.status).ok_or_else(|| {
            Error::Database(sqlx::Error::Decode(
                format!("redemption {} has an invalid status", self.order_id).into(),
            ))
        })
    }
}

impl From<RedemptionRecord> for api::voucher::Redemption {
    fn from(record: RedemptionRecord) -> Self {
        api::voucher::Redemption {
            order_id: record.order_id.to_string(),
            voucher_id: record.voucher_id.to_string(),
            code: record.code,
            user_id: record.user_id.to_string(),
            amount: Some(api::common::Money {
                minor_units: record.amount_minor_units,
                currency: record.currency,
            }),
            status: record.status,
            expires_at: api::timestamp(record.expires_at),
            created_at: api::timestamp(record.created_at),
        }
    }
}

/// The redemption after a request, and whether the request changed anything: a repeated
/// reserve, commit, release or return answers with the redemption as it was and changes
/// nothing.
#[derive(Debug)]
pub struct Outcome {
    pub redemption: RedemptionRecord,
    pub changed: bool,
}

const SELECT: &str = "SELECT r.order_id, r.voucher_id, v.code, r.user_id, r.amount_minor_units, \
     r.currency, r.status, r.expires_at, r.created_at \
     FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id";

/// Holds one use of the voucher `request` names for its order.
///
/// An order id that has a redemption already is a retry: the stored redemption is returned
/// unchanged (whatever its status) when the voucher, user and amount are the same, and
/// `conflict` when they differ. When the use cannot be taken the error says why and the
/// caller's transaction must roll back, which undoes the insert and whatever was taken.
#[tracing::instrument(skip_all, fields(order_id = %request.order_id))]
pub async fn reserve(conn: &mut PgConnection, request: &NewRedemption) -> Result<Outcome, Error> {
    let voucher = store::get_by_code(&mut *conn, &request.code)
        .await?
        .ok_or_else(|| Error::VoucherNotFound(request.code.as_str().to_owned()))?;

    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO redemptions \
             (order_id, voucher_id, user_id, amount_minor_units, currency, status, expires_at) \
         VALUES ($1, $2, $3, $4, $5, 'held', now() + make_interval(secs => $6)) \
         ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
    )
    .bind(request.order_id)
    .bind(voucher.id)
    .bind(request.user_id)
    .bind(request.amount.minor_units())
    .bind(request.amount.currency().code())
    .bind(f64::from(request.hold_seconds))
    .fetch_optional(&mut *conn)
    .await?;

    if inserted.is_none() {
        let existing = load(conn, request.order_id, Lock::None)
            .await?
            .ok_or(Error::RedemptionNotFound(request.order_id))?;
        let same = existing.voucher_id == voucher.id
            && existing.user_id == request.user_id
            && existing.amount_minor_units == request.amount.minor_units()
            && existing.currency == request.amount.currency().code();
        return if same {
            Ok(unchanged(existing))
        } else {
            Err(Error::RedemptionDiffers(request.order_id))
        };
    }

    if request.amount.currency().code() != voucher.currency {
        return Err(Error::WrongCurrency {
            code: voucher.code.clone(),
            expected: voucher.currency.clone(),
            found: request.amount.currency().code().to_owned(),
        });
    }

    let per_user_limit: Option<i32> = sqlx::query_scalar(
        "UPDATE vouchers SET reserved_count = reserved_count + 1, updated_at = now() \
         WHERE id = $1 AND status = 'active' AND valid_from <= now() \
           AND (valid_until IS NULL OR valid_until > now()) \
           AND (usage_limit = 0 OR used_count + reserved_count < usage_limit) \
         RETURNING per_user_limit",
    )
    .bind(voucher.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(per_user_limit) = per_user_limit else {
        return Err(why_not_usable(conn, request).await?);
    };

    let uses: Option<i32> = sqlx::query_scalar(
        "INSERT INTO voucher_user_uses AS u (voucher_id, user_id, uses) VALUES ($1, $2, 1) \
         ON CONFLICT (voucher_id, user_id) DO UPDATE SET uses = u.uses + 1 \
         WHERE $3 = 0 OR u.uses < $3 \
         RETURNING uses",
    )
    .bind(voucher.id)
    .bind(request.user_id)
    .bind(per_user_limit)
    .fetch_optional(&mut *conn)
    .await?;
    if uses.is_none() {
        let offer = voucher.offer()?;
        return Err(Error::NotUsable {
            code: voucher.code.clone(),
            reason: Reason::AlreadyUsed,
            message: domain::reason_message(Reason::AlreadyUsed, Some(&offer), None),
        });
    }

    let redemption = load(conn, request.order_id, Lock::None)
        .await?
        .ok_or(Error::RedemptionNotFound(request.order_id))?;
    Ok(Outcome {
        redemption,
        changed: true,
    })
}

/// Why the conditional update took no use, from the voucher as it is now.
async fn why_not_usable(conn: &mut PgConnection, request: &NewRedemption) -> Result<Error, Error> {
    let Some(voucher) = store::get_by_code(&mut *conn, &request.code).await? else {
        return Ok(Error::VoucherNotFound(request.code.as_str().to_owned()));
    };
    let offer = voucher.offer()?;
    let reason = match domain::evaluate(&offer, Utc::now(), None, None) {
        Verdict::DoesNot(reason) => reason,
        // The clocks of the service and the database differ by a little, or a use was given
        // back just now; either way, the use was not there when the update ran.
        Verdict::Applies(_) => Reason::Exhausted,
    };
    Ok(Error::NotUsable {
        code: voucher.code,
        reason,
        message: domain::reason_message(reason, Some(&offer), None),
    })
}

/// Makes a held redemption's use final. Committing twice changes nothing; a released or
/// expired redemption (or one past its expiry that the sweeper has not reached yet) cannot be
/// committed.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn commit(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    order_id: Uuid,
) -> Result<Outcome, Error> {
    let redemption = load(conn, order_id, Lock::ForUpdate)
        .await?
        .ok_or(Error::RedemptionNotFound(order_id))?;
    let status = redemption.status()?;
    match status.commit() {
        Transition::AlreadyDone => Ok(unchanged(redemption)),
        Transition::Refused => Err(Error::RedemptionEnded { order_id, status }),
        Transition::Apply(next) => {
            let past: bool = sqlx::query_scalar(
                "SELECT expires_at <= now() FROM redemptions WHERE order_id = $1",
            )
            .bind(order_id)
            .fetch_one(&mut *conn)
            .await?;
            if past {
                return Err(Error::RedemptionExpired(order_id));
            }
            sqlx::query(
                "UPDATE vouchers SET reserved_count = reserved_count - 1, \
                     used_count = used_count + 1, updated_at = now() \
                 WHERE id = $1",
            )
            .bind(redemption.voucher_id)
            .execute(&mut *conn)
            .await?;
            let outcome = set_status(conn, redemption, next).await?;
            outbox::record_change(conn, trace, Change::Redeemed(&outcome.redemption)).await?;
            Ok(outcome)
        }
    }
}

/// Gives a held redemption's use back. Releasing a released or expired redemption changes
/// nothing; a committed one is final.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn release(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    order_id: Uuid,
) -> Result<Outcome, Error> {
    let redemption = load(conn, order_id, Lock::ForUpdate)
        .await?
        .ok_or(Error::RedemptionNotFound(order_id))?;
    let status = redemption.status()?;
    match status.release() {
        Transition::AlreadyDone => Ok(unchanged(redemption)),
        Transition::Refused => Err(Error::RedemptionEnded { order_id, status }),
        Transition::Apply(next) => {
            give_back(conn, &[(redemption.voucher_id, redemption.user_id, 1)]).await?;
            let outcome = set_status(conn, redemption, next).await?;
            outbox::record_change(conn, trace, Change::Released(&outcome.redemption)).await?;
            Ok(outcome)
        }
    }
}

/// Gives a committed redemption's use back: its order was cancelled. The voucher's
/// `used_count` and the user's uses each go down by one, in the transaction that marks the
/// redemption returned, so the use counts against neither limit any more (the next reservation
/// may take it). Locks are taken as everywhere else: the redemption row (a concurrent second
/// return waits, then sees the first), the voucher row, the user's uses row. Returning twice
/// changes nothing; a held, released or expired redemption was never used and cannot be
/// returned.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn return_use(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    order_id: Uuid,
) -> Result<Outcome, Error> {
    let redemption = load(conn, order_id, Lock::ForUpdate)
        .await?
        .ok_or(Error::RedemptionNotFound(order_id))?;
    let status = redemption.status()?;
    match status.return_use() {
        Transition::AlreadyDone => Ok(unchanged(redemption)),
        Transition::Refused => Err(Error::RedemptionNotReturnable { order_id, status }),
        Transition::Apply(next) => {
            sqlx::query(
                "UPDATE vouchers SET used_count = used_count - 1, updated_at = now() \
                 WHERE id = $1",
            )
            .bind(redemption.voucher_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE voucher_user_uses SET uses = uses - 1 \
                 WHERE voucher_id = $1 AND user_id = $2",
            )
            .bind(redemption.voucher_id)
            .bind(redemption.user_id)
            .execute(&mut *conn)
            .await?;
            let outcome = set_status(conn, redemption, next).await?;
            outbox::record_change(conn, trace, Change::Returned(&outcome.redemption)).await?;
            Ok(outcome)
        }
    }
}

/// Returns `count` held uses of each `(voucher, user)`, in key order (the lock order).
async fn give_back(conn: &mut PgConnection, uses: &[(Uuid, Uuid, i32)]) -> Result<(), Error> {
    let mut per_voucher: std::collections::BTreeMap<Uuid, i32> = Default::default();
    for (voucher_id, _, count) in uses {
        *per_voucher.entry(*voucher_id).or_default() += count;
    }
    for (voucher_id, count) in per_voucher {
        sqlx::query(
            "UPDATE vouchers SET reserved_count = reserved_count - $2, updated_at = now() \
             WHERE id = $1",
        )
        .bind(voucher_id)
        .bind(count)
        .execute(&mut *conn)
        .await?;
    }
    let mut per_user: Vec<(Uuid, Uuid, i32)> = uses.to_vec();
    per_user.sort();
    for (voucher_id, user_id, count) in per_user {
        sqlx::query(
            "UPDATE voucher_user_uses SET uses = uses - $3 WHERE voucher_id = $1 AND user_id = $2",
        )
        .bind(voucher_id)
        .bind(user_id)
        .bind(count)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn unchanged(redemption: RedemptionRecord) -> Outcome {
    Outcome {
        redemption,
        changed: false,
    }
}

async fn set_status(
    conn: &mut PgConnection,
    mut redemption: RedemptionRecord,
    status: RedemptionStatus,
) -> Result<Outcome, Error> {
    sqlx::query("UPDATE redemptions SET status = $2, updated_at = now() WHERE order_id = $1")
        .bind(redemption.order_id)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    redemption.status = status.as_str().to_owned();
    Ok(Outcome {
        redemption,
        changed: true,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    None,
    /// Holds the redemption row until the transaction ends, so that a concurrent commit,
    /// release, return or sweep waits and then sees the outcome.
    ForUpdate,
}

async fn load(
    conn: &mut PgConnection,
    order_id: Uuid,
    lock: Lock,
) -> Result<Option<RedemptionRecord>, Error> {
    let sql = match lock {
        Lock::None => format!("{SELECT} WHERE r.order_id = $1"),
        Lock::ForUpdate => format!("{SELECT} WHERE r.order_id = $1 FOR UPDATE OF r"),
    };
    Ok(sqlx::query_as(&sql)
        .bind(order_id)
        .fetch_optional(conn)
        .await?)
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

/// Redemptions expired per transaction by [`expire_due_redemptions`].
const EXPIRY_BATCH: i64 = 500;

/// Expires every held redemption whose time is up and gives its use back; returns how many it
/// expired.
///
/// Safe to run from several replicas at once: each batch locks the redemptions it takes with
/// `FOR UPDATE SKIP LOCKED`, so replicas split the work instead of waiting on each other, and a
/// redemption being committed or released right now is left to that request.
#[tracing::instrument(skip_all)]
pub async fn expire_due_redemptions(pool: &PgPool) -> Result<u64, Error> {
    ::db::postgres::in_batches(EXPIRY_BATCH as u64, || expire_batch(pool)).await
}

async fn expire_batch(pool: &PgPool) -> Result<u64, Error> {
    let mut tx = pool.begin().await?;
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "WITH due AS ( \
             SELECT order_id FROM redemptions \
             WHERE status = 'held' AND expires_at <= now() \
             ORDER BY expires_at LIMIT $1 \
             FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE redemptions r SET status = 'expired', updated_at = now() \
         FROM due WHERE r.order_id = due.order_id \
         RETURNING r.order_id",
    )
    .bind(EXPIRY_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let redemptions: Vec<RedemptionRecord> = sqlx::query_as(&format!(
        "{SELECT} WHERE r.order_id = ANY($1) ORDER BY r.order_id"
    ))
    .bind(&expired)
    .fetch_all(&mut *tx)
    .await?;
    let uses: Vec<(Uuid, Uuid, i32)> = redemptions
        .iter()
        .map(|r| (r.voucher_id, r.user_id, 1))
        .collect();
    give_back(&mut tx, &uses).await?;
    // No request started the sweep: its events start a trace of their own.
    let trace = TraceHeaders::default();
    for redemption in &redemptions {
        outbox::record_change(&mut tx, &trace, Change::Released(redemption)).await?;
    }
    tx.commit().await?;
    metrics::counter!("voucher_redemptions_expired_total").increment(expired.len() as u64);
    Ok(expired.len() as u64)
}
