//! The checkout saga: from a pending order to a paid one, or to a failed one with nothing
//! kept.
//!
//! | # | step              | action                                       | compensation            |
//! |---|-------------------|----------------------------------------------|-------------------------|
//! | 0 | open              | (local) nothing: the order exists, pending   | mark the order failed   |
//! | 1 | snapshot_address  | address.get_user_address                     |                         |
//! | 2 | price_cart        | cart.get_checkout_snapshot, shop.lookup_shops, voucher.evaluate | |
//! | 3 | record_order      | (local) sub-orders, lines and figures        |                         |
//! | 4 | reserve_stock     | product.reserve_stock (id = order id)        | product.release_reservation |
//! | 5 | reserve_voucher   | voucher.reserve_voucher (order id)           | voucher.release_redemption |
//! | 6 | authorize_payment | payment.authorize_payment                    | payment.void_payment    |
//! | 7 | commit_voucher    | voucher.commit_redemption                    | voucher.return_redemption |
//! | 8 | commit_stock      | product.commit_reservation                   | product.restock_reservation |
//! | 9 | capture_payment   | payment.capture_payment                      |                         |
//! |10 | mark_paid         | (local) order and sub-orders paid, order.paid |                        |
//! |11 | clear_cart        | cart.complete_checkout                       |                         |
//!
//! Every call carries an idempotency key: the order id for product and voucher (their
//! reservation and redemption ids), the saga's `<instance>:<step>` key for payment. A refusal
//! (out of stock, declined, a price that moved) compensates the steps done, in reverse; the
//! last compensation marks the order failed with the reason. After the payment is captured
//! nothing refuses: the remaining steps retry until they are done.

use std::sync::Arc;
use std::time::Duration;

use api::address::{AddressClient, GetUserAddressRequest};
use api::cart::{CartClient, CartLineRef, CompleteCheckoutRequest, GetCheckoutSnapshotRequest};
use api::payment::{
    AuthorizePaymentRequest, CapturePaymentRequest, PaymentClient, VoidPaymentRequest,
};
use api::product::{
    CheckAvailabilityRequest, CommitReservationRequest, ProductClient, ReleaseReservationRequest,
    ReservationItem, ReserveStockRequest, RestockReservationRequest,
};
use api::shop::{LookupShopsRequest, ShopClient};
use api::voucher::{
    EvaluateVoucherRequest, RedemptionRequest, ReserveVoucherRequest, ShopSubtotal, VoucherClient,
};
use rpc::ErrorCode;
use saga::{BoxFuture, Definition, LocalStep, Outcome, StepContext, StepError};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Discount, Line, OrderStatus, PricedOrder, PricingRules, SubOrderStatus, failure,
};
use crate::outbox::{self, Change, Move};
use crate::store::{self, Actor, AddressSnapshot, FailureRecord, PriceNow};
use crate::views::money;

/// The saga's name, as operators see it.
pub const SAGA: &str = "checkout";

/// How often the payment is asked to authorise before a processing error fails the order.
const AUTHORIZE_ATTEMPTS: u32 = 3;

/// What the checkout saga carries from step to step (stored with the instance).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckoutData {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub shipping_address_id: Uuid,
    pub shipping_method: String,
    pub voucher_code: Option<String>,
    pub payment_method_id: String,
    pub expected_total: Option<(i64, String)>,
    pub address: Option<AddressSnapshot>,
    pub priced: Option<PricedOrder>,
    pub discount: Option<Discount>,
    pub payment_id: Option<Uuid>,
}

impl CheckoutData {
    fn priced(&self) -> Result<&PricedOrder, StepError> {
        self.priced
            .as_ref()
            .ok_or_else(|| StepError::transient("the order has not been priced"))
    }

    fn items(&self) -> Result<Vec<ReservationItem>, StepError> {
        let mut items: Vec<ReservationItem> = Vec::new();
        for line in self.priced()?.sub_orders.iter().flat_map(|s| &s.lines) {
            let id = line.product_id.to_string();
            match items.iter_mut().find(|i| i.product_id == id) {
                Some(item) => item.quantity += i64::from(line.quantity),
                None => items.push(ReservationItem {
                    product_id: id,
                    quantity: i64::from(line.quantity),
                }),
            }
        }
        Ok(items)
    }
}

/// The services the checkout calls, and its settings.
pub struct Checkout {
    pub carts: CartClient,
    pub addresses: AddressClient,
    pub products: ProductClient,
    pub vouchers: VoucherClient,
    pub payments: PaymentClient,
    pub shops: ShopClient,
    pub rules: PricingRules,
    /// How long stock and the voucher are held for the order.
    /// How long stock and voucher uses are held when the settings do not say
    /// (`checkout.reservation_expiry_seconds`).
    pub hold: Duration,
    /// Each call's deadline.
    pub call_timeout: Duration,
}

/// A cart priced for checkout, and the voucher's discount when it takes something off.
#[derive(Clone, Debug)]
pub(crate) struct Priced {
    pub order: PricedOrder,
    pub discount: Option<Discount>,
}

/// Why a cart could not be priced.
#[derive(Debug)]
pub(crate) enum PricingError {
    /// A checkout now would fail, and this is what its order would say.
    Refused(FailureRecord),
    /// A service did not answer as it should: trying again later may succeed. The text is
    /// for the logs, not the customer.
    Unavailable(String),
}

impl PricingError {
    fn refused(code: &str, message: impl Into<String>) -> Self {
        PricingError::Refused(FailureRecord {
            code: code.to_owned(),
            message: message.into(),
            ..FailureRecord::default()
        })
    }

    fn unavailable(call: &str, error: rpc::Error) -> Self {
        PricingError::Unavailable(format!("{call}: {error}"))
    }
}

impl From<PricingError> for StepError {
    fn from(error: PricingError) -> Self {
        match error {
            PricingError::Refused(record) => refuse(record),
            PricingError::Unavailable(why) => StepError::transient(why),
        }
    }
}

/// A refusal with the record the failed order will show.
fn refuse(record: FailureRecord) -> StepError {
    let code = record.code.clone();
    StepError::refused(code, serde_json::to_value(record).unwrap_or_default())
}

fn refuse_with(code: &str, message: impl Into<String>) -> StepError {
    refuse(FailureRecord {
        code: code.to_owned(),
        message: message.into(),
        ..FailureRecord::default()
    })
}

/// Whether trying again later may succeed.
fn is_transient(error: &rpc::Error) -> bool {
    matches!(
        error.code(),
        ErrorCode::Unavailable
            | ErrorCode::DeadlineExceeded
            | ErrorCode::Internal
            | ErrorCode::RateLimited
    )
}

/// A failure of a call the step cannot interpret as a business answer: retried.
fn transient(call: &str, error: rpc::Error) -> StepError {
    StepError::transient(format!("{call}: {error}"))
}

/// An action's call answered: done, refused with `code` when the service said no, or tried
/// again when it could not answer.
fn done_or_refused<T>(
    call: &str,
    answer: Result<T, rpc::Error>,
    data: CheckoutData,
    code: &str,
) -> StepResult {
    match answer {
        Ok(_) => Ok(Outcome::Done(data)),
        Err(e) if !is_transient(&e) => Err(refuse_with(code, format!("{call}: {}", e.message()))),
        Err(e) => Err(transient(call, e)),
    }
}

/// A compensation's call answered: done when it gave back, or when there was nothing to give
/// back (not found, already released); anything else is tried again.
fn undone<T>(call: &str, answer: Result<T, rpc::Error>, data: CheckoutData) -> StepResult {
    match answer {
        Ok(_) => Ok(Outcome::Done(data)),
        Err(e) if nothing_to_undo(&e) => Ok(Outcome::Done(data)),
        Err(e) => Err(transient(call, e)),
    }
}

/// For compensations: nothing to give back is as good as given back.
fn nothing_to_undo(error: &rpc::Error) -> bool {
    matches!(
        error.code(),
        ErrorCode::NotFound | ErrorCode::FailedPrecondition
    )
}

impl Checkout {
    fn context(&self, ctx: &StepContext) -> rpc::Context {
        rpc::Context::background()
            .with_timeout(self.call_timeout)
            .with_trace(ctx.current_trace())
    }

    /// The saga's definition, its steps bound to this service's clients.
    pub fn definition(self: Arc<Self>) -> Definition<CheckoutData> {
        let step =
            |f: fn(Arc<Checkout>, StepContext, CheckoutData) -> BoxFuture<'static, StepResult>| {
                let me = self.clone();
                move |ctx: StepContext, data: CheckoutData| f(me.clone(), ctx, data)
            };
        Definition::new(SAGA)
            .local("open", Open)
            .compensate_local(MarkFailed)
            .remote(
                "snapshot_address",
                step(|me, ctx, data| Box::pin(me.snapshot_address(ctx, data))),
            )
            .remote(
                "price_cart",
                step(|me, ctx, data| Box::pin(me.price_cart(ctx, data))),
            )
            .local("record_order", RecordOrder)
            .remote(
                "reserve_stock",
                step(|me, ctx, data| Box::pin(me.reserve_stock(ctx, data))),
            )
            .compensate_remote(step(|me, ctx, data| Box::pin(me.release_stock(ctx, data))))
            .remote(
                "reserve_voucher",
                step(|me, ctx, data| Box::pin(me.reserve_voucher(ctx, data))),
            )
            .compensate_remote(step(|me, ctx, data| {
                Box::pin(me.release_voucher(ctx, data))
            }))
            .remote(
                "authorize_payment",
                step(|me, ctx, data| Box::pin(me.authorize(ctx, data))),
            )
            .compensate_remote(step(|me, ctx, data| Box::pin(me.void(ctx, data))))
            .max_attempts("authorize_payment", AUTHORIZE_ATTEMPTS)
            .remote(
                "commit_voucher",
                step(|me, ctx, data| Box::pin(me.commit_voucher(ctx, data))),
            )
            .compensate_remote(step(|me, ctx, data| Box::pin(me.return_voucher(ctx, data))))
            .remote(
                "commit_stock",
                step(|me, ctx, data| Box::pin(me.commit_stock(ctx, data))),
            )
            .compensate_remote(step(|me, ctx, data| Box::pin(me.restock(ctx, data))))
            .remote(
                "capture_payment",
                step(|me, ctx, data| Box::pin(me.capture(ctx, data))),
            )
            .max_attempts("capture_payment", 20)
            .local("mark_paid", MarkPaid)
            .remote(
                "clear_cart",
                step(|me, ctx, data| Box::pin(me.clear_cart(ctx, data))),
            )
            .max_attempts("clear_cart", 10)
    }

    async fn snapshot_address(
        self: Arc<Self>,
        ctx: StepContext,
        mut data: CheckoutData,
    ) -> StepResult {
        let address = self
            .address_of(&self.context(&ctx), data.user_id, data.shipping_address_id)
            .await?;
        data.address = Some(address);
        Ok(Outcome::Done(data))
    }

    async fn price_cart(self: Arc<Self>, ctx: StepContext, mut data: CheckoutData) -> StepResult {
        let country = data
            .address
            .as_ref()
            .map(|a| a.country_code.clone())
            .unwrap_or_default();
        let Priced { order, discount } = self
            .price(
                &self.context(&ctx),
                data.user_id,
                data.voucher_code.as_deref(),
                &data.shipping_method,
                &country,
            )
            .await?;
        if let Some((expected, expected_currency)) = &data.expected_total
            && (*expected != order.figures.total || *expected_currency != order.currency)
        {
            return Err(refuse(FailureRecord {
                code: failure::PRICE_CHANGED.into(),
                message: format!(
                    "the total is now {} {}, not the {expected} {expected_currency} shown",
                    order.figures.total, order.currency
                ),
                price_changes: order
                    .sub_orders
                    .iter()
                    .flat_map(|s| &s.lines)
                    .map(|l| PriceNow {
                        product_id: l.product_id,
                        unit_price: l.unit_price,
                    })
                    .collect(),
                ..FailureRecord::default()
            }));
        }
        data.discount = discount;
        data.priced = Some(order);
        Ok(Outcome::Done(data))
    }

    /// The customer's address as the order keeps it (snapshot_address, and the quote).
    pub(crate) async fn address_of(
        &self,
        context: &rpc::Context,
        user_id: Uuid,
        address_id: Uuid,
    ) -> Result<AddressSnapshot, PricingError> {
        let request = GetUserAddressRequest {
            user_id: user_id.to_string(),
            id: address_id.to_string(),
        };
        match self.addresses.get_user_address(context, &request).await {
            Ok(a) => Ok(AddressSnapshot {
                recipient_name: a.recipient_name,
                phone: a.phone,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                region: a.region,
                postal_code: a.postal_code,
                country_code: a.country_code,
            }),
            Err(e) if e.code() == ErrorCode::NotFound => Err(PricingError::refused(
                failure::ADDRESS_NOT_FOUND,
                format!("address {address_id} is not one of yours"),
            )),
            Err(e) => Err(PricingError::unavailable("address.get_user_address", e)),
        }
    }

    /// Prices the customer's cart as a checkout would now: its lines by shop, the voucher
    /// (`voucher_code`, else the cart's), shipping by `shipping_method` and tax for
    /// `country`. Refused with the reason a checkout would fail with when the cart cannot be
    /// bought. It only reads: the checkout's price step and the quote both price with it, so
    /// a quote shows exactly what the order will charge.
    pub(crate) async fn price(
        &self,
        context: &rpc::Context,
        user_id: Uuid,
        voucher_code: Option<&str>,
        shipping_method: &str,
        country: &str,
    ) -> Result<Priced, PricingError> {
        let cart = self
            .carts
            .get_checkout_snapshot(
                context,
                &GetCheckoutSnapshotRequest {
                    user_id: user_id.to_string(),
                },
            )
            .await
            .map_err(|e| PricingError::unavailable("cart.get_checkout_snapshot", e))?;
        if cart.lines.is_empty() {
            return Err(PricingError::refused(
                failure::EMPTY_CART,
                "the cart is empty",
            ));
        }
        let short: Vec<Uuid> = cart
            .lines
            .iter()
            .filter(|l| matches!(l.status.as_str(), "out_of_stock" | "insufficient_stock"))
            .filter_map(|l| Uuid::try_parse(&l.product_id).ok())
            .collect();
        if !short.is_empty() {
            return Err(PricingError::Refused(FailureRecord {
                code: failure::OUT_OF_STOCK.into(),
                message: "some products are not available in the quantities in the cart".into(),
                product_ids: short,
                ..FailureRecord::default()
            }));
        }
        let gone: Vec<Uuid> = cart
            .lines
            .iter()
            .filter(|l| l.status != "ok")
            .filter_map(|l| Uuid::try_parse(&l.product_id).ok())
            .collect();
        if !gone.is_empty() {
            return Err(PricingError::Refused(FailureRecord {
                code: failure::CART_NOT_READY.into(),
                message: "some products in the cart are no longer sold".into(),
                product_ids: gone,
                ..FailureRecord::default()
            }));
        }
        let currency = cart.currency.clone();
        let mut lines = Vec::with_capacity(cart.lines.len());
        for line in &cart.lines {
            let (Ok(product_id), Ok(shop_id), Some(price)) = (
                Uuid::try_parse(&line.product_id),
                Uuid::try_parse(&line.shop_id),
                line.unit_price.as_ref(),
            ) else {
                return Err(PricingError::Unavailable(format!(
                    "the cart answered a line without ids or price: {line:?}"
                )));
            };
            if price.currency != currency {
                return Err(PricingError::refused(
                    failure::CART_NOT_READY,
                    "the cart holds prices in more than one currency",
                ));
            }
            lines.push(Line {
                product_id,
                shop_id,
                name: line.name.clone(),
                unit_price: price.minor_units,
                quantity: line.quantity,
            });
        }

        // Only shops that trade now sell: a suspended or closed shop's products stay in
        // carts but cannot be bought. The same answer names each shop's sub-order.
        let mut shop_ids: Vec<Uuid> = lines.iter().map(|l| l.shop_id).collect();
        shop_ids.sort();
        shop_ids.dedup();
        let shops = self
            .shops
            .lookup_shops(
                context,
                &LookupShopsRequest {
                    shop_ids: shop_ids.iter().map(Uuid::to_string).collect(),
                },
            )
            .await
            .map_err(|e| PricingError::unavailable("shop.lookup_shops", e))?
            .shops;
        let shop_of = |id: Uuid| shops.iter().find(|s| s.shop_id == id.to_string());
        for shop_id in &shop_ids {
            if shop_of(*shop_id).is_none_or(|s| s.status != "active") {
                return Err(PricingError::Refused(FailureRecord {
                    code: failure::CART_NOT_READY.into(),
                    message: format!("shop {shop_id} is not selling now"),
                    product_ids: lines
                        .iter()
                        .filter(|l| l.shop_id == *shop_id)
                        .map(|l| l.product_id)
                        .collect(),
                    ..FailureRecord::default()
                }));
            }
        }

        // The code named at checkout, else the one applied to the cart.
        let code = voucher_code
            .map(str::to_owned)
            .or_else(|| cart.voucher.as_ref().map(|v| v.code.clone()))
            .filter(|c| !c.is_empty());
        let discount = match code {
            None => None,
            Some(code) => {
                let mut subtotals: Vec<ShopSubtotal> = Vec::new();
                for line in &lines {
                    let shop = line.shop_id.to_string();
                    match subtotals.iter_mut().find(|s| s.shop_id == shop) {
                        Some(s) => s.subtotal_minor_units += line.total(),
                        None => subtotals.push(ShopSubtotal {
                            shop_id: shop,
                            subtotal_minor_units: line.total(),
                        }),
                    }
                }
                let evaluation = self
                    .vouchers
                    .evaluate_voucher(
                        context,
                        &EvaluateVoucherRequest {
                            code: code.clone(),
                            user_id: user_id.to_string(),
                            currency: currency.clone(),
                            subtotals,
                        },
                    )
                    .await
                    .map_err(|e| PricingError::unavailable("voucher.evaluate_voucher", e))?;
                if !evaluation.applies {
                    return Err(PricingError::refused(
                        failure::VOUCHER_UNAVAILABLE,
                        format!("voucher {code:?}: {}", evaluation.message),
                    ));
                }
                let amount = evaluation.discount.map(|d| d.minor_units).unwrap_or(0);
                Some(Discount {
                    code: evaluation.code,
                    shop_id: Uuid::try_parse(&evaluation.shop_id).ok(),
                    amount,
                })
            }
        };
        let Some(mut order) = self.rules.price(
            &currency,
            &lines,
            discount.as_ref(),
            shipping_method,
            country,
        ) else {
            return Err(PricingError::refused(
                failure::SHIPPING_UNAVAILABLE,
                format!(
                    "shipping method {shipping_method:?} is not offered for orders in {currency}"
                ),
            ));
        };
        for sub in &mut order.sub_orders {
            sub.shop_name = shop_of(sub.shop_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
        }
        Ok(Priced {
            order,
            discount: discount.filter(|d| d.amount > 0),
        })
    }

    async fn reserve_stock(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let context = self.context(&ctx);
        let items = data.items()?;
        let request = ReserveStockRequest {
            reservation_id: data.order_id.to_string(),
            items: items.clone(),
            ttl_seconds: self.rules.reservation_hold(self.hold).as_secs() as i32,
        };
        match self.products.reserve_stock(&context, &request).await {
            Ok(_) => Ok(Outcome::Done(data)),
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::FailedPrecondition | ErrorCode::NotFound
                ) =>
            {
                // Which ones: asked once, so the customer is told every product short.
                let short = match self
                    .products
                    .check_availability(
                        &context,
                        &CheckAvailabilityRequest {
                            items: items.clone(),
                        },
                    )
                    .await
                {
                    Ok(answer) => items
                        .iter()
                        .filter(|item| {
                            !answer.items.iter().any(|a| {
                                a.product_id == item.product_id && a.available >= item.quantity
                            })
                        })
                        .filter_map(|item| Uuid::try_parse(&item.product_id).ok())
                        .collect(),
                    Err(_) => Vec::new(),
                };
                Err(refuse(FailureRecord {
                    code: failure::OUT_OF_STOCK.into(),
                    message: e.message().to_owned(),
                    product_ids: short,
                    ..FailureRecord::default()
                }))
            }
            Err(e) => Err(transient("product.reserve_stock", e)),
        }
    }

    async fn release_stock(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let request = ReleaseReservationRequest {
            reservation_id: data.order_id.to_string(),
        };
        let answer = self
            .products
            .release_reservation(&self.context(&ctx), &request)
            .await;
        undone("product.release_reservation", answer, data)
    }

    async fn reserve_voucher(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let Some(discount) = &data.discount else {
            return Ok(Outcome::Done(data));
        };
        let currency = data.priced()?.currency.clone();
        let request = ReserveVoucherRequest {
            code: discount.code.clone(),
            user_id: data.user_id.to_string(),
            order_id: data.order_id.to_string(),
            amount: money(discount.amount, &currency),
            ttl_seconds: self.rules.reservation_hold(self.hold).as_secs() as i32,
        };
        let answer = self
            .vouchers
            .reserve_voucher(&self.context(&ctx), &request)
            .await;
        done_or_refused(
            "voucher.reserve_voucher",
            answer,
            data,
            failure::VOUCHER_UNAVAILABLE,
        )
    }

    async fn release_voucher(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        if data.discount.is_none() {
            return Ok(Outcome::Done(data));
        }
        let request = RedemptionRequest {
            order_id: data.order_id.to_string(),
        };
        let answer = self
            .vouchers
            .release_redemption(&self.context(&ctx), &request)
            .await;
        undone("voucher.release_redemption", answer, data)
    }

    async fn authorize(self: Arc<Self>, ctx: StepContext, mut data: CheckoutData) -> StepResult {
        let priced = data.priced()?;
        let request = AuthorizePaymentRequest {
            idempotency_key: ctx.idempotency_key(),
            order_id: data.order_id.to_string(),
            user_id: data.user_id.to_string(),
            payment_method_id: data.payment_method_id.clone(),
            amount: money(priced.figures.total, &priced.currency),
        };
        match self
            .payments
            .authorize_payment(&self.context(&ctx), &request)
            .await
        {
            Ok(payment) => {
                data.payment_id = Uuid::try_parse(&payment.id).ok();
                if payment.status == "failed" {
                    return Err(refuse(FailureRecord {
                        code: failure::PAYMENT_DECLINED.into(),
                        message: payment.failure_message,
                        payment_failure_code: payment.failure_code,
                        ..FailureRecord::default()
                    }));
                }
                Ok(Outcome::Done(data))
            }
            Err(e) if e.code() == ErrorCode::NotFound => Err(refuse(FailureRecord {
                code: failure::PAYMENT_DECLINED.into(),
                message: e.message().to_owned(),
                payment_failure_code: "payment_method_not_found".into(),
                ..FailureRecord::default()
            })),
            Err(e) if is_transient(&e) && ctx.attempt() < AUTHORIZE_ATTEMPTS => {
                Err(transient("payment.authorize_payment", e))
            }
            Err(e) => Err(refuse(FailureRecord {
                code: failure::PAYMENT_FAILED.into(),
                message: e.message().to_owned(),
                payment_failure_code: "processing_error".into(),
                ..FailureRecord::default()
            })),
        }
    }

    async fn void(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let Some(payment_id) = data.payment_id else {
            return Ok(Outcome::Done(data));
        };
        let request = VoidPaymentRequest {
            idempotency_key: ctx.idempotency_key(),
            payment_id: payment_id.to_string(),
        };
        let answer = self
            .payments
            .void_payment(&self.context(&ctx), &request)
            .await;
        undone("payment.void_payment", answer, data)
    }

    async fn commit_voucher(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        if data.discount.is_none() {
            return Ok(Outcome::Done(data));
        }
        let request = RedemptionRequest {
            order_id: data.order_id.to_string(),
        };
        let answer = self
            .vouchers
            .commit_redemption(&self.context(&ctx), &request)
            .await;
        done_or_refused(
            "voucher.commit_redemption",
            answer,
            data,
            failure::VOUCHER_UNAVAILABLE,
        )
    }

    async fn return_voucher(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        if data.discount.is_none() {
            return Ok(Outcome::Done(data));
        }
        let request = RedemptionRequest {
            order_id: data.order_id.to_string(),
        };
        let answer = self
            .vouchers
            .return_redemption(&self.context(&ctx), &request)
            .await;
        undone("voucher.return_redemption", answer, data)
    }

    async fn commit_stock(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let request = CommitReservationRequest {
            reservation_id: data.order_id.to_string(),
        };
        match self
            .products
            .commit_reservation(&self.context(&ctx), &request)
            .await
        {
            Ok(_) => Ok(Outcome::Done(data)),
            Err(e) if !is_transient(&e) => {
                let product_ids = data
                    .items()?
                    .iter()
                    .filter_map(|i| Uuid::try_parse(&i.product_id).ok())
                    .collect();
                Err(refuse(FailureRecord {
                    code: failure::OUT_OF_STOCK.into(),
                    message: format!("the stock held for the order was lost: {}", e.message()),
                    product_ids,
                    ..FailureRecord::default()
                }))
            }
            Err(e) => Err(transient("product.commit_reservation", e)),
        }
    }

    async fn restock(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let request = RestockReservationRequest {
            reservation_id: data.order_id.to_string(),
        };
        let answer = self
            .products
            .restock_reservation(&self.context(&ctx), &request)
            .await;
        undone("product.restock_reservation", answer, data)
    }

    async fn capture(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let Some(payment_id) = data.payment_id else {
            return Err(StepError::transient("no payment was authorised"));
        };
        let request = CapturePaymentRequest {
            idempotency_key: ctx.idempotency_key(),
            payment_id: payment_id.to_string(),
            amount: None,
        };
        match self
            .payments
            .capture_payment(&self.context(&ctx), &request)
            .await
        {
            Ok(_) => Ok(Outcome::Done(data)),
            Err(e) if !is_transient(&e) => Err(refuse_with(
                failure::PAYMENT_FAILED,
                format!("the payment could not be captured: {}", e.message()),
            )),
            Err(e) => Err(transient("payment.capture_payment", e)),
        }
    }

    async fn clear_cart(self: Arc<Self>, ctx: StepContext, data: CheckoutData) -> StepResult {
        let lines = data
            .items()?
            .into_iter()
            .map(|i| CartLineRef {
                product_id: i.product_id,
                quantity: i.quantity as i32,
            })
            .collect();
        let request = CompleteCheckoutRequest {
            user_id: data.user_id.to_string(),
            order_id: data.order_id.to_string(),
            lines,
        };
        match self
            .carts
            .complete_checkout(&self.context(&ctx), &request)
            .await
        {
            Ok(_) => Ok(Outcome::Done(data)),
            // The order is paid: lines left in a cart are no reason to undo it.
            Err(e) if ctx.attempt() >= 10 || !is_transient(&e) => {
                tracing::warn!(order_id = %data.order_id, error = %e, "the cart was not cleared");
                Ok(Outcome::Done(data))
            }
            Err(e) => Err(transient("cart.complete_checkout", e)),
        }
    }
}

type StepResult = Result<Outcome<CheckoutData>, StepError>;

fn local_error(error: impl std::fmt::Display) -> StepError {
    StepError::transient(format!("recording the order: {error}"))
}

/// The order of a saga, its row locked until the step's transaction ends.
pub(crate) async fn locked(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<store::OrderRecord, StepError> {
    store::lock_order(conn, order_id)
        .await
        .map_err(local_error)?
        .ok_or_else(|| local_error(format!("order {order_id} is missing")))
}

/// The order exists (created with the saga): nothing to do but to have a step whose
/// compensation, the last to run, marks the order failed.
struct Open;

impl LocalStep<CheckoutData> for Open {
    fn run<'c>(
        &'c self,
        _conn: &'c mut PgConnection,
        _ctx: &'c StepContext,
        _data: &'c mut CheckoutData,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Stores the priced order: figures, address, sub-orders and lines.
struct RecordOrder;

impl LocalStep<CheckoutData> for RecordOrder {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        _ctx: &'c StepContext,
        data: &'c mut CheckoutData,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            let priced = data.priced()?.clone();
            let address = data.address.clone().unwrap_or_default();
            let code = data
                .discount
                .as_ref()
                .map(|d| d.code.clone())
                .unwrap_or_default();
            store::lock_order(conn, data.order_id)
                .await
                .map_err(local_error)?;
            store::record_pricing(conn, data.order_id, &priced, &address, &code)
                .await
                .map_err(local_error)
        })
    }
}

/// The payment is captured: the order and its sub-orders are paid.
struct MarkPaid;

impl LocalStep<CheckoutData> for MarkPaid {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        ctx: &'c StepContext,
        data: &'c mut CheckoutData,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            let order = locked(conn, data.order_id).await?;
            if order.status() != OrderStatus::Pending {
                return Ok(());
            }
            if let Some(payment_id) = data.payment_id {
                store::set_payment(conn, data.order_id, payment_id)
                    .await
                    .map_err(local_error)?;
            }
            let paid = Move {
                to: OrderStatus::Paid,
                sub_orders: Some((&[SubOrderStatus::Pending], SubOrderStatus::Paid)),
                failure: None,
                actor: Actor::System,
                reason: "payment captured",
                event: Change::Paid,
            };
            outbox::apply(conn, &ctx.current_trace(), data.order_id, paid)
                .await
                .map_err(local_error)
        })
    }
}

/// The last compensation: the order failed, and says why.
struct MarkFailed;

impl LocalStep<CheckoutData> for MarkFailed {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        ctx: &'c StepContext,
        data: &'c mut CheckoutData,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            let order = locked(conn, data.order_id).await?;
            if order.status() != OrderStatus::Pending {
                return Ok(());
            }
            let failure = failure_of(ctx);
            if let Some(payment_id) = data.payment_id {
                store::set_payment(conn, data.order_id, payment_id)
                    .await
                    .map_err(local_error)?;
            }
            let failed = Move {
                to: OrderStatus::Failed,
                sub_orders: Some((&[SubOrderStatus::Pending], SubOrderStatus::Failed)),
                failure: Some(&failure),
                actor: Actor::System,
                reason: &failure.code,
                event: Change::Failed,
            };
            outbox::apply(conn, &ctx.current_trace(), data.order_id, failed)
                .await
                .map_err(local_error)
        })
    }
}

/// The failure a compensated checkout shows, from the refusal that started compensating.
fn failure_of(ctx: &StepContext) -> FailureRecord {
    let Some((code, detail)) = ctx.refusal() else {
        return FailureRecord {
            code: "unknown".into(),
            message: "the checkout was undone".into(),
            ..FailureRecord::default()
        };
    };
    match serde_json::from_value::<FailureRecord>(detail.clone()) {
        Ok(record) if record.code == code => record,
        _ => FailureRecord {
            code: code.to_owned(),
            message: match detail {
                serde_json::Value::String(text) => text.clone(),
                // An operator's abort carries its reason.
                serde_json::Value::Object(fields) if fields.contains_key("reason") => {
                    fields["reason"].as_str().unwrap_or_default().to_owned()
                }
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            },
            ..FailureRecord::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saga_data_stored_with_a_trace_copy_still_loads() {
        // Checkouts created before the trace lived only with the saga instance carried a copy
        // of it; those still running during a deploy must go on.
        let order_id = Uuid::now_v7();
        let stored = serde_json::json!({
            "order_id": order_id,
            "user_id": Uuid::now_v7(),
            "shipping_address_id": Uuid::now_v7(),
            "shipping_method": "standard",
            "voucher_code": null,
            "payment_method_id": "pm_1",
            "expected_total": [2500, "USD"],
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": null,
            "address": null,
            "priced": null,
            "discount": null,
            "payment_id": null,
        });
        let data: CheckoutData = serde_json::from_value(stored).expect("old checkout data");
        assert_eq!(data.order_id, order_id);
        assert_eq!(data.expected_total, Some((2500, "USD".to_owned())));
        let saved = serde_json::to_value(&data).unwrap();
        assert!(saved.get("traceparent").is_none(), "{saved}");
    }
}
