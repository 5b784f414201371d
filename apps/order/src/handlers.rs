//! The RPC handlers of the order contract.
//!
//! Who may do what:
//! - A customer quotes and checks out their own cart, lists and reads their own orders (with
//!   sub-orders and history), reads their sub-orders, and cancels an order before anything
//!   shipped.
//! - A seller lists and reads the sub-orders of the shops they own (the shop service says
//!   who owns a shop) and ships and delivers them; never the order around them.
//! - Admins read everything, ship and deliver any sub-order, cancel any order, and operate
//!   the sagas.
//! - Anything else answers exactly like an id that does not exist.

use std::sync::Arc;
use std::time::Duration;

use api::order::{
    AbortSagaRequest, CancelOrderRequest, CheckoutQuote, CheckoutRequest, CheckoutResponse,
    DeliverSubOrderRequest, GetOrderRequest, GetSagaRequest, GetSubOrderRequest, ListOrdersRequest,
    ListOrdersResponse, ListSagasRequest, ListSagasResponse, ListShopSubOrdersRequest,
    ListSubOrdersResponse, Order, OrderService, OrderWatch, QuoteCheckoutRequest, RetrySagaRequest,
    Saga, SagaStep, ShipSubOrderRequest, SubOrder, WatchOrderRequest,
};
use api::shop::{GetShopAccessRequest, ShopClient};
use api::timestamp;
use rpc::{Context, ErrorCode, Principal};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::cancellation::{self, CancelData, cancellable};
use crate::checkout::{self, Checkout, CheckoutData, Priced, PricingError};
use crate::domain::{
    CheckoutOrder, OrderId, OrderQuery, OrderStatus, PricingRules, QuoteOrder, SagaQuery, Shipment,
    SubOrderQuery, SubOrderStatus, Transition, fulfilment_status,
};
use crate::error::Error;
use crate::outbox::{self, Change};
use crate::store::{self, Actor, OrderRecord, SubOrderRecord};
use crate::views;

/// What a checkout keeps of its deadline for answering after the saga's wait.
const ANSWER_MARGIN: Duration = Duration::from_millis(300);

/// The order service: its database, the saga orchestrator, the shop service it asks, and the
/// checkout's pricing (which quotes use too).
pub struct OrderHandlers {
    pool: PgPool,
    orchestrator: saga::Orchestrator,
    checkout: Arc<Checkout>,
    shops: ShopClient,
    rules: Arc<PricingRules>,
    /// The longest a checkout or cancellation waits for its saga before answering 202.
    wait: Duration,
}

impl OrderHandlers {
    pub fn new(
        pool: PgPool,
        orchestrator: saga::Orchestrator,
        checkout: Arc<Checkout>,
        nats: rpc::Client,
        rules: Arc<PricingRules>,
        wait: Duration,
    ) -> Self {
        Self {
            pool,
            orchestrator,
            checkout,
            shops: ShopClient::new(nats),
            rules,
            wait,
        }
    }

    async fn begin(&self, ctx: &Context) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(match ctx.remaining() {
            Some(remaining) => ::db::postgres::begin_within(&self.pool, remaining).await?,
            None => self.pool.begin().await?,
        })
    }

    /// How long a request may wait for its saga: the configured bound, within its deadline.
    fn wait_within(&self, ctx: &Context) -> Duration {
        match ctx.remaining() {
            Some(remaining) => remaining.saturating_sub(ANSWER_MARGIN).min(self.wait),
            None => self.wait,
        }
    }

    /// Whether `principal` owns `shop_id` (admins own every shop for this purpose); a shop
    /// the shop service does not know is nobody's.
    async fn manages_shop(
        &self,
        ctx: &Context,
        principal: &Principal,
        shop_id: Uuid,
    ) -> Result<bool, rpc::Error> {
        if principal.is_admin() {
            return Ok(true);
        }
        if !principal.has_role(rpc::roles::SELLER) {
            return Ok(false);
        }
        let request = GetShopAccessRequest {
            shop_id: shop_id.to_string(),
        };
        match self.shops.get_shop_access(ctx, &request).await {
            Ok(access) => Ok(access.owner_id == principal.user_id),
            Err(error) if error.code() == ErrorCode::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The order if `principal` may see it: its customer, or an admin.
    async fn visible_order(&self, principal: &Principal, id: Uuid) -> Result<OrderRecord, Error> {
        let record = store::get_order(&self.pool, id)
            .await?
            .ok_or(Error::OrderNotFound(id))?;
        if principal.is_admin() || record.user_id.to_string() == principal.user_id {
            Ok(record)
        } else {
            Err(Error::OrderNotFound(id))
        }
    }

    /// The order as it stands, answered 201 (200 for a cancellation) once its saga ended and
    /// 202 while it runs.
    async fn answer(&self, id: Uuid, settled: u16) -> Result<CheckoutResponse, rpc::Error> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let record = store::get_order(&mut *conn, id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::OrderNotFound(id))?;
        let done = match store::cancellation_saga(&mut *conn, id)
            .await
            .map_err(Error::from)?
        {
            Some(_) => !matches!(record.status(), OrderStatus::Paid | OrderStatus::Cancelled),
            None => record.status().is_settled(),
        };
        let status = if done { settled } else { 202 };
        let order = views::order(&mut conn, record, true)
            .await
            .map_err(Error::from)?;
        Ok(CheckoutResponse {
            http_status: i32::from(status),
            order_url: format!("/api/v1/orders/{id}"),
            order: Some(order),
        })
    }

    async fn move_sub_order(
        &self,
        ctx: &Context,
        id: Uuid,
        next: SubOrderStatus,
        shipment: Option<&Shipment>,
    ) -> Result<SubOrder, rpc::Error> {
        let principal = ctx.require_principal()?;
        let missing = || rpc::Error::from(Error::SubOrderNotFound(id));
        let found = store::get_sub_order(&self.pool, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        if !self.manages_shop(ctx, principal, found.shop_id).await? {
            return Err(missing());
        }
        let actor = actor_of(principal, Actor::Seller);
        let mut tx = self.begin(ctx).await?;
        // The order's row first: its sub-orders change one at a time, and not while it is
        // being cancelled.
        let order = store::lock_order(&mut tx, found.order_id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        let sub = store::get_sub_order(&mut *tx, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        match sub.status().to(next) {
            Transition::AlreadyDone => {
                let same = shipment.is_none_or(|s| {
                    s.carrier == sub.carrier && s.tracking_number == sub.tracking_number
                });
                if same {
                    tx.rollback().await.map_err(Error::from)?;
                    return Ok(views::sub_order_with_lines(
                        &mut *self.pool.acquire().await.map_err(Error::from)?,
                        sub,
                    )
                    .await
                    .map_err(Error::from)?);
                }
                return Err(Error::NotNow(format!(
                    "sub-order {id} already shipped with {} {}",
                    sub.carrier, sub.tracking_number
                ))
                .into());
            }
            Transition::Refused => {
                let needed = match next {
                    SubOrderStatus::Shipped => "only a paid sub-order can be shipped",
                    _ => "only a shipped sub-order can be delivered",
                };
                return Err(
                    Error::NotNow(format!("sub-order {id} is {}; {needed}", sub.status())).into(),
                );
            }
            Transition::Allowed => {}
        }
        // A cancellation accepted but not yet run leaves the order paid for a moment: shipping
        // then would make the cancellation refuse after the customer was told it was taken.
        if store::cancellation_saga(&mut *tx, order.id)
            .await
            .map_err(Error::from)?
            .is_some()
        {
            return Err(Error::NotNow(format!(
                "order {} is being cancelled; its sub-orders can no longer be shipped",
                order.id
            ))
            .into());
        }
        store::set_sub_order_status(
            &mut tx,
            id,
            next,
            shipment.map(|s| (s.carrier, s.tracking_number.as_str())),
        )
        .await
        .map_err(Error::from)?;
        let reason = shipment
            .map(|s| format!("{} {}", s.carrier, s.tracking_number))
            .unwrap_or_default();
        store::add_history(&mut tx, order.id, Some(id), next.as_str(), actor, &reason)
            .await
            .map_err(Error::from)?;
        let statuses: Vec<SubOrderStatus> = store::sub_orders_of(&mut *tx, &[order.id])
            .await
            .map_err(Error::from)?
            .iter()
            .map(SubOrderRecord::status)
            .collect();
        let order_next = fulfilment_status(&statuses);
        if order.status().to(order_next) == Transition::Allowed {
            store::set_status(
                &mut tx,
                order.id,
                order_next,
                &[],
                None,
                None,
                actor,
                &reason,
            )
            .await
            .map_err(Error::from)?;
        }
        let change = match next {
            SubOrderStatus::Shipped => Change::Shipped { sub_order_id: id },
            _ => Change::Delivered { sub_order_id: id },
        };
        outbox::record(&mut tx, ctx.trace(), order.id, change)
            .await
            .map_err(Error::from)?;
        let sub = store::get_sub_order(&mut *tx, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        let message = views::sub_order_with_lines(&mut tx, sub)
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        Ok(message)
    }
}

/// The caller's user id; the gateway only forwards principals whose id is a UUID.
fn user_id(principal: &Principal) -> Result<Uuid, rpc::Error> {
    Uuid::try_parse(&principal.user_id)
        .map_err(|_| rpc::Error::permission_denied("the caller's user id is not a UUID"))
}

fn actor_of(principal: &Principal, otherwise: fn(Uuid) -> Actor) -> Actor {
    let id = Uuid::try_parse(&principal.user_id).unwrap_or_default();
    if principal.is_admin() {
        Actor::Admin(id)
    } else {
        otherwise(id)
    }
}

fn saga_message(summary: saga::Summary, steps: Vec<saga::StepRecord>) -> Saga {
    Saga {
        id: summary.id.to_string(),
        saga: summary.saga,
        state: summary.state.as_str().to_owned(),
        current_step: summary.current_step.unwrap_or_default(),
        attempts: summary.attempts as i32,
        last_error: summary.last_error.unwrap_or_default(),
        refusal_code: summary.refusal_code.unwrap_or_default(),
        refusal_detail: summary
            .refusal_detail
            .map(|d| d.to_string())
            .unwrap_or_default(),
        created_at: timestamp(summary.created_at),
        updated_at: timestamp(summary.updated_at),
        finished_at: summary.finished_at.and_then(timestamp),
        steps: steps
            .into_iter()
            .map(|s| SagaStep {
                name: s.step,
                phase: s.phase.as_str().to_owned(),
                attempts: s.attempts as i32,
                outcome: s.outcome.as_str().to_owned(),
                last_error: s.last_error.unwrap_or_default(),
                started_at: timestamp(s.started_at),
                finished_at: s.finished_at.and_then(timestamp),
                duration_ms: s.duration_ms.unwrap_or_default(),
            })
            .collect(),
    }
}

fn saga_error(id: Uuid) -> impl Fn(saga::Error) -> rpc::Error {
    move |error| match error {
        saga::Error::NotFound => Error::SagaNotFound(id).into(),
        saga::Error::InvalidArgument(why) => rpc::Error::invalid_field("cursor", why),
        other => Error::from(other).into(),
    }
}

impl OrderService for OrderHandlers {
    async fn checkout(
        &self,
        ctx: Context,
        request: CheckoutRequest,
    ) -> Result<CheckoutResponse, rpc::Error> {
        let principal = ctx.require_principal()?;
        let user_id = user_id(principal)?;
        let checkout = CheckoutOrder::parse(&request, &self.rules)?;
        let id = Uuid::now_v7();
        let mut tx = self.begin(&ctx).await?;
        let order_id = match store::insert_order(&mut tx, id, user_id, &checkout)
            .await
            .map_err(Error::from)?
        {
            Some(_) => {
                store::add_history(&mut tx, id, None, "pending", Actor::Customer(user_id), "")
                    .await
                    .map_err(Error::from)?;
                outbox::record(&mut tx, ctx.trace(), id, Change::Created)
                    .await
                    .map_err(Error::from)?;
                let data = CheckoutData {
                    order_id: id,
                    user_id,
                    shipping_address_id: checkout.shipping_address_id,
                    shipping_method: checkout.shipping_method.clone(),
                    voucher_code: checkout.voucher_code.clone(),
                    payment_method_id: checkout.payment_method_id.clone(),
                    expected_total: checkout.expected_total.clone(),
                    address: None,
                    priced: None,
                    discount: None,
                    payment_id: None,
                };
                self.orchestrator
                    .create(&mut tx, checkout::SAGA, id, &data, ctx.trace())
                    .await
                    .map_err(Error::from)?;
                tx.commit().await.map_err(Error::from)?;
                self.orchestrator.drive(id);
                id
            }
            None => {
                // The customer's key names an order already: the same request gets it; a
                // different one is refused.
                tx.rollback().await.map_err(Error::from)?;
                let existing = store::find_by_key(&self.pool, user_id, &checkout.idempotency_key)
                    .await
                    .map_err(Error::from)?
                    .ok_or_else(|| Error::KeyReused(checkout.idempotency_key.clone()))?;
                let (expected_total, expected_currency) = match &checkout.expected_total {
                    Some((amount, currency)) => (Some(*amount), Some(currency.as_str())),
                    None => (None, None),
                };
                let same = existing.shipping_address_id == checkout.shipping_address_id
                    && existing.shipping_method == checkout.shipping_method
                    && existing.payment_method_id == checkout.payment_method_id
                    && existing.requested_voucher_code
                        == checkout.voucher_code.as_deref().unwrap_or_default()
                    && existing.expected_total == expected_total
                    && existing.expected_currency.as_deref() == expected_currency;
                if !same {
                    return Err(Error::KeyReused(checkout.idempotency_key).into());
                }
                existing.id
            }
        };
        // A failure to wait is no failure of the checkout: it answers 202.
        let _ = self
            .orchestrator
            .wait(order_id, self.wait_within(&ctx))
            .await;
        self.answer(order_id, 201).await
    }

    /// Prices the caller's cart with the checkout's own pricing; nothing is reserved or
    /// written. A cart that cannot be checked out is answered with the reason, not an error,
    /// so the checkout page can show it beside the cart.
    async fn quote_checkout(
        &self,
        ctx: Context,
        request: QuoteCheckoutRequest,
    ) -> Result<CheckoutQuote, rpc::Error> {
        let principal = ctx.require_principal()?;
        let user_id = user_id(principal)?;
        let quote = QuoteOrder::parse(&request, &self.rules)?;
        let unavailable = |why: String| {
            tracing::warn!(error = %why, "a checkout quote could not be priced");
            rpc::Error::from(Error::PricingUnavailable)
        };
        let address = match self
            .checkout
            .address_of(&ctx, user_id, quote.shipping_address_id)
            .await
        {
            Ok(address) => address,
            Err(PricingError::Refused(_)) => {
                return Err(Error::AddressNotFound(quote.shipping_address_id).into());
            }
            Err(PricingError::Unavailable(why)) => return Err(unavailable(why)),
        };
        match self
            .checkout
            .price(
                &ctx,
                user_id,
                quote.voucher_code.as_deref(),
                &quote.shipping_method,
                &address.country_code,
            )
            .await
        {
            Ok(Priced { order, discount }) => Ok(views::quote(
                &order,
                discount.as_ref(),
                &quote.shipping_method,
            )),
            Err(PricingError::Refused(problem)) => {
                Ok(views::quote_problem(problem, &quote.shipping_method))
            }
            Err(PricingError::Unavailable(why)) => Err(unavailable(why)),
        }
    }

    async fn list_orders(
        &self,
        ctx: Context,
        request: ListOrdersRequest,
    ) -> Result<ListOrdersResponse, rpc::Error> {
        let principal = ctx.require_principal()?;
        let query = OrderQuery::parse(&request)?;
        let user = match query.user_id {
            Some(other) if principal.is_admin() => other,
            Some(other) if other.to_string() != principal.user_id => {
                return Err(rpc::Error::permission_denied(
                    "only admins may list another user's orders",
                ));
            }
            _ => user_id(principal)?,
        };
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let records = store::list_orders(&mut *conn, user, &query)
            .await
            .map_err(Error::from)?;
        let (records, next_cursor) = query.page.finish(records, |r| r.id);
        let orders = views::orders(&mut conn, records)
            .await
            .map_err(Error::from)?;
        Ok(ListOrdersResponse {
            orders,
            next_cursor,
        })
    }

    async fn get_order(&self, ctx: Context, request: GetOrderRequest) -> Result<Order, rpc::Error> {
        let principal = ctx.require_principal()?;
        let id = OrderId::parse("id", &request.id)?.0;
        let record = self.visible_order(principal, id).await?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(views::order(&mut conn, record, true)
            .await
            .map_err(Error::from)?)
    }

    /// The snapshot of a live subscription, and the access check before anything is
    /// streamed: the customer and admins see every sub-order; a seller sees the order only
    /// when they own the shop of one of its sub-orders, and then only those; anyone else is
    /// told the order does not exist.
    async fn watch_order(
        &self,
        ctx: Context,
        request: WatchOrderRequest,
    ) -> Result<OrderWatch, rpc::Error> {
        let principal = ctx.require_principal()?;
        let id = OrderId::parse("id", &request.id)?.0;
        let missing = || rpc::Error::from(Error::OrderNotFound(id));
        let record = store::get_order(&self.pool, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        let sub_orders = store::sub_orders_of(&self.pool, &[id])
            .await
            .map_err(Error::from)?;
        let everything = principal.is_admin() || record.user_id.to_string() == principal.user_id;
        let visible = if everything {
            sub_orders
        } else {
            let mut shops: Vec<Uuid> = sub_orders.iter().map(|s| s.shop_id).collect();
            shops.sort_unstable();
            shops.dedup();
            let mut owned = Vec::new();
            for shop_id in shops {
                if self.manages_shop(&ctx, principal, shop_id).await? {
                    owned.push(shop_id);
                }
            }
            if owned.is_empty() {
                return Err(missing());
            }
            sub_orders
                .into_iter()
                .filter(|s| owned.contains(&s.shop_id))
                .collect()
        };
        Ok(views::watch(&record, visible, everything))
    }

    async fn cancel_order(
        &self,
        ctx: Context,
        request: CancelOrderRequest,
    ) -> Result<CheckoutResponse, rpc::Error> {
        let principal = ctx.require_principal()?;
        let id = OrderId::parse("id", &request.id)?.0;
        let record = self.visible_order(principal, id).await?;
        let reason = request.reason.trim().to_owned();
        let mut tx = self.begin(&ctx).await?;
        let order = store::lock_order(&mut tx, record.id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::OrderNotFound(id))?;
        let saga_id = match store::cancellation_saga(&mut *tx, id)
            .await
            .map_err(Error::from)?
        {
            // Cancelled already (or being cancelled): the same answer again.
            Some(saga_id) => {
                tx.rollback().await.map_err(Error::from)?;
                saga_id
            }
            None => {
                let subs: Vec<SubOrderStatus> = store::sub_orders_of(&mut *tx, &[id])
                    .await
                    .map_err(Error::from)?
                    .iter()
                    .map(SubOrderRecord::status)
                    .collect();
                cancellable(order.status(), &subs).map_err(Error::NotNow)?;
                let saga_id = Uuid::now_v7();
                let actor = actor_of(principal, Actor::Customer);
                store::insert_cancellation(&mut tx, id, saga_id, actor, &reason)
                    .await
                    .map_err(Error::from)?;
                let data = CancelData {
                    order_id: id,
                    actor: if principal.is_admin() {
                        "admin"
                    } else {
                        "customer"
                    }
                    .into(),
                    actor_id: user_id(principal)?,
                    reason: if reason.is_empty() {
                        "cancelled by the customer".into()
                    } else {
                        reason
                    },
                    payment_id: None,
                    voucher: false,
                };
                self.orchestrator
                    .create(&mut tx, cancellation::SAGA, saga_id, &data, ctx.trace())
                    .await
                    .map_err(Error::from)?;
                tx.commit().await.map_err(Error::from)?;
                self.orchestrator.drive(saga_id);
                saga_id
            }
        };
        let _ = self
            .orchestrator
            .wait(saga_id, self.wait_within(&ctx))
            .await;
        self.answer(id, 200).await
    }

    async fn list_shop_sub_orders(
        &self,
        ctx: Context,
        request: ListShopSubOrdersRequest,
    ) -> Result<ListSubOrdersResponse, rpc::Error> {
        let principal = ctx.require_principal()?;
        let query = SubOrderQuery::parse(&request)?;
        if !self.manages_shop(&ctx, principal, query.shop_id).await? {
            return Err(Error::ShopNotFound(query.shop_id).into());
        }
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let records = store::list_shop_sub_orders(&mut *conn, &query)
            .await
            .map_err(Error::from)?;
        let (records, next_cursor) = query.page.finish(records, |r| r.id);
        let mut sub_orders = Vec::with_capacity(records.len());
        for record in records {
            sub_orders.push(
                views::sub_order_with_lines(&mut conn, record)
                    .await
                    .map_err(Error::from)?,
            );
        }
        Ok(ListSubOrdersResponse {
            sub_orders,
            next_cursor,
        })
    }

    async fn get_sub_order(
        &self,
        ctx: Context,
        request: GetSubOrderRequest,
    ) -> Result<SubOrder, rpc::Error> {
        let principal = ctx.require_principal()?;
        let id = OrderId::parse("id", &request.id)?.0;
        let missing = || rpc::Error::from(Error::SubOrderNotFound(id));
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let record = store::get_sub_order(&mut *conn, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        let order = store::get_order(&mut *conn, record.order_id)
            .await
            .map_err(Error::from)?
            .ok_or_else(missing)?;
        let customer = order.user_id.to_string() == principal.user_id;
        if !customer && !self.manages_shop(&ctx, principal, record.shop_id).await? {
            return Err(missing());
        }
        Ok(views::sub_order_with_lines(&mut conn, record)
            .await
            .map_err(Error::from)?)
    }

    async fn ship_sub_order(
        &self,
        ctx: Context,
        request: ShipSubOrderRequest,
    ) -> Result<SubOrder, rpc::Error> {
        let shipment = Shipment::parse(&request)?;
        self.move_sub_order(&ctx, shipment.id, SubOrderStatus::Shipped, Some(&shipment))
            .await
    }

    async fn deliver_sub_order(
        &self,
        ctx: Context,
        request: DeliverSubOrderRequest,
    ) -> Result<SubOrder, rpc::Error> {
        let id = OrderId::parse("id", &request.id)?.0;
        self.move_sub_order(&ctx, id, SubOrderStatus::Delivered, None)
            .await
    }

    async fn list_sagas(
        &self,
        _ctx: Context,
        request: ListSagasRequest,
    ) -> Result<ListSagasResponse, rpc::Error> {
        let query = SagaQuery::parse(&request)?;
        let state = match &query.state {
            Some(state) => Some(
                state
                    .parse::<saga::State>()
                    .map_err(|e| rpc::Error::invalid_field("state", e.to_string()))?,
            ),
            None => None,
        };
        let filter = saga::ListFilter {
            state,
            saga: query.saga,
            cursor: query.cursor,
            limit: query.page_size as u32,
        };
        let page = self
            .orchestrator
            .list(&filter)
            .await
            .map_err(saga_error(Uuid::nil()))?;
        Ok(ListSagasResponse {
            sagas: page
                .items
                .into_iter()
                .map(|s| saga_message(s, Vec::new()))
                .collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn get_saga(&self, _ctx: Context, request: GetSagaRequest) -> Result<Saga, rpc::Error> {
        let id = OrderId::parse("id", &request.id)?.0;
        let detail = self
            .orchestrator
            .get(id)
            .await
            .map_err(saga_error(id))?
            .ok_or(Error::SagaNotFound(id))?;
        Ok(saga_message(detail.summary, detail.steps))
    }

    async fn retry_saga(
        &self,
        _ctx: Context,
        request: RetrySagaRequest,
    ) -> Result<Saga, rpc::Error> {
        let id = OrderId::parse("id", &request.id)?.0;
        let summary = self.orchestrator.retry(id).await.map_err(saga_error(id))?;
        self.orchestrator.drive(id);
        Ok(saga_message(summary, Vec::new()))
    }

    async fn abort_saga(
        &self,
        _ctx: Context,
        request: AbortSagaRequest,
    ) -> Result<Saga, rpc::Error> {
        let id = OrderId::parse("id", &request.id)?.0;
        let summary = self
            .orchestrator
            .abort(id, request.reason.trim())
            .await
            .map_err(saga_error(id))?;
        self.orchestrator.drive(id);
        Ok(saga_message(summary, Vec::new()))
    }
}
