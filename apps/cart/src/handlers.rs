//! The RPC handlers of the cart contract.
//!
//! Each handler reads the same way: find the cart (the signed-in caller's, merging a guest
//! token's cart into it first, or the guest cart of the token), parse the request (the domain
//! names every bad field), change the cart in one PostgreSQL transaction that holds its row
//! (then Redis, see `store.rs`), and answer the cart priced now: one `LookupProducts` batch
//! for its lines, and the voucher's evaluation when it has a code.

use std::collections::HashMap;

use api::cart::{
    AppliedVoucher, ApplyVoucherRequest, Cart, CartService, CartSubtotals, ClearCartRequest,
    CompleteCheckoutRequest, CompleteCheckoutResponse, CreateCartRequest, CreateCartResponse,
    GetCartRequest, GetCartSubtotalsRequest, GetCheckoutSnapshotRequest, RemoveItemRequest,
    RemoveVoucherRequest, SetItemRequest, ShopSubtotal,
};
use api::product::{LookupProductsRequest, ProductClient, ProductOffer};
use api::timestamp;
use api::voucher::{EvaluateVoucherRequest, VoucherClient};
use rpc::Context;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use vocab::{Fields, Money};

use crate::domain::{
    self, CartContents, CartKey, Line, LineRefused, MAX_QUANTITY, PricedCart, VoucherOutcome,
};
use crate::error::Error;
use crate::store::{self, CheckoutRecord, Hot, HotCarts, StoredCart};

/// The reason a voucher shows when the voucher service could not be asked.
pub const VOUCHER_UNAVAILABLE: &str = "unavailable";

/// The cart service: its database, its Redis, and the services it prices carts with.
pub struct CartHandlers {
    pool: PgPool,
    hot: HotCarts,
    products: ProductClient,
    vouchers: VoucherClient,
    /// The platform settings, for the cart read failure fault flag (dev and test stacks).
    settings: settings::Settings,
}

impl CartHandlers {
    pub fn new(pool: PgPool, hot: HotCarts, nats: async_nats::Client) -> Self {
        let client = rpc::Client::new(nats);
        Self {
            pool,
            hot,
            products: ProductClient::new(client.clone()),
            vouchers: VoucherClient::new(client),
            settings: settings::Settings::defaults(),
        }
    }

    /// Reads the fault flags from `settings`.
    pub fn with_settings(mut self, settings: settings::Settings) -> Self {
        self.settings = settings;
        self
    }

    /// A transaction whose statements are cancelled once the request's deadline passes.
    async fn begin(&self, ctx: &Context) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(match ctx.remaining() {
            Some(remaining) => db::postgres::begin_within(&self.pool, remaining).await?,
            None => self.pool.begin().await?,
        })
    }

    /// The cart the caller addresses: the signed-in user's (after merging the guest cart of
    /// `token`, if any), or the guest cart of `token`.
    async fn caller_cart(&self, ctx: &Context, token: &str) -> Result<CartKey, Error> {
        match ctx.principal() {
            Some(principal) if !principal.user_id.is_empty() => {
                let user = CartKey::user(&principal.user_id);
                if !token.is_empty() {
                    self.merge_guest(ctx, &user, token).await?;
                }
                Ok(user)
            }
            _ if token.is_empty() => Err(Error::NoCart),
            _ => Ok(CartKey::guest(token)),
        }
    }

    /// Moves the guest cart of `token` into `user`'s and ends it, in one transaction: the
    /// guest row is deleted first, so of two concurrent requests only one finds it. A token
    /// that opens no cart (unknown, expired, already merged) changes nothing.
    async fn merge_guest(&self, ctx: &Context, user: &CartKey, token: &str) -> Result<(), Error> {
        let guest = CartKey::guest(token);
        // A browser keeps sending the token for a while after its cart merged: Redis knows.
        if let Ok(Some(Hot::Gone)) = self.hot.get(&guest).await {
            return Ok(());
        }
        let mut tx = self.begin(ctx).await?;
        let Some(taken) = store::take_guest(&mut tx, &guest).await? else {
            return Ok(());
        };
        let current = store::lock(&mut tx, user)
            .await?
            .ok_or(Error::CartNotFound)?;
        let merged = domain::merge(current.contents, taken.contents);
        let saved = store::save(&mut tx, user, &merged).await?;
        tx.commit().await?;
        tracing::info!(lines = saved.contents.lines.len(), "merged a guest cart");
        self.refill(&saved).await;
        if let Err(error) = self
            .hot
            .bury(&guest, taken.version + 1, taken.expires_at)
            .await
        {
            tracing::warn!(error = %error, "could not mark a merged guest cart as gone in Redis");
        }
        Ok(())
    }

    /// The cart at `key`: from Redis, or from PostgreSQL (refilling Redis) when Redis does
    /// not have it or cannot answer.
    async fn read(&self, key: &CartKey) -> Result<Option<StoredCart>, Error> {
        match self.hot.get(key).await {
            Ok(Some(Hot::Cart(cart))) => return Ok(Some(cart)),
            Ok(Some(Hot::Gone)) => return Ok(None),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %error, "reading a cart from Redis failed; reading PostgreSQL");
                return store::load(&self.pool, key).await;
            }
        }
        let loaded = store::load(&self.pool, key).await?;
        if let Some(cart) = &loaded {
            self.refill(cart).await;
        }
        Ok(loaded)
    }

    /// The cart at `key` as the caller sees it: a user without one has an empty one; a guest
    /// token that opens none is not found.
    async fn existing(&self, key: &CartKey) -> Result<StoredCart, Error> {
        match (self.read(key).await?, key) {
            (Some(cart), _) => Ok(cart),
            (None, CartKey::User(_)) => Ok(StoredCart::empty(key.clone())),
            (None, CartKey::Guest(_)) => Err(Error::CartNotFound),
        }
    }

    /// Changes the cart at `key` with `change` in a transaction that holds its row, then
    /// writes the result to Redis. A change that changes nothing writes nothing.
    async fn write(
        &self,
        ctx: &Context,
        key: &CartKey,
        change: impl FnOnce(&mut CartContents) -> Result<(), Error>,
    ) -> Result<StoredCart, Error> {
        let mut tx = self.begin(ctx).await?;
        let current = store::lock(&mut tx, key)
            .await?
            .ok_or(Error::CartNotFound)?;
        let mut contents = current.contents.clone();
        change(&mut contents)?;
        if contents == current.contents {
            return Ok(current);
        }
        let saved = store::save(&mut tx, key, &contents).await?;
        tx.commit().await?;
        self.refill(&saved).await;
        Ok(saved)
    }

    /// Puts `cart` into Redis. PostgreSQL has it already, so the write stands either way; a
    /// failure is logged, not answered (Redis may then hold an older copy until the next
    /// write, the one gap `store.rs` describes).
    async fn refill(&self, cart: &StoredCart) {
        if let Err(error) = self.hot.put(cart).await {
            tracing::warn!(error = %error, "could not write a cart to Redis");
        }
    }

    /// The catalog's offers for `ids`, in one request; products that no longer exist are
    /// absent.
    async fn offers(
        &self,
        ctx: &Context,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, ProductOffer>, Error> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let request = LookupProductsRequest {
            product_ids: ids.iter().map(Uuid::to_string).collect(),
        };
        let response = self
            .products
            .lookup_products(ctx, &request)
            .await
            .map_err(Error::Upstream)?;
        Ok(response
            .offers
            .into_iter()
            .filter_map(|offer| {
                let id = Uuid::try_parse(&offer.product.as_ref()?.id).ok()?;
                Some((id, offer))
            })
            .collect())
    }

    /// `cart` priced from the catalog now, in one request.
    async fn priced(&self, ctx: &Context, cart: &StoredCart) -> Result<PricedCart, Error> {
        let ids: Vec<Uuid> = cart
            .contents
            .lines
            .iter()
            .map(|line| line.product_id)
            .collect();
        let offers = self.offers(ctx, &ids).await?;
        Ok(domain::price(&cart.contents, &offers))
    }

    /// What `code` takes off `priced` now, as the voucher service evaluates it.
    async fn evaluate(
        &self,
        ctx: &Context,
        cart: &StoredCart,
        priced: &PricedCart,
        code: &str,
    ) -> Result<VoucherOutcome, rpc::Error> {
        let Some(currency) = cart.contents.currency else {
            return Ok(VoucherOutcome::not_applying(
                code,
                "empty_cart",
                "your cart is empty",
            ));
        };
        let request = EvaluateVoucherRequest {
            code: code.to_owned(),
            user_id: cart.key.user_id().unwrap_or_default().to_owned(),
            currency: currency.code().to_owned(),
            subtotals: priced
                .shop_subtotals
                .iter()
                .map(|(shop_id, subtotal)| api::voucher::ShopSubtotal {
                    shop_id: shop_id.clone(),
                    subtotal_minor_units: subtotal.minor_units(),
                })
                .collect(),
        };
        let evaluation = self.vouchers.evaluate_voucher(ctx, &request).await?;
        let discount = evaluation
            .discount
            .as_ref()
            .and_then(|discount| Money::try_from(discount).ok())
            .filter(|_| evaluation.applies);
        Ok(VoucherOutcome {
            code: if evaluation.code.is_empty() {
                code.to_owned()
            } else {
                evaluation.code
            },
            applies: evaluation.applies,
            reason: evaluation.reason,
            message: evaluation.message,
            discount,
            shop_id: (!evaluation.shop_id.is_empty()).then_some(evaluation.shop_id),
        })
    }

    /// The answer of every cart method: `cart` priced now, its voucher evaluated. Vouchers
    /// that cannot be evaluated (the service is down) show as not applying; the cart answers.
    async fn answer(&self, ctx: &Context, cart: &StoredCart) -> Result<Cart, Error> {
        let priced = self.priced(ctx, cart).await?;
        let voucher = match &cart.contents.voucher_code {
            None => None,
            Some(code) => Some(
                self.evaluate(ctx, cart, &priced, code)
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(error = %error, "evaluating the cart's voucher failed");
                        VoucherOutcome::not_applying(
                            code,
                            VOUCHER_UNAVAILABLE,
                            "vouchers cannot be checked right now; the discount shows again \
                             once they can",
                        )
                    }),
            ),
        };
        let (shops, totals) = domain::totals(&priced, voucher.as_ref());
        let applied = voucher.map(|voucher| AppliedVoucher {
            discount: if voucher.applies {
                totals.first().and_then(|total| total.discount.clone())
            } else {
                None
            },
            code: voucher.code,
            applies: voucher.applies,
            reason: voucher.reason,
            message: voucher.message,
            shop_id: voucher.shop_id.unwrap_or_default(),
        });
        Ok(Cart {
            user_id: cart.key.user_id().unwrap_or_default().to_owned(),
            checkout_ready: priced.checkout_ready(),
            currency: cart
                .contents
                .currency
                .map(|currency| currency.code().to_owned())
                .unwrap_or_default(),
            lines: priced.lines,
            shops,
            totals,
            voucher: applied,
            updated_at: cart.updated_at.and_then(timestamp),
        })
    }
}

/// A quantity of a request: 0 to 99 (the contract checks it too).
fn parse_quantity(value: i32) -> Result<i32, rpc::Error> {
    if value > MAX_QUANTITY {
        return Err(Error::QuantityTooLarge.into());
    }
    domain::field("quantity", domain::quantity(value))
}

/// The lines an order took, each named by its index when bad.
fn parse_bought(request: &CompleteCheckoutRequest) -> Result<(Uuid, Uuid, Vec<Line>), rpc::Error> {
    let mut fields = Fields::new();
    let user_id = fields.parse("user_id", domain::uuid(&request.user_id));
    let order_id = fields.parse("order_id", domain::uuid(&request.order_id));
    let mut lines = Vec::with_capacity(request.lines.len());
    for (index, line) in request.lines.iter().enumerate() {
        let product_id = fields.parse(
            &format!("lines[{index}].product_id"),
            domain::uuid(&line.product_id),
        );
        let quantity = fields.parse(
            &format!("lines[{index}].quantity"),
            domain::quantity(line.quantity).and_then(|quantity| match quantity {
                0 => Err("must be 1 to 99".into()),
                quantity => Ok(quantity),
            }),
        );
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(Line {
                product_id,
                quantity,
            });
        }
    }
    fields.finish(|| Some((user_id?, order_id?, lines)))
}

impl CartService for CartHandlers {
    async fn create_cart(
        &self,
        _ctx: Context,
        _request: CreateCartRequest,
    ) -> Result<CreateCartResponse, rpc::Error> {
        let cart_token = domain::new_cart_token();
        let cart = store::insert_guest(&self.pool, &CartKey::guest(&cart_token)).await?;
        self.refill(&cart).await;
        Ok(CreateCartResponse {
            cart_token,
            cart: Some(Cart {
                updated_at: cart.updated_at.and_then(timestamp),
                ..Default::default()
            }),
        })
    }

    async fn get_cart(&self, ctx: Context, request: GetCartRequest) -> Result<Cart, rpc::Error> {
        // The cart read failure fault flag (zero unless a dev or test stack set it).
        if settings::Faults::strikes(self.settings.faults().cart_read_failure_percent()) {
            return Err(rpc::Error::unavailable(
                "the cart could not be read (a fault flag is set on this stack)",
            ));
        }
        let key = self.caller_cart(&ctx, &request.cart_token).await?;
        let cart = self.existing(&key).await?;
        Ok(self.answer(&ctx, &cart).await?)
    }

    async fn set_item(&self, ctx: Context, request: SetItemRequest) -> Result<Cart, rpc::Error> {
        let product_id = domain::field("product_id", domain::uuid(&request.product_id))?;
        let quantity = parse_quantity(request.quantity)?;
        let key = self.caller_cart(&ctx, &request.cart_token).await?;
        let saved = if quantity == 0 {
            self.write(&ctx, &key, |cart| {
                cart.remove_line(product_id);
                Ok(())
            })
            .await?
        } else {
            let offers = self.offers(&ctx, &[product_id]).await?;
            let product = offers
                .get(&product_id)
                .and_then(|offer| offer.product.clone())
                .ok_or(Error::ProductNotFound(product_id))?;
            if product.status != "active" {
                return Err(Error::ProductInactive { name: product.name }.into());
            }
            let priced_in = product
                .price
                .as_ref()
                .and_then(|price| Money::try_from(price).ok())
                .ok_or_else(|| Error::Corrupt(format!("product {product_id} has no valid price")))?
                .currency();
            self.write(&ctx, &key, |cart| {
                cart.set_line(product_id, quantity, priced_in)
                    .map_err(|refused| match refused {
                        LineRefused::TooManyLines => Error::TooManyLines,
                        LineRefused::OtherCurrency { cart, product } => Error::OtherCurrency {
                            cart,
                            product,
                            name: product_name(&product_id, &offers),
                        },
                    })
            })
            .await?
        };
        Ok(self.answer(&ctx, &saved).await?)
    }

    async fn remove_item(
        &self,
        ctx: Context,
        request: RemoveItemRequest,
    ) -> Result<Cart, rpc::Error> {
        let product_id = domain::field("product_id", domain::uuid(&request.product_id))?;
        let key = self.caller_cart(&ctx, &request.cart_token).await?;
        let saved = self
            .write(&ctx, &key, |cart| {
                cart.remove_line(product_id);
                Ok(())
            })
            .await?;
        Ok(self.answer(&ctx, &saved).await?)
    }

    async fn clear_cart(
        &self,
        ctx: Context,
        request: ClearCartRequest,
    ) -> Result<Cart, rpc::Error> {
        let key = self.caller_cart(&ctx, &request.cart_token).await?;
        let saved = self
            .write(&ctx, &key, |cart| {
                cart.clear();
                Ok(())
            })
            .await?;
        Ok(self.answer(&ctx, &saved).await?)
    }

    async fn apply_voucher(
        &self,
        ctx: Context,
        request: ApplyVoucherRequest,
    ) -> Result<Cart, rpc::Error> {
        let code = request.code.trim();
        if code.is_empty() {
            return Err(rpc::Error::invalid_field("code", "is required"));
        }
        let key = self.caller_cart(&ctx, &request.cart_token).await?;
        let cart = self.existing(&key).await?;
        let priced = self.priced(&ctx, &cart).await?;
        let outcome =
            self.evaluate(&ctx, &cart, &priced, code)
                .await
                .map_err(|error| match error.code() {
                    rpc::ErrorCode::Unavailable | rpc::ErrorCode::DeadlineExceeded => {
                        rpc::Error::unavailable(
                            "vouchers cannot be checked right now; try again shortly",
                        )
                    }
                    _ => rpc::Error::internal(anyhow::anyhow!("evaluating a voucher: {error}")),
                })?;
        if !outcome.applies {
            let message = if outcome.message.is_empty() {
                format!(
                    "voucher {} does not apply ({})",
                    outcome.code, outcome.reason
                )
            } else {
                outcome.message
            };
            return Err(match outcome.reason.as_str() {
                "not_found" => Error::VoucherNotFound { message },
                _ => Error::VoucherDoesNotApply { message },
            }
            .into());
        }
        let saved = self
            .write(&ctx, &key, |cart| {
                cart.voucher_code = Some(outcome.code.clone());
                Ok(())
            })
            .await?;
        Ok(self.answer(&ctx, &saved).await?)
    }

    async fn remove_voucher(
        &self,
        ctx: Context,
        request: RemoveVoucherRequest,
    ) -> Result<Cart, rpc::Error> {
        let key = self.caller_cart(&ctx, &request.cart_token).await?;
        let saved = self
            .write(&ctx, &key, |cart| {
                cart.voucher_code = None;
                Ok(())
            })
            .await?;
        Ok(self.answer(&ctx, &saved).await?)
    }

    async fn get_cart_subtotals(
        &self,
        ctx: Context,
        request: GetCartSubtotalsRequest,
    ) -> Result<CartSubtotals, rpc::Error> {
        let key = if !request.user_id.is_empty() {
            CartKey::user(&request.user_id)
        } else if !request.cart_token.is_empty() {
            CartKey::guest(&request.cart_token)
        } else {
            return Err(rpc::Error::invalid_field(
                "user_id",
                "send the user id or the cart token",
            ));
        };
        let cart = self.read(&key).await?.ok_or(Error::CartNotFound)?;
        let priced = self.priced(&ctx, &cart).await?;
        let currency = priced
            .subtotal()
            .map(|subtotal| subtotal.currency().code().to_owned())
            .unwrap_or_default();
        Ok(CartSubtotals {
            currency,
            subtotals: priced
                .shop_subtotals
                .iter()
                .map(|(shop_id, subtotal)| ShopSubtotal {
                    shop_id: shop_id.clone(),
                    subtotal_minor_units: subtotal.minor_units(),
                })
                .collect(),
        })
    }

    async fn get_checkout_snapshot(
        &self,
        ctx: Context,
        request: GetCheckoutSnapshotRequest,
    ) -> Result<Cart, rpc::Error> {
        let user_id = domain::field("user_id", domain::uuid(&request.user_id))?;
        let cart = self.existing(&CartKey::user(&user_id.to_string())).await?;
        Ok(self.answer(&ctx, &cart).await?)
    }

    async fn complete_checkout(
        &self,
        ctx: Context,
        request: CompleteCheckoutRequest,
    ) -> Result<CompleteCheckoutResponse, rpc::Error> {
        let (user_id, order_id, bought) = parse_bought(&request)?;
        let user_id = user_id.to_string();
        let key = CartKey::user(&user_id);
        let mut tx = self.begin(&ctx).await?;
        match store::record_checkout(&mut tx, order_id, &user_id, &bought).await? {
            CheckoutRecord::New => {}
            CheckoutRecord::Repeat => return Ok(CompleteCheckoutResponse { cleared: false }),
            CheckoutRecord::Different => return Err(Error::OrderDiffers(order_id).into()),
        }
        let current = store::lock(&mut tx, &key)
            .await?
            .ok_or(Error::CartNotFound)?;
        let mut contents = current.contents;
        contents.complete_checkout(&bought);
        let saved = store::save(&mut tx, &key, &contents).await?;
        tx.commit().await.map_err(Error::from)?;
        self.refill(&saved).await;
        Ok(CompleteCheckoutResponse { cleared: true })
    }
}

fn product_name(product_id: &Uuid, offers: &HashMap<Uuid, ProductOffer>) -> String {
    offers
        .get(product_id)
        .and_then(|offer| offer.product.as_ref())
        .map_or_else(
            || format!("product {product_id}"),
            |product| product.name.clone(),
        )
}
