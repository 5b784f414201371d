//! The verified-purchase read model, fed by the order service's events (never by a call at
//! read time):
//!
//! - `order.paid`: the order's customer and every product in its sub-orders verify.
//! - `suborder.delivered`: the delivered sub-order's products verify too (the event carries
//!   no customer; the order's paid or cancelled event names them, in whichever order the two
//!   streams deliver).
//! - `order.cancelled` / `order.refunded`: the order verifies nothing any more, and that is
//!   final: a customer who cancelled or was refunded did not keep the product, so their
//!   review loses the mark (the review itself stays). Another paid order of the same product
//!   still verifies it.
//!
//! Each event is applied once per consumer (`events::inbox`), in the same transaction as its
//! effect and the verified marks of the customer's reviews. A malformed event is given up
//! into the dead letters with the reason; a store failure is retried.

use api::order::{Order, OrderCancelled, OrderPaid, OrderRefunded, SubOrder, SubOrderDelivered};
use events::{Consumer, ConsumerConfig, Delivery, Outcome};
use uuid::Uuid;

use crate::store::{Purchase, PurchaseKind, Reviews};

fn config() -> ConsumerConfig {
    ConsumerConfig::new(api::comment::SERVICE_NAME)
}

/// The four consumers on `store`, for the host to start.
pub fn all<S: Reviews>(store: S) -> Vec<Consumer> {
    let paid = store.clone();
    let delivered = store.clone();
    let cancelled = store.clone();
    let refunded = store;
    vec![
        Consumer::new(config(), move |delivery: Delivery<OrderPaid>| {
            let store = paid.clone();
            async move {
                let purchase = of_order(delivery.payload.order.as_ref(), PurchaseKind::Paid);
                apply(&store, &delivery, purchase).await
            }
        }),
        Consumer::new(config(), move |delivery: Delivery<SubOrderDelivered>| {
            let store = delivered.clone();
            async move {
                let purchase = of_sub_order(delivery.payload.sub_order.as_ref());
                apply(&store, &delivery, purchase).await
            }
        }),
        Consumer::new(config(), move |delivery: Delivery<OrderCancelled>| {
            let store = cancelled.clone();
            async move {
                let purchase = of_order(delivery.payload.order.as_ref(), PurchaseKind::Void);
                apply(&store, &delivery, purchase).await
            }
        }),
        Consumer::new(config(), move |delivery: Delivery<OrderRefunded>| {
            let store = refunded.clone();
            async move {
                let purchase = of_order(delivery.payload.order.as_ref(), PurchaseKind::Void);
                apply(&store, &delivery, purchase).await
            }
        }),
    ]
}

async fn apply<S: Reviews, E>(
    store: &S,
    delivery: &Delivery<E>,
    purchase: Result<Purchase, String>,
) -> Outcome {
    let purchase = match purchase {
        Ok(purchase) => purchase,
        Err(reason) => return Outcome::give_up(reason),
    };
    match store
        .apply_purchase(&delivery.consumer, delivery.event_id, &purchase)
        .await
    {
        Ok(applied) => {
            tracing::debug!(order_id = %purchase.order_id, kind = ?purchase.kind, applied, "order event applied");
            Outcome::Done
        }
        Err(error) => Outcome::retry(format!(
            "applying order {} to the purchases: {error:#}",
            purchase.order_id
        )),
    }
}

fn uuid(what: &str, value: &str) -> Result<Uuid, String> {
    Uuid::try_parse(value).map_err(|_| format!("{what} must be a UUID"))
}

fn products(sub_orders: &[SubOrder]) -> Result<Vec<Uuid>, String> {
    let mut ids = sub_orders
        .iter()
        .flat_map(|s| &s.lines)
        .map(|line| uuid("product_id", &line.product_id))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The purchase change of an event that carries the whole order.
pub fn of_order(order: Option<&Order>, kind: PurchaseKind) -> Result<Purchase, String> {
    let order = order.ok_or("the event has no order")?;
    Ok(Purchase {
        order_id: uuid("order id", &order.id)?,
        user_id: Some(uuid("user_id", &order.user_id)?),
        product_ids: products(&order.sub_orders)?,
        kind,
    })
}

/// The purchase change of a delivered sub-order.
pub fn of_sub_order(sub_order: Option<&SubOrder>) -> Result<Purchase, String> {
    let sub_order = sub_order.ok_or("the event has no sub-order")?;
    Ok(Purchase {
        order_id: uuid("order_id", &sub_order.order_id)?,
        user_id: None,
        product_ids: products(std::slice::from_ref(sub_order))?,
        kind: PurchaseKind::Delivered,
    })
}

#[cfg(test)]
mod tests {
    use api::order::OrderLine;

    use super::*;

    #[test]
    fn an_order_verifies_each_product_of_its_sub_orders_once() {
        let product = Uuid::now_v7();
        let line = |id: Uuid| OrderLine {
            product_id: id.to_string(),
            ..Default::default()
        };
        let order = Order {
            id: Uuid::now_v7().to_string(),
            user_id: Uuid::now_v7().to_string(),
            sub_orders: vec![
                SubOrder {
                    lines: vec![line(product)],
                    ..Default::default()
                },
                SubOrder {
                    lines: vec![line(product)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let purchase = of_order(Some(&order), PurchaseKind::Paid).unwrap();
        assert_eq!(purchase.product_ids, [product]);
        assert_eq!(
            of_order(None, PurchaseKind::Paid).unwrap_err(),
            "the event has no order"
        );
        let bad = Order {
            user_id: "x".into(),
            ..order
        };
        assert_eq!(
            of_order(Some(&bad), PurchaseKind::Void).unwrap_err(),
            "user_id must be a UUID"
        );
    }
}
