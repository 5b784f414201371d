//! PostgreSQL access for orders, sub-orders, their lines and history: one small function per
//! query, checked at run time (`query_as` with `FromRow` rows), so no database is needed to
//! build the crate and the integration tests run every query against a real server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{
    CheckoutOrder, Figures, OrderQuery, OrderStatus, PricedOrder, SubOrderQuery, SubOrderStatus,
};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The address an order ships to, as it was at checkout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSnapshot {
    pub recipient_name: String,
    pub phone: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country_code: String,
}

/// A product's price now, when it differs from what the customer was shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceNow {
    pub product_id: Uuid,
    pub unit_price: i64,
}

/// Why an order failed or was cancelled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
    #[serde(default)]
    pub price_changes: Vec<PriceNow>,
    #[serde(default)]
    pub payment_failure_code: String,
}

/// A stored order.
#[derive(Clone, Debug, FromRow)]
pub struct OrderRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub idempotency_key: String,
    pub status: String,
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    pub voucher_code: String,
    /// The code the checkout request named (empty: the cart's).
    pub requested_voucher_code: String,
    pub shipping_method: String,
    pub shipping_address_id: Uuid,
    pub shipping_address: Option<Json<AddressSnapshot>>,
    pub payment_method_id: String,
    pub payment_id: Option<Uuid>,
    pub expected_total: Option<i64>,
    pub expected_currency: Option<String>,
    pub failure: Option<Json<FailureRecord>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderRecord {
    pub fn status(&self) -> OrderStatus {
        // The CHECK constraint admits only the statuses the domain knows.
        OrderStatus::parse(&self.status).unwrap_or(OrderStatus::Pending)
    }
}

const ORDER_COLUMNS: &str = "id, user_id, idempotency_key, status, currency, subtotal, \
    discount, shipping, tax, total, voucher_code, requested_voucher_code, shipping_method, \
    shipping_address_id, shipping_address, payment_method_id, payment_id, expected_total, expected_currency, \
    failure, created_at, updated_at";

/// A stored sub-order.
#[derive(Clone, Debug, FromRow)]
pub struct SubOrderRecord {
    pub id: Uuid,
    pub order_id: Uuid,
    pub shop_id: Uuid,
    pub shop_name: String,
    pub status: String,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    pub carrier: String,
    pub tracking_number: String,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SubOrderRecord {
    pub fn status(&self) -> SubOrderStatus {
        SubOrderStatus::parse(&self.status).unwrap_or(SubOrderStatus::Pending)
    }
}

const SUB_ORDER_COLUMNS: &str = "id, order_id, shop_id, shop_name, status, subtotal, discount, \
    shipping, tax, total, carrier, tracking_number, shipped_at, delivered_at, created_at, updated_at";

#[derive(Clone, Debug, FromRow)]
pub struct LineRecord {
    pub sub_order_id: Uuid,
    pub position: i32,
    pub product_id: Uuid,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i32,
    pub line_total: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct HistoryRecord {
    pub order_id: Uuid,
    pub sub_order_id: Option<Uuid>,
    pub status: String,
    pub actor: String,
    pub actor_id: Option<Uuid>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Who made a change, as the history records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Customer(Uuid),
    Seller(Uuid),
    Admin(Uuid),
    System,
}

impl Actor {
    fn parts(self) -> (&'static str, Option<Uuid>) {
        match self {
            Actor::Customer(id) => ("customer", Some(id)),
            Actor::Seller(id) => ("seller", Some(id)),
            Actor::Admin(id) => ("admin", Some(id)),
            Actor::System => ("system", None),
        }
    }
}

/// Creates a pending order for `checkout`, unless the customer already has one with its
/// idempotency key: `None` then.
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn insert_order(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    checkout: &CheckoutOrder,
) -> sqlx::Result<Option<OrderRecord>> {
    let (expected_total, expected_currency) = match &checkout.expected_total {
        Some((amount, currency)) => (Some(*amount), Some(currency.clone())),
        None => (None, None),
    };
    sqlx::query_as(&format!(
        "INSERT INTO orders (id, user_id, idempotency_key, status, voucher_code, \
             requested_voucher_code, shipping_method, shipping_address_id, payment_method_id, \
             expected_total, expected_currency) \
         VALUES ($1, $2, $3, 'pending', $4, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (user_id, idempotency_key) DO NOTHING \
         RETURNING {ORDER_COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .bind(&checkout.idempotency_key)
    .bind(checkout.voucher_code.as_deref().unwrap_or(""))
    .bind(&checkout.shipping_method)
    .bind(checkout.shipping_address_id)
    .bind(&checkout.payment_method_id)
    .bind(expected_total)
    .bind(expected_currency)
    .fetch_optional(conn)
    .await
}

pub async fn find_by_key(
    executor: impl PgExecutor<'_>,
    user_id: Uuid,
    key: &str,
) -> sqlx::Result<Option<OrderRecord>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND idempotency_key = $2"
    ))
    .bind(user_id)
    .bind(key)
    .fetch_optional(executor)
    .await
}

pub async fn get_order(
    executor: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<OrderRecord>> {
    sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// The order, its row locked until the transaction ends: changes of one order are serial.
pub async fn lock_order(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<OrderRecord>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Stores what the checkout priced: the order's figures and address, and its sub-orders (in
/// `pending`) with their lines. Running it again for the same order changes nothing.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn record_pricing(
    conn: &mut PgConnection,
    order_id: Uuid,
    priced: &PricedOrder,
    address: &AddressSnapshot,
    voucher_code: &str,
) -> sqlx::Result<()> {
    let f = priced.figures;
    sqlx::query(
        "UPDATE orders SET currency = $2, subtotal = $3, discount = $4, shipping = $5, \
             tax = $6, total = $7, shipping_address = $8, voucher_code = $9, updated_at = now() \
         WHERE id = $1",
    )
    .bind(order_id)
    .bind(&priced.currency)
    .bind(f.subtotal)
    .bind(f.discount)
    .bind(f.shipping)
    .bind(f.tax)
    .bind(f.total)
    .bind(Json(address))
    .bind(voucher_code)
    .execute(&mut *conn)
    .await?;
    for sub in &priced.sub_orders {
        let f: Figures = sub.figures;
        let inserted = sqlx::query(
            "INSERT INTO sub_orders (id, order_id, shop_id, shop_name, status, subtotal, \
                 discount, shipping, tax, total) \
             VALUES ($1, $2, $3, $9, 'pending', $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(sub.id)
        .bind(order_id)
        .bind(sub.shop_id)
        .bind(f.subtotal)
        .bind(f.discount)
        .bind(f.shipping)
        .bind(f.tax)
        .bind(f.total)
        .bind(&sub.shop_name)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        for (position, line) in sub.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO order_lines (sub_order_id, position, product_id, name, \
                     unit_price, quantity, line_total) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(sub.id)
            .bind(position as i32)
            .bind(line.product_id)
            .bind(&line.name)
            .bind(line.unit_price)
            .bind(line.quantity)
            .bind(line.total())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Moves the order and every one of its sub-orders in `from` to the given statuses, with a
/// history row for the order.
#[allow(clippy::too_many_arguments)]
pub async fn set_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
    sub_orders_from: &[SubOrderStatus],
    sub_orders_to: Option<SubOrderStatus>,
    failure: Option<&FailureRecord>,
    actor: Actor,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE orders SET status = $2, failure = COALESCE($3, failure), updated_at = now() \
         WHERE id = $1",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(failure.map(Json))
    .execute(&mut *conn)
    .await?;
    if let Some(to) = sub_orders_to {
        let from: Vec<&str> = sub_orders_from.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "UPDATE sub_orders SET status = $3, updated_at = now() \
             WHERE order_id = $1 AND status = ANY($2)",
        )
        .bind(order_id)
        .bind(&from)
        .bind(to.as_str())
        .execute(&mut *conn)
        .await?;
    }
    add_history(conn, order_id, None, status.as_str(), actor, reason).await
}

pub async fn set_payment(
    conn: &mut PgConnection,
    order_id: Uuid,
    payment_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE orders SET payment_id = $2, updated_at = now() WHERE id = $1")
        .bind(order_id)
        .bind(payment_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn add_history(
    conn: &mut PgConnection,
    order_id: Uuid,
    sub_order_id: Option<Uuid>,
    status: &str,
    actor: Actor,
    reason: &str,
) -> sqlx::Result<()> {
    let (actor, actor_id) = actor.parts();
    sqlx::query(
        "INSERT INTO order_history (order_id, sub_order_id, status, actor, actor_id, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order_id)
    .bind(sub_order_id)
    .bind(status)
    .bind(actor)
    .bind(actor_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn sub_orders_of(
    executor: impl PgExecutor<'_>,
    order_ids: &[Uuid],
) -> sqlx::Result<Vec<SubOrderRecord>> {
    sqlx::query_as(&format!(
        "SELECT {SUB_ORDER_COLUMNS} FROM sub_orders WHERE order_id = ANY($1) ORDER BY id"
    ))
    .bind(order_ids)
    .fetch_all(executor)
    .await
}

pub async fn lines_of(
    executor: impl PgExecutor<'_>,
    sub_order_ids: &[Uuid],
) -> sqlx::Result<Vec<LineRecord>> {
    sqlx::query_as(
        "SELECT sub_order_id, position, product_id, name, unit_price, quantity, line_total \
         FROM order_lines WHERE sub_order_id = ANY($1) ORDER BY sub_order_id, position",
    )
    .bind(sub_order_ids)
    .fetch_all(executor)
    .await
}

pub async fn history_of(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Vec<HistoryRecord>> {
    sqlx::query_as(
        "SELECT order_id, sub_order_id, status, actor, actor_id, reason, at \
         FROM order_history WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await
}

/// A page of orders (one more than the page, to tell whether another follows), newest first.
pub async fn list_orders(
    executor: impl PgExecutor<'_>,
    user_id: Uuid,
    query: &OrderQuery,
) -> sqlx::Result<Vec<OrderRecord>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders \
         WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) \
           AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(query.status.map(|s| s.as_str()))
    .bind(query.page.after)
    .bind(query.page.size as i64 + 1)
    .fetch_all(executor)
    .await
}

/// A page of one shop's sub-orders, newest first; pending and failed ones (of checkouts that
/// did not complete) only when asked for by status.
pub async fn list_shop_sub_orders(
    executor: impl PgExecutor<'_>,
    query: &SubOrderQuery,
) -> sqlx::Result<Vec<SubOrderRecord>> {
    sqlx::query_as(&format!(
        "SELECT {SUB_ORDER_COLUMNS} FROM sub_orders \
         WHERE shop_id = $1 \
           AND (CASE WHEN $2::text IS NULL THEN status NOT IN ('pending', 'failed') \
                ELSE status = $2 END) \
           AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(query.shop_id)
    .bind(query.status.map(|s| s.as_str()))
    .bind(query.page.after)
    .bind(query.page.size as i64 + 1)
    .fetch_all(executor)
    .await
}

pub async fn get_sub_order(
    executor: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<SubOrderRecord>> {
    sqlx::query_as(&format!(
        "SELECT {SUB_ORDER_COLUMNS} FROM sub_orders WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Records a sub-order's shipment (or delivery when `carrier` is `None`).
pub async fn set_sub_order_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: SubOrderStatus,
    shipment: Option<(&str, &str)>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sub_orders SET status = $2, \
             carrier = COALESCE($3, carrier), tracking_number = COALESCE($4, tracking_number), \
             shipped_at = CASE WHEN $2 = 'shipped' THEN now() ELSE shipped_at END, \
             delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, \
             updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(shipment.map(|s| s.0))
    .bind(shipment.map(|s| s.1))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the order is being cancelled by saga `saga_id`: `false` when it already is.
pub async fn insert_cancellation(
    conn: &mut PgConnection,
    order_id: Uuid,
    saga_id: Uuid,
    actor: Actor,
    reason: &str,
) -> sqlx::Result<bool> {
    let (actor, actor_id) = actor.parts();
    let inserted = sqlx::query(
        "INSERT INTO order_cancellations (order_id, saga_id, actor, actor_id, reason) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(saga_id)
    .bind(actor)
    .bind(actor_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn cancellation_saga(
    executor: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT saga_id FROM order_cancellations WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(executor)
        .await
}
