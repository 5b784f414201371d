//! Stored orders as the contract's messages.

use api::common::Money;
use api::order::{
    CheckoutQuote, Failure, Order, OrderLine, OrderWatch, PriceChange, ShippingAddress, ShopQuote,
    StatusChange, SubOrder, SubOrderState,
};
use api::timestamp;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Discount, PricedOrder};
use crate::store::{self, FailureRecord, HistoryRecord, LineRecord, OrderRecord, SubOrderRecord};

pub fn money(minor_units: i64, currency: &str) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: currency.to_owned(),
    })
}

/// The order with its sub-orders and their lines, and its history when `history`.
pub async fn order(
    conn: &mut PgConnection,
    record: OrderRecord,
    history: bool,
) -> sqlx::Result<Order> {
    let sub_orders = store::sub_orders_of(&mut *conn, &[record.id]).await?;
    let ids: Vec<Uuid> = sub_orders.iter().map(|s| s.id).collect();
    let lines = store::lines_of(&mut *conn, &ids).await?;
    let history = if history {
        store::history_of(&mut *conn, record.id).await?
    } else {
        Vec::new()
    };
    Ok(assemble(record, sub_orders, &lines, history))
}

/// Orders of a listing, with their sub-orders (and lines) in three queries for the page.
pub async fn orders(
    conn: &mut PgConnection,
    records: Vec<OrderRecord>,
) -> sqlx::Result<Vec<Order>> {
    let ids: Vec<Uuid> = records.iter().map(|o| o.id).collect();
    let sub_orders = store::sub_orders_of(&mut *conn, &ids).await?;
    let sub_ids: Vec<Uuid> = sub_orders.iter().map(|s| s.id).collect();
    let lines = store::lines_of(&mut *conn, &sub_ids).await?;
    Ok(records
        .into_iter()
        .map(|record| {
            let own = sub_orders
                .iter()
                .filter(|s| s.order_id == record.id)
                .cloned()
                .collect();
            assemble(record, own, &lines, Vec::new())
        })
        .collect())
}

fn assemble(
    record: OrderRecord,
    sub_orders: Vec<SubOrderRecord>,
    lines: &[LineRecord],
    history: Vec<HistoryRecord>,
) -> Order {
    let currency = record.currency.clone();
    let sub_orders = sub_orders
        .into_iter()
        .map(|s| {
            let own: Vec<LineRecord> = lines
                .iter()
                .filter(|l| l.sub_order_id == s.id)
                .cloned()
                .collect();
            sub_order(s, &own, &currency)
        })
        .collect();
    Order {
        id: record.id.to_string(),
        user_id: record.user_id.to_string(),
        status: record.status.clone(),
        currency: currency.clone(),
        subtotal: money(record.subtotal, &currency),
        discount: money(record.discount, &currency),
        shipping: money(record.shipping, &currency),
        tax: money(record.tax, &currency),
        total: money(record.total, &currency),
        voucher_code: record.voucher_code,
        shipping_method: record.shipping_method,
        shipping_address: record.shipping_address.map(|a| {
            let a = a.0;
            ShippingAddress {
                recipient_name: a.recipient_name,
                phone: a.phone,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                region: a.region,
                postal_code: a.postal_code,
                country_code: a.country_code,
            }
        }),
        payment_id: record.payment_id.map(|p| p.to_string()).unwrap_or_default(),
        payment_method_id: record.payment_method_id,
        sub_orders,
        failure: record.failure.map(|f| failure(f.0, &currency)),
        history: history.into_iter().map(status_change).collect(),
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}

/// Why an order failed (or a quote's cart cannot be checked out), prices in `currency`.
fn failure(f: FailureRecord, currency: &str) -> Failure {
    Failure {
        code: f.code,
        message: f.message,
        product_ids: f.product_ids.iter().map(Uuid::to_string).collect(),
        price_changes: f
            .price_changes
            .iter()
            .map(|p| PriceChange {
                product_id: p.product_id.to_string(),
                unit_price: money(p.unit_price, currency),
            })
            .collect(),
        payment_failure_code: f.payment_failure_code,
    }
}

/// The figures of a priced cart as a quote, each shop's as its sub-order would have them.
pub fn quote(priced: &PricedOrder, discount: Option<&Discount>, method: &str) -> CheckoutQuote {
    let currency = priced.currency.as_str();
    let f = priced.figures;
    CheckoutQuote {
        currency: currency.to_owned(),
        shops: priced
            .sub_orders
            .iter()
            .map(|s| ShopQuote {
                shop_id: s.shop_id.to_string(),
                shop_name: s.shop_name.clone(),
                lines: s
                    .lines
                    .iter()
                    .map(|l| OrderLine {
                        product_id: l.product_id.to_string(),
                        name: l.name.clone(),
                        unit_price: money(l.unit_price, currency),
                        quantity: l.quantity,
                        line_total: money(l.total(), currency),
                    })
                    .collect(),
                subtotal: money(s.figures.subtotal, currency),
                discount: money(s.figures.discount, currency),
                shipping: money(s.figures.shipping, currency),
                tax: money(s.figures.tax, currency),
                total: money(s.figures.total, currency),
            })
            .collect(),
        subtotal: money(f.subtotal, currency),
        discount: money(f.discount, currency),
        shipping: money(f.shipping, currency),
        tax: money(f.tax, currency),
        total: money(f.total, currency),
        voucher_code: discount.map(|d| d.code.clone()).unwrap_or_default(),
        shipping_method: method.to_owned(),
        problem: None,
    }
}

/// A quote of a cart that cannot be checked out: no figures, and why.
pub fn quote_problem(problem: FailureRecord, method: &str) -> CheckoutQuote {
    CheckoutQuote {
        shipping_method: method.to_owned(),
        problem: Some(failure(problem, "")),
        ..CheckoutQuote::default()
    }
}

/// A sub-order with its lines, its money in `currency` (the order's).
pub fn sub_order(record: SubOrderRecord, lines: &[LineRecord], currency: &str) -> SubOrder {
    SubOrder {
        id: record.id.to_string(),
        order_id: record.order_id.to_string(),
        shop_id: record.shop_id.to_string(),
        shop_name: record.shop_name,
        status: record.status,
        lines: lines
            .iter()
            .map(|l| OrderLine {
                product_id: l.product_id.to_string(),
                name: l.name.clone(),
                unit_price: money(l.unit_price, currency),
                quantity: l.quantity,
                line_total: money(l.line_total, currency),
            })
            .collect(),
        subtotal: money(record.subtotal, currency),
        discount: money(record.discount, currency),
        shipping: money(record.shipping, currency),
        tax: money(record.tax, currency),
        total: money(record.total, currency),
        carrier: record.carrier,
        tracking_number: record.tracking_number,
        shipped_at: record.shipped_at.and_then(timestamp),
        delivered_at: record.delivered_at.and_then(timestamp),
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}

/// One sub-order with its lines, read through `conn`.
pub async fn sub_order_with_lines(
    conn: &mut PgConnection,
    record: SubOrderRecord,
) -> sqlx::Result<SubOrder> {
    let lines = store::lines_of(&mut *conn, &[record.id]).await?;
    let currency: String = sqlx::query_scalar("SELECT currency FROM orders WHERE id = $1")
        .bind(record.order_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(sub_order(record, &lines, &currency))
}

fn status_change(record: HistoryRecord) -> StatusChange {
    StatusChange {
        status: record.status,
        sub_order_id: record
            .sub_order_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        actor: record.actor,
        actor_id: record.actor_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: record.reason,
        at: timestamp(record.at),
    }
}

/// The status of an order and of the sub-orders a caller may see, as a live subscription's
/// snapshot; `everything` when the caller sees every sub-order.
pub fn watch(record: &OrderRecord, visible: Vec<SubOrderRecord>, everything: bool) -> OrderWatch {
    OrderWatch {
        order_id: record.id.to_string(),
        status: record.status.clone(),
        sub_orders: visible
            .into_iter()
            .map(|s| SubOrderState {
                id: s.id.to_string(),
                shop_id: s.shop_id.to_string(),
                status: s.status,
                carrier: s.carrier,
                tracking_number: s.tracking_number,
                updated_at: timestamp(s.updated_at),
            })
            .collect(),
        all_sub_orders: everything,
        updated_at: timestamp(record.updated_at),
    }
}
