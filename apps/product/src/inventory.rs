//! Stock on hand and the reservations that hold part of it, in PostgreSQL.
//!
//! The invariant is `0 <= reserved <= stock` for every product, and the schema enforces it
//! with CHECK constraints whatever the code does. On top of that, reserving never even asks
//! the database to break it: each item is one conditional update
//! (`WHERE stock - reserved >= quantity`) that PostgreSQL re-evaluates on the latest row
//! version after waiting for a concurrent writer, so concurrent reservations cannot oversell.
//!
//! Locks are always taken in the same order: the reservation row first, then inventory rows by
//! product id. Two transactions therefore never wait on each other in a cycle (no
//! deadlocks), and the expiry sweeper skips reservations someone else holds, so several
//! replicas can sweep at once.
//!
//! Like `store`, writes take a connection inside the caller's transaction; only the sweeper,
//! which no request starts, opens its own.

use events::TraceHeaders;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{
    NewReservation, ProductId, ProductStatus, ReservationId, ReservationStatus, Stock, StockChange,
    StockLevel, Transition,
};
use crate::error::Error;
use crate::outbox::{self, Change};
use crate::records::{InventoryRecord, OfferRecord, ReservationRecord, ReservedItem};

/// The reservation after a request, and whether the request changed anything: a repeated
/// reserve, release, commit or restock returns the reservation as it was and changes nothing.
#[derive(Debug)]
pub struct Outcome {
    pub reservation: ReservationRecord,
    pub changed: bool,
}

// ---------------------------------------------------------------------------------------------
// Stock
// ---------------------------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn insert_inventory(
    conn: &mut PgConnection,
    product_id: ProductId,
    stock: Stock,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO inventory (product_id, stock) VALUES ($1, $2)")
        .bind(product_id.as_uuid())
        .bind(stock.get())
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn get_inventory(
    pool: &PgPool,
    product_id: ProductId,
) -> Result<Option<InventoryRecord>, Error> {
    let record = sqlx::query_as(
        "SELECT i.product_id, i.stock, i.reserved, p.status \
         FROM inventory i JOIN products p ON p.id = i.product_id \
         WHERE i.product_id = $1",
    )
    .bind(product_id.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(record)
}

/// The stock of each of `product_ids` that exists, in product id order.
#[tracing::instrument(skip_all, fields(products = product_ids.len()))]
pub async fn get_inventories(
    pool: &PgPool,
    product_ids: &[ProductId],
) -> Result<Vec<InventoryRecord>, Error> {
    let ids: Vec<Uuid> = product_ids.iter().map(ProductId::as_uuid).collect();
    let records = sqlx::query_as(
        "SELECT i.product_id, i.stock, i.reserved, p.status \
         FROM inventory i JOIN products p ON p.id = i.product_id \
         WHERE i.product_id = ANY($1) ORDER BY i.product_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(records)
}

/// Each of `product_ids` that exists (in any status), with what could be reserved of it now,
/// in one query, in product id order. Ids that name no product are left out.
#[tracing::instrument(skip_all, fields(products = product_ids.len()))]
pub async fn lookup_offers(
    pool: &PgPool,
    product_ids: &[ProductId],
) -> Result<Vec<OfferRecord>, Error> {
    let ids: Vec<Uuid> = product_ids.iter().map(ProductId::as_uuid).collect();
    let offers = sqlx::query_as(
        "SELECT p.id, p.shop_id, p.name, p.description, p.price_minor_units, p.price_currency, \
         p.category_id, p.image_urls, p.status, p.created_at, p.updated_at, \
         GREATEST(i.stock - i.reserved, 0) AS available \
         FROM products p JOIN inventory i ON i.product_id = p.id \
         WHERE p.id = ANY($1) ORDER BY p.id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(offers)
}

/// Sets the stock on hand; refused when it would drop below what reservations hold.
#[tracing::instrument(skip_all, fields(product_id = %change.product_id))]
pub async fn set_stock(conn: &mut PgConnection, change: StockChange) -> Result<StockLevel, Error> {
    let current: Option<(i64,)> =
        sqlx::query_as("SELECT reserved FROM inventory WHERE product_id = $1 FOR UPDATE")
            .bind(change.product_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    let Some((reserved,)) = current else {
        return Err(Error::ProductNotFound(change.product_id));
    };
    if change.stock.get() < reserved {
        return Err(Error::StockBelowReserved {
            product_id: change.product_id,
            reserved,
        });
    }
    sqlx::query("UPDATE inventory SET stock = $2, updated_at = now() WHERE product_id = $1")
        .bind(change.product_id.as_uuid())
        .bind(change.stock.get())
        .execute(&mut *conn)
        .await?;
    Ok(StockLevel {
        stock: change.stock.get(),
        reserved,
    })
}

// ---------------------------------------------------------------------------------------------
// Reservations
// ---------------------------------------------------------------------------------------------

/// Holds stock for every item of `request`, all or nothing.
///
/// A reservation id that exists already is a retry: the stored reservation is returned
/// unchanged when its items are the same, and `conflict` when they differ. When an item
/// cannot be supplied the error names it and the caller's transaction must roll back, which
/// releases whatever the earlier items took.
#[tracing::instrument(skip_all, fields(reservation_id = %request.id, items = request.items.len()))]
pub async fn reserve(conn: &mut PgConnection, request: &NewReservation) -> Result<Outcome, Error> {
    let inserted: Option<ReservationRecord> = sqlx::query_as(
        "INSERT INTO reservations (id, status, expires_at) \
         VALUES ($1, 'held', now() + make_interval(secs => $2)) \
         ON CONFLICT (id) DO NOTHING \
         RETURNING id, status, expires_at, created_at",
    )
    .bind(request.id.as_uuid())
    .bind(f64::from(request.hold.seconds()))
    .fetch_optional(&mut *conn)
    .await?;

    let requested: Vec<ReservedItem> = request
        .items
        .iter()
        .map(|(product_id, quantity)| ReservedItem {
            product_id: product_id.as_uuid(),
            quantity: quantity.get(),
        })
        .collect();

    let Some(mut reservation) = inserted else {
        let existing = load_reservation(conn, request.id, Lock::None)
            .await?
            .ok_or(Error::ReservationNotFound(request.id))?;
        if existing.items != requested {
            return Err(Error::ReservationItemsDiffer(request.id));
        }
        return Ok(Outcome {
            reservation: existing,
            changed: false,
        });
    };

    // Items come sorted by product id: the lock order that keeps this deadlock-free.
    for (product_id, quantity) in request.items.iter() {
        let held = sqlx::query(
            "UPDATE inventory i SET reserved = i.reserved + $2, updated_at = now() \
             FROM products p \
             WHERE i.product_id = $1 AND p.id = i.product_id AND p.status = 'active' \
               AND i.stock - i.reserved >= $2",
        )
        .bind(product_id.as_uuid())
        .bind(quantity.get())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if held == 0 {
            return Err(why_not_reservable(conn, product_id, quantity.get()).await?);
        }
    }

    let (product_ids, quantities): (Vec<Uuid>, Vec<i64>) = requested
        .iter()
        .map(|item| (item.product_id, item.quantity))
        .unzip();
    sqlx::query(
        "INSERT INTO reservation_items (reservation_id, product_id, quantity) \
         SELECT $1, item.product_id, item.quantity \
         FROM UNNEST($2::uuid[], $3::bigint[]) AS item (product_id, quantity)",
    )
    .bind(request.id.as_uuid())
    .bind(product_ids)
    .bind(quantities)
    .execute(&mut *conn)
    .await?;

    reservation.items = requested;
    Ok(Outcome {
        reservation,
        changed: true,
    })
}

/// The error for an item whose conditional update matched no row.
async fn why_not_reservable(
    conn: &mut PgConnection,
    product_id: ProductId,
    requested: i64,
) -> Result<Error, Error> {
    let record: Option<InventoryRecord> = sqlx::query_as(
        "SELECT i.product_id, i.stock, i.reserved, p.status \
         FROM inventory i JOIN products p ON p.id = i.product_id \
         WHERE i.product_id = $1",
    )
    .bind(product_id.as_uuid())
    .fetch_optional(conn)
    .await?;
    Ok(match record {
        None => Error::ProductNotFound(product_id),
        Some(record) if record.status != ProductStatus::Active => {
            Error::ProductNotForSale(product_id)
        }
        Some(record) => Error::InsufficientStock {
            product_id,
            requested,
            available: record.level().available(),
        },
    })
}

/// Gives the stock a held reservation holds back. Releasing a released or expired
/// reservation changes nothing; a committed one cannot be released.
#[tracing::instrument(skip_all, fields(reservation_id = %id))]
pub async fn release(conn: &mut PgConnection, id: ReservationId) -> Result<Outcome, Error> {
    let reservation = load_reservation(conn, id, Lock::ForUpdate)
        .await?
        .ok_or(Error::ReservationNotFound(id))?;
    match reservation.status.release() {
        Transition::AlreadyDone => Ok(unchanged(reservation)),
        Transition::Refused => Err(Error::ReservationEnded {
            id,
            status: reservation.status,
        }),
        Transition::Apply(next) => {
            for item in &reservation.items {
                sqlx::query(
                    "UPDATE inventory SET reserved = reserved - $2, updated_at = now() \
                     WHERE product_id = $1",
                )
                .bind(item.product_id)
                .bind(item.quantity)
                .execute(&mut *conn)
                .await?;
            }
            set_status(conn, reservation, next).await
        }
    }
}

/// Turns the stock a held reservation holds into sold stock. Committing twice changes
/// nothing; a released or expired reservation (or one past its expiry that the sweeper has
/// not reached yet) cannot be committed.
#[tracing::instrument(skip_all, fields(reservation_id = %id))]
pub async fn commit(conn: &mut PgConnection, id: ReservationId) -> Result<Outcome, Error> {
    let reservation = load_reservation(conn, id, Lock::ForUpdate)
        .await?
        .ok_or(Error::ReservationNotFound(id))?;
    match reservation.status.commit() {
        Transition::AlreadyDone => Ok(unchanged(reservation)),
        Transition::Refused => Err(Error::ReservationEnded {
            id,
            status: reservation.status,
        }),
        Transition::Apply(next) => {
            if is_past_expiry(conn, id).await? {
                return Err(Error::ReservationExpired(id));
            }
            for item in &reservation.items {
                sqlx::query(
                    "UPDATE inventory \
                     SET stock = stock - $2, reserved = reserved - $2, updated_at = now() \
                     WHERE product_id = $1",
                )
                .bind(item.product_id)
                .bind(item.quantity)
                .execute(&mut *conn)
                .await?;
            }
            set_status(conn, reservation, next).await
        }
    }
}

/// Puts what a committed reservation sold back on hand: each item's quantity goes back into
/// the stock, in the transaction that marks the reservation restocked. Restocking twice changes
/// nothing (the row lock makes a concurrent second restock wait, then see the first); a held,
/// released or expired reservation sold nothing and cannot be restocked.
#[tracing::instrument(skip_all, fields(reservation_id = %id))]
pub async fn restock(conn: &mut PgConnection, id: ReservationId) -> Result<Outcome, Error> {
    let reservation = load_reservation(conn, id, Lock::ForUpdate)
        .await?
        .ok_or(Error::ReservationNotFound(id))?;
    match reservation.status.restock() {
        Transition::AlreadyDone => Ok(unchanged(reservation)),
        Transition::Refused => Err(Error::ReservationNotRestockable {
            id,
            status: reservation.status,
        }),
        Transition::Apply(next) => {
            // Items come sorted by product id: the lock order.
            for item in &reservation.items {
                sqlx::query(
                    "UPDATE inventory SET stock = stock + $2, updated_at = now() \
                     WHERE product_id = $1",
                )
                .bind(item.product_id)
                .bind(item.quantity)
                .execute(&mut *conn)
                .await?;
            }
            set_status(conn, reservation, next).await
        }
    }
}

fn unchanged(reservation: ReservationRecord) -> Outcome {
    Outcome {
        reservation,
        changed: false,
    }
}

async fn is_past_expiry(conn: &mut PgConnection, id: ReservationId) -> Result<bool, Error> {
    let past: bool =
        sqlx::query_scalar("SELECT expires_at <= now() FROM reservations WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_one(conn)
            .await?;
    Ok(past)
}

async fn set_status(
    conn: &mut PgConnection,
    mut reservation: ReservationRecord,
    status: ReservationStatus,
) -> Result<Outcome, Error> {
    sqlx::query("UPDATE reservations SET status = $2, updated_at = now() WHERE id = $1")
        .bind(reservation.id)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    reservation.status = status;
    Ok(Outcome {
        reservation,
        changed: true,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    None,
    /// Holds the reservation row until the transaction ends, so that a concurrent release,
    /// commit, restock or sweep waits and then sees the outcome.
    ForUpdate,
}

async fn load_reservation(
    conn: &mut PgConnection,
    id: ReservationId,
    lock: Lock,
) -> Result<Option<ReservationRecord>, Error> {
    let sql = match lock {
        Lock::None => "SELECT id, status, expires_at, created_at FROM reservations WHERE id = $1",
        Lock::ForUpdate => {
            "SELECT id, status, expires_at, created_at FROM reservations WHERE id = $1 FOR UPDATE"
        }
    };
    let reservation: Option<ReservationRecord> = sqlx::query_as(sql)
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(mut reservation) = reservation else {
        return Ok(None);
    };
    reservation.items = sqlx::query_as(
        "SELECT product_id, quantity FROM reservation_items \
         WHERE reservation_id = $1 ORDER BY product_id",
    )
    .bind(id.as_uuid())
    .fetch_all(conn)
    .await?;
    Ok(Some(reservation))
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

/// Reservations expired per transaction by [`expire_due_reservations`].
const EXPIRY_BATCH: i64 = 500;

/// Expires every held reservation whose time is up and gives its stock back; returns how many
/// it expired.
///
/// Safe to run from several replicas at once: each batch locks the reservations it takes with
/// `FOR UPDATE SKIP LOCKED`, so replicas split the work instead of waiting on each other, and a
/// reservation being released or committed right now is left to that request.
#[tracing::instrument(skip_all)]
pub async fn expire_due_reservations(pool: &PgPool) -> Result<u64, Error> {
    ::db::postgres::in_batches(EXPIRY_BATCH as u64, || expire_batch(pool)).await
}

async fn expire_batch(pool: &PgPool) -> Result<u64, Error> {
    let mut tx = pool.begin().await?;
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "WITH due AS ( \
             SELECT id FROM reservations \
             WHERE status = 'held' AND expires_at <= now() \
             ORDER BY expires_at LIMIT $1 \
             FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE reservations r SET status = 'expired', updated_at = now() \
         FROM due WHERE r.id = due.id \
         RETURNING r.id",
    )
    .bind(EXPIRY_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let held: Vec<ReservedItem> = sqlx::query_as(
        "SELECT product_id, SUM(quantity)::bigint AS quantity FROM reservation_items \
         WHERE reservation_id = ANY($1) GROUP BY product_id ORDER BY product_id",
    )
    .bind(&expired)
    .fetch_all(&mut *tx)
    .await?;
    for item in held {
        sqlx::query(
            "UPDATE inventory SET reserved = reserved - $2, updated_at = now() \
             WHERE product_id = $1",
        )
        .bind(item.product_id)
        .bind(item.quantity)
        .execute(&mut *tx)
        .await?;
    }
    // No request started the sweep: its events start a trace of their own.
    let trace = TraceHeaders::default();
    for id in &expired {
        let id = ReservationId::from_uuid(*id);
        outbox::record_change(&mut tx, &trace, Change::ReservationExpired(id)).await?;
    }
    tx.commit().await?;
    metrics::counter!("product_reservations_expired_total").increment(expired.len() as u64);
    Ok(expired.len() as u64)
}
