//! The cancellation saga: a paid order that has not shipped is cancelled, and everything the
//! checkout took is given back, each exactly once.
//!
//! | # | step           | action                                               | compensation |
//! |---|----------------|------------------------------------------------------|--------------|
//! | 0 | cancel_order   | (local) order and sub-orders cancelled, order.cancelled |           |
//! | 1 | refund_payment | payment.refund_payment (or void, if never captured)  |              |
//! | 2 | restock        | product.restock_reservation                          |              |
//! | 3 | return_voucher | voucher.return_redemption                            |              |
//! | 4 | mark_refunded  | (local) order refunded, order.refunded               |              |
//!
//! Only the first step can refuse (the order shipped meanwhile, or is not paid): nothing has
//! been done then. The others give back what exists and retry until they have: they are the
//! platform's promise to the customer, so an operator sees one that cannot finish (attempts
//! and last error in `GET /api/v1/admin/sagas/{id}`) rather than it being dropped.

use std::sync::Arc;
use std::time::Duration;

use api::payment::{PaymentClient, RefundPaymentRequest, VoidPaymentRequest};
use api::product::{ProductClient, RestockReservationRequest};
use api::voucher::{RedemptionRequest, VoucherClient};
use rpc::ErrorCode;
use saga::{BoxFuture, Definition, LocalStep, Outcome, StepContext, StepError};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::checkout::locked;
use crate::domain::{OrderStatus, SubOrderStatus, failure};
use crate::outbox::{self, Change, Move};
use crate::store::{self, Actor, FailureRecord};

pub const SAGA: &str = "cancellation";

/// How often the give-back steps are tried before the instance shows as failed for an
/// operator (with the backoff capped, about a day).
const GIVE_BACK_ATTEMPTS: u32 = 10_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelData {
    pub order_id: Uuid,
    /// "customer" or "admin", and who.
    pub actor: String,
    pub actor_id: Uuid,
    pub reason: String,
    /// Set by the first step, from the order.
    pub payment_id: Option<Uuid>,
    pub voucher: bool,
}

impl CancelData {
    fn actor(&self) -> Actor {
        if self.actor == "admin" {
            Actor::Admin(self.actor_id)
        } else {
            Actor::Customer(self.actor_id)
        }
    }
}

pub struct Cancellation {
    pub products: ProductClient,
    pub vouchers: VoucherClient,
    pub payments: PaymentClient,
    pub call_timeout: Duration,
}

type StepResult = Result<Outcome<CancelData>, StepError>;

fn retry(call: &str, error: rpc::Error) -> StepError {
    StepError::transient(format!("{call}: {error}"))
}

impl Cancellation {
    fn context(&self, ctx: &StepContext) -> rpc::Context {
        rpc::Context::background()
            .with_timeout(self.call_timeout)
            .with_trace(ctx.current_trace())
    }

    pub fn definition(self: Arc<Self>) -> Definition<CancelData> {
        let step = |f: fn(
            Arc<Cancellation>,
            StepContext,
            CancelData,
        ) -> BoxFuture<'static, StepResult>| {
            let me = self.clone();
            move |ctx: StepContext, data: CancelData| f(me.clone(), ctx, data)
        };
        Definition::new(SAGA)
            .local("cancel_order", CancelOrder)
            .remote(
                "refund_payment",
                step(|me, ctx, data| Box::pin(me.refund(ctx, data))),
            )
            .max_attempts("refund_payment", GIVE_BACK_ATTEMPTS)
            .remote(
                "restock",
                step(|me, ctx, data| Box::pin(me.restock(ctx, data))),
            )
            .max_attempts("restock", GIVE_BACK_ATTEMPTS)
            .remote(
                "return_voucher",
                step(|me, ctx, data| Box::pin(me.return_voucher(ctx, data))),
            )
            .max_attempts("return_voucher", GIVE_BACK_ATTEMPTS)
            .local("mark_refunded", MarkRefunded)
    }

    async fn refund(self: Arc<Self>, ctx: StepContext, data: CancelData) -> StepResult {
        let Some(payment_id) = data.payment_id else {
            return Ok(Outcome::Done(data));
        };
        let request = RefundPaymentRequest {
            idempotency_key: ctx.idempotency_key(),
            payment_id: payment_id.to_string(),
            amount: None,
        };
        match self
            .payments
            .refund_payment(&self.context(&ctx), &request)
            .await
        {
            Ok(_) => Ok(Outcome::Done(data)),
            // Authorised but never captured: the hold is lifted instead.
            Err(e) if e.code() == ErrorCode::FailedPrecondition => {
                let void = VoidPaymentRequest {
                    idempotency_key: format!("{}:void", ctx.idempotency_key()),
                    payment_id: payment_id.to_string(),
                };
                match self.payments.void_payment(&self.context(&ctx), &void).await {
                    Ok(_) => Ok(Outcome::Done(data)),
                    Err(v) => Err(retry("payment.refund_payment then void_payment", v)),
                }
            }
            Err(e) => Err(retry("payment.refund_payment", e)),
        }
    }

    async fn restock(self: Arc<Self>, ctx: StepContext, data: CancelData) -> StepResult {
        let request = RestockReservationRequest {
            reservation_id: data.order_id.to_string(),
        };
        match self
            .products
            .restock_reservation(&self.context(&ctx), &request)
            .await
        {
            Ok(_) => Ok(Outcome::Done(data)),
            Err(e) => Err(retry("product.restock_reservation", e)),
        }
    }

    async fn return_voucher(self: Arc<Self>, ctx: StepContext, data: CancelData) -> StepResult {
        if !data.voucher {
            return Ok(Outcome::Done(data));
        }
        let request = RedemptionRequest {
            order_id: data.order_id.to_string(),
        };
        match self
            .vouchers
            .return_redemption(&self.context(&ctx), &request)
            .await
        {
            Ok(_) => Ok(Outcome::Done(data)),
            Err(e) => Err(retry("voucher.return_redemption", e)),
        }
    }
}

fn local_error(error: impl std::fmt::Display) -> StepError {
    StepError::transient(format!("recording the cancellation: {error}"))
}

/// Whether an order in `status` whose sub-orders are in `sub_orders` may be cancelled: paid,
/// and nothing shipped.
pub fn cancellable(status: OrderStatus, sub_orders: &[SubOrderStatus]) -> Result<(), String> {
    if status != OrderStatus::Paid {
        return Err(format!(
            "the order is {status}; only a paid order that has not shipped can be cancelled"
        ));
    }
    if sub_orders
        .iter()
        .any(|s| matches!(s, SubOrderStatus::Shipped | SubOrderStatus::Delivered))
    {
        return Err("part of the order has shipped; it can no longer be cancelled".into());
    }
    Ok(())
}

struct CancelOrder;

impl LocalStep<CancelData> for CancelOrder {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        ctx: &'c StepContext,
        data: &'c mut CancelData,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            let order = locked(conn, data.order_id).await?;
            data.payment_id = order.payment_id;
            data.voucher = !order.voucher_code.is_empty();
            if matches!(
                order.status(),
                OrderStatus::Cancelled | OrderStatus::Refunded | OrderStatus::PartiallyRefunded
            ) {
                return Ok(());
            }
            let subs: Vec<SubOrderStatus> = store::sub_orders_of(&mut *conn, &[data.order_id])
                .await
                .map_err(local_error)?
                .iter()
                .map(|s| s.status())
                .collect();
            if let Err(why) = cancellable(order.status(), &subs) {
                return Err(StepError::refused(
                    "not_cancellable",
                    serde_json::json!(why),
                ));
            }
            let record = FailureRecord {
                code: failure::CANCELLED_BY_CUSTOMER.into(),
                message: data.reason.clone(),
                ..FailureRecord::default()
            };
            let cancelled = Move {
                to: OrderStatus::Cancelled,
                sub_orders: Some((&[SubOrderStatus::Paid], SubOrderStatus::Cancelled)),
                failure: Some(&record),
                actor: data.actor(),
                reason: &data.reason,
                event: Change::Cancelled,
            };
            outbox::apply(conn, &ctx.current_trace(), data.order_id, cancelled)
                .await
                .map_err(local_error)
        })
    }
}

struct MarkRefunded;

impl LocalStep<CancelData> for MarkRefunded {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        ctx: &'c StepContext,
        data: &'c mut CancelData,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            let order = locked(conn, data.order_id).await?;
            if order.status() != OrderStatus::Cancelled {
                return Ok(());
            }
            let refunded = Move {
                to: OrderStatus::Refunded,
                sub_orders: None,
                failure: None,
                actor: Actor::System,
                reason: "payment refunded, stock and voucher given back",
                event: Change::Refunded,
            };
            outbox::apply(conn, &ctx.current_trace(), data.order_id, refunded)
                .await
                .map_err(local_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saga_data_stored_with_a_trace_copy_still_loads() {
        // Cancellations created before the trace lived only with the saga instance carried a
        // copy of it; those still running during a deploy must go on.
        let order_id = Uuid::now_v7();
        let stored = serde_json::json!({
            "order_id": order_id,
            "actor": "customer",
            "actor_id": Uuid::now_v7(),
            "reason": "changed my mind",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "vendor=1",
            "payment_id": null,
            "voucher": true,
        });
        let data: CancelData = serde_json::from_value(stored).expect("old cancellation data");
        assert_eq!(data.order_id, order_id);
        assert_eq!(data.reason, "changed my mind");
        assert!(data.voucher);
        let saved = serde_json::to_value(&data).unwrap();
        assert!(saved.get("traceparent").is_none(), "{saved}");
    }
}
