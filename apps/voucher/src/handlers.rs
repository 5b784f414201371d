//! The RPC handlers of the voucher contract.
//!
//! Each handler reads the same way: find the caller, parse the request into domain types
//! (which names every bad field), decide what the caller may see or change (asking the shop
//! service who owns a shop), then run the store functions, in one transaction for a write
//! together with the record of the change. The runtime has already refused anonymous callers
//! of the `ACCESS_USER` methods and outside callers of the internal ones.
//!
//! Who may do what:
//! - Admins create platform-wide vouchers and vouchers of any shop, and see and change every
//!   voucher.
//! - A seller creates vouchers for a shop they own while it is active, and sees (and, while
//!   the shop is active, changes) that shop's vouchers. Another seller's voucher, or a
//!   platform-wide one, answers exactly like a code that does not exist.
//! - Listing takes `shop_id` from sellers: the contract lets this service ask the shop service
//!   about one shop (`get_shop_access`), not which shops a seller owns.

use api::cart::{CartClient, GetCartSubtotalsRequest};
use api::shop::{GetShopAccessRequest, ShopAccess, ShopClient};
use api::timestamp;
use api::voucher::{
    CheckVoucherRequest, CreateVoucherRequest, EvaluateVoucherRequest, GetVoucherRequest,
    ListVouchersRequest, ListVouchersResponse, Redemption, RedemptionRequest,
    ReserveVoucherRequest, UpdateVoucherRequest, Voucher, VoucherEvaluation, VoucherService,
};
use chrono::Utc;
use rpc::{Context, ErrorCode, Principal, roles};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use vocab::Money;
use vocab::ownership::{may_manage, require_seller};

use crate::domain::{
    self, Cart, CodeKey, EvaluationRequest, NewRedemption, NewVoucher, Offer, Reason, Verdict,
    VoucherChanges, VoucherId, VoucherQuery, user_id_of,
};
use crate::error::Error;
use crate::redemptions;
use crate::store::{self, VoucherRecord};

/// The voucher service: its database, and the shop and cart services it asks.
pub struct VoucherHandlers {
    pool: PgPool,
    shops: ShopClient,
    carts: CartClient,
}

impl VoucherHandlers {
    pub fn new(pool: PgPool, nats: rpc::Client) -> Self {
        Self {
            pool,
            shops: ShopClient::new(nats.clone()),
            carts: CartClient::new(nats),
        }
    }

    /// A write and the record of the change it makes commit together, or not at all. Its
    /// statements are cancelled once the request's deadline passes: nobody waits for them
    /// then. (A request without a deadline has the pool's statement timeout.)
    async fn begin(&self, ctx: &Context) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(match ctx.remaining() {
            Some(remaining) => ::db::postgres::begin_within(&self.pool, remaining).await?,
            None => self.pool.begin().await?,
        })
    }

    /// Who owns `shop_id` and whether it is active, from the shop service; a shop it does not
    /// know answers `missing()`.
    async fn shop_access(
        &self,
        ctx: &Context,
        shop_id: Uuid,
        missing: impl FnOnce() -> rpc::Error,
    ) -> Result<ShopAccess, rpc::Error> {
        let request = GetShopAccessRequest {
            shop_id: shop_id.to_string(),
        };
        match self.shops.get_shop_access(ctx, &request).await {
            Ok(access) => Ok(access),
            Err(error) if error.code() == ErrorCode::NotFound => Err(missing()),
            Err(error) => Err(error),
        }
    }

    /// The voucher with `code` if `principal` may see it: admins every one, a seller those of
    /// the shops they own (with the shop service's answer about that shop). Anything else
    /// answers like a code that does not exist.
    async fn visible(
        &self,
        ctx: &Context,
        principal: &Principal,
        code: &CodeKey,
    ) -> Result<(VoucherRecord, Option<ShopAccess>), rpc::Error> {
        let missing = || rpc::Error::from(Error::VoucherNotFound(code.as_str().to_owned()));
        let record = store::get_by_code(&self.pool, code)
            .await?
            .ok_or_else(missing)?;
        if principal.is_admin() {
            return Ok((record, None));
        }
        let Some(shop_id) = record.shop_id else {
            return Err(missing());
        };
        if !principal.has_role(roles::SELLER) {
            return Err(missing());
        }
        let access = self.shop_access(ctx, shop_id, missing).await?;
        if access.owner_id == principal.user_id {
            Ok((record, Some(access)))
        } else {
            Err(missing())
        }
    }

    /// How often `user_id` holds or has used the voucher; `None` for a guest.
    async fn user_uses(
        &self,
        voucher_id: Uuid,
        user_id: Option<Uuid>,
    ) -> Result<Option<i32>, Error> {
        match user_id {
            Some(user_id) => Ok(Some(
                store::user_uses(&self.pool, voucher_id, user_id).await?,
            )),
            None => Ok(None),
        }
    }
}

fn shop_not_found(shop_id: Uuid) -> rpc::Error {
    rpc::Error::not_found(format!("shop {shop_id} not found"))
}

impl VoucherService for VoucherHandlers {
    async fn create_voucher(
        &self,
        ctx: Context,
        request: CreateVoucherRequest,
    ) -> Result<Voucher, rpc::Error> {
        let principal = ctx.require_principal()?;
        require_seller(principal)?;
        let new = NewVoucher::parse(&request, Utc::now())?;
        match new.shop_id {
            None if !principal.is_admin() => {
                return Err(rpc::Error::permission_denied(
                    "only admins create platform-wide vouchers; name your shop in shop_id",
                ));
            }
            None => {}
            Some(shop_id) => {
                let access = self
                    .shop_access(&ctx, shop_id, || shop_not_found(shop_id))
                    .await?;
                may_manage(principal, &access, || shop_not_found(shop_id))?;
                if access.currency != new.currency.code() {
                    return Err(rpc::Error::invalid_field(
                        "currency",
                        format!("must be the shop's currency, {}", access.currency),
                    ));
                }
            }
        }
        let mut tx = self.begin(&ctx).await?;
        let record = store::insert(&mut tx, VoucherId::new(), &new, &principal.user_id).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(message(record))
    }

    async fn list_vouchers(
        &self,
        ctx: Context,
        request: ListVouchersRequest,
    ) -> Result<ListVouchersResponse, rpc::Error> {
        let principal = ctx.require_principal()?;
        require_seller(principal)?;
        let query = VoucherQuery::parse(&request)?;
        if !principal.is_admin() {
            let Some(shop_id) = query.shop_id else {
                return Err(rpc::Error::invalid_field(
                    "shop_id",
                    "is required for sellers: the shop whose vouchers to list",
                ));
            };
            let access = self
                .shop_access(&ctx, shop_id, || shop_not_found(shop_id))
                .await?;
            if access.owner_id != principal.user_id {
                return Err(shop_not_found(shop_id));
            }
        }
        // One more than the page holds says whether there is a next page.
        let mut records =
            store::list(&self.pool, query.shop_id, query.after, query.size + 1).await?;
        let next_cursor = if records.len() > query.size {
            records.truncate(query.size);
            records
                .last()
                .map(|r| VoucherQuery::cursor_after(VoucherId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListVouchersResponse {
            vouchers: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_voucher(
        &self,
        ctx: Context,
        request: GetVoucherRequest,
    ) -> Result<Voucher, rpc::Error> {
        let principal = ctx.require_principal()?;
        let code = CodeKey::parse(&request.code)
            .map_err(|problem| rpc::Error::invalid_field("code", problem))?;
        let (record, _) = self.visible(&ctx, principal, &code).await?;
        Ok(message(record))
    }

    async fn update_voucher(
        &self,
        ctx: Context,
        request: UpdateVoucherRequest,
    ) -> Result<Voucher, rpc::Error> {
        let principal = ctx.require_principal()?;
        let changes = VoucherChanges::parse(&request)?;
        let missing = || rpc::Error::from(Error::VoucherNotFound(changes.code.as_str().into()));
        if let (_, Some(access)) = self.visible(&ctx, principal, &changes.code).await? {
            // Seeing it is not enough: changing it needs the seller role and an active shop.
            may_manage(principal, &access, missing)?;
        }
        let mut tx = self.begin(&ctx).await?;
        let current = store::lock_by_code(&mut tx, &changes.code)
            .await?
            .ok_or_else(missing)?;
        let terms = changes.apply(&current.terms()?)?;
        let record = store::update_terms(&mut tx, current.id, &terms).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(message(record))
    }

    /// The caller's cart comes from the cart service: the signed-in user's, or the guest cart
    /// of the `X-Cart-Token` header. When there is no cart to look at (an anonymous caller
    /// without a token) or the cart service does not know the cart, the code is judged alone:
    /// whether it can be used at all (status, dates, uses, the caller's own uses), and when it
    /// can, the answer applies with a zero discount and a message saying the cart was not
    /// considered. Any other failure of the cart service is the caller's error (unavailable),
    /// not a guess.
    async fn check_voucher(
        &self,
        ctx: Context,
        request: CheckVoucherRequest,
    ) -> Result<VoucherEvaluation, rpc::Error> {
        let code = CodeKey::parse(&request.code)
            .map_err(|problem| rpc::Error::invalid_field("code", problem))?;
        let record = store::get_by_code(&self.pool, &code)
            .await?
            .ok_or_else(|| Error::VoucherNotFound(request.code.clone()))?;
        let offer = record.offer()?;
        let user_id = ctx.principal().and_then(user_id_of);
        let user_uses = self.user_uses(record.id, user_id).await?;
        let cart = if user_id.is_some() || !request.cart_token.is_empty() {
            let cart_request = GetCartSubtotalsRequest {
                user_id: user_id.map(|id| id.to_string()).unwrap_or_default(),
                cart_token: request.cart_token.clone(),
            };
            match self.carts.get_cart_subtotals(&ctx, &cart_request).await {
                Ok(subtotals) => Some(
                    Cart::from_cart_service(&subtotals.currency, &subtotals.subtotals).map_err(
                        |error| {
                            rpc::Error::internal(anyhow::anyhow!(
                                "the cart service answered subtotals this service cannot read: \
                                 {error}"
                            ))
                        },
                    )?,
                ),
                Err(error) if error.code() == ErrorCode::NotFound => None,
                Err(error) => return Err(error),
            }
        } else {
            None
        };
        let verdict = domain::evaluate(&offer, Utc::now(), user_uses, cart.as_ref());
        Ok(evaluation(&record, &offer, verdict, cart.as_ref()))
    }

    async fn evaluate_voucher(
        &self,
        _ctx: Context,
        request: EvaluateVoucherRequest,
    ) -> Result<VoucherEvaluation, rpc::Error> {
        let parsed = EvaluationRequest::parse(&request)?;
        let Some(record) = store::get_by_code(&self.pool, &parsed.code).await? else {
            return Ok(VoucherEvaluation {
                code: request.code.clone(),
                applies: false,
                reason: Reason::NotFound.as_str().into(),
                message: domain::reason_message(Reason::NotFound, None, None),
                discount: None,
                shop_id: String::new(),
                description: String::new(),
            });
        };
        let offer = record.offer()?;
        let user_uses = self.user_uses(record.id, parsed.user_id).await?;
        let verdict = domain::evaluate(&offer, Utc::now(), user_uses, Some(&parsed.cart));
        Ok(evaluation(&record, &offer, verdict, Some(&parsed.cart)))
    }

    async fn reserve_voucher(
        &self,
        ctx: Context,
        request: ReserveVoucherRequest,
    ) -> Result<Redemption, rpc::Error> {
        let new = NewRedemption::parse(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = redemptions::reserve(&mut tx, &new).await?;
        if outcome.changed {
            tx.commit().await.map_err(Error::from)?;
        }
        Ok(outcome.redemption.into())
    }

    async fn commit_redemption(
        &self,
        ctx: Context,
        request: RedemptionRequest,
    ) -> Result<Redemption, rpc::Error> {
        let order_id = order_id(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = redemptions::commit(&mut tx, ctx.trace(), order_id).await?;
        if outcome.changed {
            tx.commit().await.map_err(Error::from)?;
        }
        Ok(outcome.redemption.into())
    }

    async fn release_redemption(
        &self,
        ctx: Context,
        request: RedemptionRequest,
    ) -> Result<Redemption, rpc::Error> {
        let order_id = order_id(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = redemptions::release(&mut tx, ctx.trace(), order_id).await?;
        if outcome.changed {
            tx.commit().await.map_err(Error::from)?;
        }
        Ok(outcome.redemption.into())
    }

    async fn return_redemption(
        &self,
        ctx: Context,
        request: RedemptionRequest,
    ) -> Result<Redemption, rpc::Error> {
        let order_id = order_id(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = redemptions::return_use(&mut tx, ctx.trace(), order_id).await?;
        if outcome.changed {
            tx.commit().await.map_err(Error::from)?;
        }
        Ok(outcome.redemption.into())
    }
}

fn order_id(request: &RedemptionRequest) -> Result<Uuid, rpc::Error> {
    domain::uuid(&request.order_id)
        .map_err(|problem| rpc::Error::invalid_field("order_id", problem))
}

/// The answer to a check or an evaluation of a voucher that exists.
fn evaluation(
    record: &VoucherRecord,
    offer: &Offer,
    verdict: Verdict,
    cart: Option<&Cart>,
) -> VoucherEvaluation {
    let (applies, reason, text, discount) = match verdict {
        Verdict::Applies(discount) => {
            let text = match cart {
                Some(_) => format!("This voucher takes {discount} off."),
                None => "This voucher can be used. Your cart was not considered, so what it \
                         saves is worked out at checkout."
                    .to_owned(),
            };
            (true, String::new(), text, discount)
        }
        Verdict::DoesNot(reason) => (
            false,
            reason.as_str().to_owned(),
            domain::reason_message(reason, Some(offer), cart),
            Money::zero(offer.currency),
        ),
    };
    VoucherEvaluation {
        code: record.code.clone(),
        applies,
        reason,
        message: text,
        discount: Some(discount.into()),
        shop_id: record.shop_id.map(|id| id.to_string()).unwrap_or_default(),
        description: record.description.clone(),
    }
}

fn message(record: VoucherRecord) -> Voucher {
    Voucher {
        id: record.id.to_string(),
        code: record.code,
        description: record.description,
        shop_id: record.shop_id.map(|id| id.to_string()).unwrap_or_default(),
        kind: record.kind,
        percent_off: record.percent_off,
        amount_off_minor_units: record.amount_off_minor_units,
        currency: record.currency,
        min_order_minor_units: record.min_order_minor_units,
        max_discount_minor_units: record.max_discount_minor_units,
        valid_from: timestamp(record.valid_from),
        valid_until: record.valid_until.and_then(timestamp),
        usage_limit: record.usage_limit,
        per_user_limit: record.per_user_limit,
        used_count: record.used_count,
        reserved_count: record.reserved_count,
        status: record.status,
        created_by: record.created_by,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
