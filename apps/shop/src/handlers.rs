//! The RPC handlers of the shop contract.
//!
//! Each handler reads the same way: parse the request into domain types (which names every
//! bad field), decide from the caller (never from the request) what they may see and change,
//! then run the store functions; a write runs in one transaction together with its history
//! row and the record of the change in the outbox. The runtime has already enforced the access
//! levels of the contract (signed in for writes, admin for approve and suspend, internal for
//! shop access and lookups); the rules that depend on the shop (its owner, its status) are decided here.
//!
//! A shop the caller may not see or change answers exactly like one that does not exist.

use api::shop::{
    ApproveShopRequest, CloseShopRequest, CreateShopRequest, GetShopAccessRequest, GetShopRequest,
    ListMyShopsRequest, ListShopsRequest, ListShopsResponse, LookupShopsRequest,
    LookupShopsResponse, Shop, ShopAccess, ShopService, ShopSummary, SuspendShopRequest,
    UpdateShopRequest,
};
use rpc::{Context, Principal};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::{
    self, MAX_SHOPS_PER_OWNER, NewShop, OwnerId, Page, ShopChanges, ShopId, ShopKey, ShopQuery,
    ShopStatus, StatusAction, Suspension, Transition,
};
use crate::error::Error;
use crate::outbox::{self, Change};
use crate::store::{self, Listing, ShopPage, ShopRecord};

/// The shop service: its database.
pub struct ShopHandlers {
    pool: PgPool,
}

impl ShopHandlers {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// A write, its history row and the record of the change commit together, or not at all.
    /// Its statements are cancelled once the request's deadline passes: nobody waits for them
    /// then. (A request without a deadline has the pool's statement timeout.)
    async fn begin(&self, ctx: &Context) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(match ctx.remaining() {
            Some(remaining) => db::postgres::begin_within(&self.pool, remaining).await?,
            None => self.pool.begin().await?,
        })
    }

    /// Moves shop `id` on by `action`, in one transaction with its history row and its
    /// event. `may_act` says whether the caller may act on the shop at all; a shop they may
    /// not is answered as missing.
    async fn change_status(
        &self,
        ctx: &Context,
        id: ShopId,
        action: StatusAction,
        reason: &str,
        may_act: impl FnOnce(&ShopRecord) -> bool,
    ) -> Result<Shop, rpc::Error> {
        let changed_by = ctx.require_principal()?.user_id.clone();
        let mut tx = self.begin(ctx).await?;
        let shop = store::lock(&mut tx, id)
            .await?
            .filter(may_act)
            .ok_or(Error::not_found(id))?;
        let next = match shop.status.apply(action) {
            Transition::Unchanged => return Ok(shop.into()),
            Transition::Refused => {
                return Err(Error::StatusChangeRefused {
                    id,
                    status: shop.status,
                    action: match action {
                        StatusAction::Approve => "approved",
                        StatusAction::Suspend => "suspended",
                        StatusAction::Close => "closed",
                    },
                }
                .into());
            }
            Transition::To(next) => next,
        };
        let reason = if next == ShopStatus::Suspended {
            reason
        } else {
            ""
        };
        let updated = store::set_status(&mut tx, &shop, next, reason, &changed_by).await?;
        let change = Change::StatusChanged {
            shop: &updated,
            previous: shop.status,
            changed_by: &changed_by,
        };
        outbox::record_change(&mut tx, ctx.trace(), change).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(updated.into())
    }
}

/// The caller as a shop owner: their user id, when they are signed in with one the platform
/// issued (a UUID).
fn caller_as_owner(ctx: &Context) -> Option<OwnerId> {
    ctx.principal()
        .and_then(|principal| OwnerId::parse(&principal.user_id).ok())
}

fn is_admin(ctx: &Context) -> bool {
    ctx.principal().is_some_and(Principal::is_admin)
}

/// Anyone sees an active shop; its owner and admins see it in any status.
fn may_see(ctx: &Context, shop: &ShopRecord) -> bool {
    shop.status == ShopStatus::Active || may_change(ctx, shop)
}

/// Its owner and admins may change a shop.
fn may_change(ctx: &Context, shop: &ShopRecord) -> bool {
    is_admin(ctx) || shop.is_owned_by(caller_as_owner(ctx))
}

fn page_response(page: ShopPage) -> ListShopsResponse {
    ListShopsResponse {
        shops: page.shops.into_iter().map(Shop::from).collect(),
        next_cursor: page.next.map(Page::cursor_after).unwrap_or_default(),
    }
}

impl ShopService for ShopHandlers {
    async fn list_shops(
        &self,
        ctx: Context,
        request: ListShopsRequest,
    ) -> Result<ListShopsResponse, rpc::Error> {
        let query = ShopQuery::parse(&request)?;
        if query.status != ShopStatus::Active && !is_admin(&ctx) {
            return Err(rpc::Error::permission_denied(
                "only admins may list shops that are not active",
            ));
        }
        let page = store::list(&self.pool, Listing::Status(query.status), query.page).await?;
        Ok(page_response(page))
    }

    async fn get_shop(&self, ctx: Context, request: GetShopRequest) -> Result<Shop, rpc::Error> {
        let key = ShopKey::parse(&request.id)?;
        let shop = store::find(&self.pool, &key)
            .await?
            .filter(|shop| may_see(&ctx, shop))
            .ok_or_else(|| Error::not_found(&key))?;
        Ok(shop.into())
    }

    async fn create_shop(
        &self,
        ctx: Context,
        request: CreateShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let principal = ctx.require_principal()?;
        vocab::ownership::require_seller(principal)?;
        let owner = OwnerId::parse(&principal.user_id).map_err(rpc::Error::permission_denied)?;
        let shop = NewShop::parse(&request)?;
        let mut tx = self.begin(&ctx).await?;
        // Counting and inserting under the owner's lock: two openings of one seller cannot
        // both see room for one more shop.
        store::lock_owner(&mut tx, owner).await?;
        if store::count_owned(&mut tx, owner).await? >= MAX_SHOPS_PER_OWNER {
            return Err(Error::ShopLimitReached.into());
        }
        let record = store::insert(&mut tx, ShopId::generate(), owner, &shop).await?;
        outbox::record_change(&mut tx, ctx.trace(), Change::Created(&record)).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(record.into())
    }

    async fn update_shop(
        &self,
        ctx: Context,
        request: UpdateShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let changes = ShopChanges::parse(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let shop = store::lock(&mut tx, changes.id)
            .await?
            .filter(|shop| may_change(&ctx, shop))
            .ok_or(Error::not_found(changes.id))?;
        if shop.status == ShopStatus::Closed {
            return Err(Error::ShopClosed { id: changes.id }.into());
        }
        if changes.is_empty() {
            return Ok(shop.into());
        }
        let record = store::update(&mut tx, &changes).await?;
        outbox::record_change(&mut tx, ctx.trace(), Change::Updated(&record)).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(record.into())
    }

    async fn list_my_shops(
        &self,
        ctx: Context,
        request: ListMyShopsRequest,
    ) -> Result<ListShopsResponse, rpc::Error> {
        let principal = ctx.require_principal()?;
        let owner = OwnerId::parse(&principal.user_id).map_err(rpc::Error::permission_denied)?;
        let page = domain::parse_my_shops(&request)?;
        let page = store::list(&self.pool, Listing::Owner(owner), page).await?;
        Ok(page_response(page))
    }

    async fn close_shop(
        &self,
        ctx: Context,
        request: CloseShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let id = ShopId::parse_field("id", &request.id)?;
        self.change_status(&ctx, id, StatusAction::Close, "", |shop| {
            may_change(&ctx, shop)
        })
        .await
    }

    async fn approve_shop(
        &self,
        ctx: Context,
        request: ApproveShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let id = ShopId::parse_field("id", &request.id)?;
        // Admins only, which the runtime has enforced.
        self.change_status(&ctx, id, StatusAction::Approve, "", |_| true)
            .await
    }

    async fn suspend_shop(
        &self,
        ctx: Context,
        request: SuspendShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let suspension = Suspension::parse(&request)?;
        // Admins only, which the runtime has enforced.
        self.change_status(
            &ctx,
            suspension.id,
            StatusAction::Suspend,
            suspension.reason.as_str(),
            |_| true,
        )
        .await
    }

    async fn get_shop_access(
        &self,
        _ctx: Context,
        request: GetShopAccessRequest,
    ) -> Result<ShopAccess, rpc::Error> {
        let id = ShopId::parse_field("shop_id", &request.shop_id)?;
        let shop = store::find(&self.pool, &ShopKey::Id(id))
            .await?
            .ok_or(Error::not_found(id))?;
        Ok(ShopAccess {
            shop_id: shop.id.to_string(),
            owner_id: shop.owner_id.to_string(),
            status: shop.status.as_str().to_owned(),
            currency: shop.currency,
        })
    }

    async fn lookup_shops(
        &self,
        _ctx: Context,
        request: LookupShopsRequest,
    ) -> Result<LookupShopsResponse, rpc::Error> {
        let mut ids = Vec::with_capacity(request.shop_ids.len());
        for (i, id) in request.shop_ids.iter().enumerate() {
            ids.push(ShopId::parse_field(&format!("shop_ids[{i}]"), id)?.as_uuid());
        }
        ids.sort_unstable();
        ids.dedup();
        let shops = store::find_many(&self.pool, &ids).await?;
        Ok(LookupShopsResponse {
            shops: shops
                .into_iter()
                .map(|shop| ShopSummary {
                    shop_id: shop.id.to_string(),
                    name: shop.name,
                    status: shop.status.as_str().to_owned(),
                })
                .collect(),
        })
    }
}
