//! The RPC handlers of the product contract.
//!
//! Each handler reads the same way: parse the request into domain types (which names every
//! bad field), decide what the caller may see, then run the store functions, in one
//! transaction for a write together with the record of the change. Access levels (public,
//! signed in, admin, internal) were already enforced by the runtime from the contract;
//! handlers look at the caller where the answer depends on it: inactive products, and the
//! writes of a shop's catalog, which its owner (a seller, while the shop is active) or an
//! admin may make. Another seller's product answers exactly like a missing one.

use std::collections::HashMap;
use std::time::Duration;

use api::product::{
    Availability, Category, CheckAvailabilityRequest, CheckAvailabilityResponse,
    CommitReservationRequest, CreateCategoryRequest, CreateProductRequest, GetAvailabilityRequest,
    GetProductRequest, ListCategoriesRequest, ListCategoriesResponse, ListProductsRequest,
    ListProductsResponse, LookupProductsRequest, LookupProductsResponse, Product, ProductOffer,
    ProductService, ReleaseReservationRequest, Reservation, ReserveStockRequest,
    RestockReservationRequest, SetStockRequest, UpdateProductRequest,
};
use api::shop::ShopAccess;
use rpc::{Context, Principal};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use vocab::Problem;
use vocab::page::encode_token;

use crate::domain::{
    self, CategoryId, NewCategory, NewProduct, NewReservation, ProductChanges, ProductId,
    ProductQuery, ProductStatus, ReservationId, ShopId, StockChange,
};
use crate::error::Error;
use crate::inventory;
use crate::outbox::{self, Change};
use crate::records::{InventoryRecord, ProductRecord, availability};
use crate::shops::Shops;
use crate::store;

// `::db` is the workspace's storage crate; plain `store` is this crate's queries.
use ::db::cache::{Cache, LocalCache};

/// The product service: its database, the product cache, and the shop service it asks who
/// may change a shop's catalog.
pub struct ProductHandlers {
    pool: PgPool,
    cache: Cache,
    shops: Shops,
    /// What `LookupProducts` answered per product, for a moment (the cart asks on every
    /// read); `None` when product reads are not cached.
    offers: Option<LocalCache>,
    /// The platform settings, for the product latency fault flag (dev and test stacks).
    settings: settings::Settings,
}

impl ProductHandlers {
    pub fn new(pool: PgPool, cache: Cache, shops: Shops) -> Self {
        Self {
            pool,
            cache,
            shops,
            offers: None,
            settings: settings::Settings::defaults(),
        }
    }

    /// Reads the fault flags from `settings`.
    pub fn with_settings(mut self, settings: settings::Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The product latency fault flag: a delay before a read is answered (zero unless a dev
    /// or test stack set it).
    async fn fault_latency(&self) {
        let delay = self.settings.faults().product_latency();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Keeps each product's `LookupProducts` answer (price, status, what is available) for
    /// `ttl` in this process: a cart read then costs no database round trip. This replica's
    /// own price, status and stock changes take effect at once; reservations and other
    /// replicas' changes show within `ttl`, which a cart (priced again at checkout, which
    /// reserves for real) can afford.
    pub fn with_offer_cache(mut self, ttl: Duration) -> Self {
        self.offers = Some(LocalCache::new(ttl, 10_000));
        self
    }

    fn forget_offer(&self, id: ProductId) {
        if let Some(offers) = &self.offers {
            offers.remove(&id.to_string());
        }
    }

    /// Forgets the offers of the products `reservation` holds stock of (what is available
    /// changed), and hands it on.
    fn forget_reserved(&self, reservation: Reservation) -> Reservation {
        if let Some(offers) = &self.offers {
            for item in &reservation.items {
                offers.remove(&item.product_id);
            }
        }
        reservation
    }

    /// Whether `principal` may change the catalog of `shop_id`, from what the shop service
    /// says about it now (`vocab::ownership::may_manage`): admins always; its owner while a
    /// seller and while the shop is active. `missing` is the answer when the shop does not
    /// exist or is someone else's, so the two cannot be told apart.
    async fn authorize(
        &self,
        ctx: &Context,
        principal: &Principal,
        shop_id: ShopId,
        missing: impl Fn() -> rpc::Error,
    ) -> Result<ShopAccess, rpc::Error> {
        let access = self.shops.access(ctx, shop_id, &missing).await?;
        vocab::ownership::may_manage(principal, &access, missing)?;
        Ok(access)
    }

    /// The product a seller or an admin is about to change, once they may: the same
    /// `not_found` as a missing product when it is another seller's. Admins are not checked
    /// against the shop, except where `needs_shop` (a new price, held to the shop's currency).
    async fn product_to_change(
        &self,
        ctx: &Context,
        id: ProductId,
        needs_shop: bool,
    ) -> Result<(ProductRecord, Option<ShopAccess>), rpc::Error> {
        let principal = ctx.require_principal()?;
        let product = store::get_product(&self.pool, id)
            .await?
            .ok_or(Error::ProductNotFound(id))?;
        if principal.is_admin() && !needs_shop {
            return Ok((product, None));
        }
        let shop_id = ShopId::from_uuid(product.shop_id);
        let missing = || -> rpc::Error {
            if principal.is_admin() {
                Error::ShopOfProductMissing {
                    product_id: id,
                    shop_id,
                }
                .into()
            } else {
                Error::ProductNotFound(id).into()
            }
        };
        let access = self.authorize(ctx, principal, shop_id, missing).await?;
        Ok((product, Some(access)))
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

    /// The product through the cache; `None` when it does not exist.
    async fn cached_product(&self, id: ProductId) -> Result<Option<ProductRecord>, Error> {
        self.cache
            .get_or_load(&id.to_string(), || store::get_product(&self.pool, id))
            .await
    }
}

async fn commit(tx: Transaction<'static, Postgres>) -> Result<(), Error> {
    Ok(tx.commit().await?)
}

/// Inactive products are visible to admins only; to anyone else they do not exist.
fn may_see(ctx: &Context, status: ProductStatus) -> bool {
    status == ProductStatus::Active || ctx.principal().is_some_and(|p| p.is_admin())
}

/// One request field parsed on its own, or `invalid_argument` naming it.
fn parse_field<T>(field: &str, parsed: Result<T, Problem>) -> Result<T, rpc::Error> {
    parsed.map_err(|problem| rpc::Error::invalid_field(field, problem))
}

impl ProductService for ProductHandlers {
    async fn list_products(
        &self,
        ctx: Context,
        request: ListProductsRequest,
    ) -> Result<ListProductsResponse, rpc::Error> {
        self.fault_latency().await;
        let query = ProductQuery::parse(&request)?;
        if !may_see(&ctx, query.status) {
            return Err(rpc::Error::permission_denied(
                "only admins may list inactive products",
            ));
        }
        let page = store::list_products(&self.pool, &query).await?;
        Ok(ListProductsResponse {
            products: page.products.into_iter().map(Product::from).collect(),
            next_cursor: page
                .next_cursor
                .map(|cursor| encode_token(&cursor))
                .unwrap_or_default(),
        })
    }

    async fn get_product(
        &self,
        ctx: Context,
        request: GetProductRequest,
    ) -> Result<Product, rpc::Error> {
        self.fault_latency().await;
        let id = parse_field("id", ProductId::parse(&request.id))?;
        let product = self
            .cached_product(id)
            .await?
            .filter(|product| may_see(&ctx, product.status))
            .ok_or(Error::ProductNotFound(id))?;
        Ok(product.into())
    }

    /// The first event of the product's live stream: the product as `get_product` answers it,
    /// with the same rule on who may see it. The gateway streams its events after it.
    async fn watch_product(
        &self,
        ctx: Context,
        request: GetProductRequest,
    ) -> Result<Product, rpc::Error> {
        self.get_product(ctx, request).await
    }

    async fn create_product(
        &self,
        ctx: Context,
        request: CreateProductRequest,
    ) -> Result<Product, rpc::Error> {
        let principal = ctx.require_principal()?;
        vocab::ownership::require_seller(principal)?;
        let product = NewProduct::parse(&request)?;
        let shop_id = product.shop_id;
        let missing = || {
            rpc::Error::not_found(format!("shop {shop_id} not found")).with_details(vec![
                rpc::FieldViolation {
                    field: "shop_id".into(),
                    problem: "no shop has this id".into(),
                },
            ])
        };
        let shop = self.authorize(&ctx, principal, shop_id, missing).await?;
        product.price.check_shop_currency(&shop.currency)?;
        let id = ProductId::generate();
        let mut tx = self.begin(&ctx).await?;
        let record = store::insert_product(&mut tx, id, &product).await?;
        inventory::insert_inventory(&mut tx, id, product.initial_stock).await?;
        let change = Change::ProductCreated {
            product: &record,
            initial_stock: product.initial_stock.get(),
        };
        outbox::record_change(&mut tx, ctx.trace(), change).await?;
        commit(tx).await?;
        Ok(record.into())
    }

    async fn update_product(
        &self,
        ctx: Context,
        request: UpdateProductRequest,
    ) -> Result<Product, rpc::Error> {
        let (id, changes) = ProductChanges::parse(&request)?;
        let (product, shop) = self
            .product_to_change(&ctx, id, changes.price.is_some())
            .await?;
        if let (Some(price), Some(shop)) = (changes.price, &shop) {
            price.check_shop_currency(&shop.currency)?;
        }
        if changes.is_empty() {
            return Ok(product.into());
        }
        let mut tx = self.begin(&ctx).await?;
        let record = store::update_product(&mut tx, id, &changes)
            .await?
            .ok_or(Error::ProductNotFound(id))?;
        outbox::record_change(&mut tx, ctx.trace(), Change::ProductUpdated(&record)).await?;
        commit(tx).await?;
        // After the commit, so a reader that misses the cache loads the new row. A read that
        // loaded the old row just before the commit can still store it afterwards; the Redis
        // TTL bounds how long that copy lives (cache-aside's known race).
        self.cache.invalidate(&id.to_string()).await;
        self.forget_offer(id);
        Ok(record.into())
    }

    async fn list_categories(
        &self,
        _ctx: Context,
        _request: ListCategoriesRequest,
    ) -> Result<ListCategoriesResponse, rpc::Error> {
        let categories = store::list_categories(&self.pool).await?;
        Ok(ListCategoriesResponse {
            categories: categories.into_iter().map(Category::from).collect(),
        })
    }

    async fn create_category(
        &self,
        ctx: Context,
        request: CreateCategoryRequest,
    ) -> Result<Category, rpc::Error> {
        let category = NewCategory::parse(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let record = store::insert_category(&mut tx, CategoryId::generate(), &category).await?;
        outbox::record_change(&mut tx, ctx.trace(), Change::CategoryCreated(&record)).await?;
        commit(tx).await?;
        Ok(record.into())
    }

    async fn get_availability(
        &self,
        ctx: Context,
        request: GetAvailabilityRequest,
    ) -> Result<Availability, rpc::Error> {
        let id = parse_field("id", ProductId::parse(&request.id))?;
        let record = inventory::get_inventory(&self.pool, id)
            .await?
            .filter(|record| may_see(&ctx, record.status))
            .ok_or(Error::ProductNotFound(id))?;
        Ok(record.into())
    }

    async fn set_stock(
        &self,
        ctx: Context,
        request: SetStockRequest,
    ) -> Result<Availability, rpc::Error> {
        let change = StockChange::parse(&request)?;
        self.product_to_change(&ctx, change.product_id, false)
            .await?;
        let mut tx = self.begin(&ctx).await?;
        let level = inventory::set_stock(&mut tx, change).await?;
        let product_id = change.product_id;
        outbox::record_change(&mut tx, ctx.trace(), Change::StockSet { product_id, level }).await?;
        commit(tx).await?;
        self.forget_offer(product_id);
        Ok(availability(product_id, level))
    }

    async fn lookup_products(
        &self,
        _ctx: Context,
        request: LookupProductsRequest,
    ) -> Result<LookupProductsResponse, rpc::Error> {
        self.fault_latency().await;
        let ids = domain::parse_product_lookup(&request)?;
        let Some(cache) = &self.offers else {
            let offers = inventory::lookup_offers(&self.pool, &ids).await?;
            return Ok(LookupProductsResponse {
                offers: offers.into_iter().map(ProductOffer::from).collect(),
            });
        };
        let mut offers = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match cache.get::<ProductOffer>(&id.to_string()) {
                Some(offer) => offers.push(offer),
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            for record in inventory::lookup_offers(&self.pool, &missing).await? {
                let offer = ProductOffer::from(record);
                if let Some(product) = &offer.product {
                    cache.insert(product.id.clone(), offer.clone());
                }
                offers.push(offer);
            }
        }
        // In product id order, as the query answers.
        offers.sort_by(|a, b| {
            let id = |offer: &ProductOffer| offer.product.as_ref().map(|p| p.id.clone());
            id(a).cmp(&id(b))
        });
        Ok(LookupProductsResponse { offers })
    }

    async fn check_availability(
        &self,
        _ctx: Context,
        request: CheckAvailabilityRequest,
    ) -> Result<CheckAvailabilityResponse, rpc::Error> {
        let items = domain::parse_availability_check(&request)?;
        let ids: Vec<ProductId> = items.iter().map(|(id, _)| id).collect();
        let records: HashMap<Uuid, InventoryRecord> = inventory::get_inventories(&self.pool, &ids)
            .await?
            .into_iter()
            .map(|record| (record.product_id, record))
            .collect();
        let mut available = true;
        let mut levels = Vec::with_capacity(items.len());
        for (product_id, quantity) in items.iter() {
            let record = records
                .get(&product_id.as_uuid())
                .ok_or(Error::ProductNotFound(product_id))?;
            available &=
                record.status == ProductStatus::Active && record.level().can_supply(quantity);
            levels.push(Availability::from(*record));
        }
        Ok(CheckAvailabilityResponse {
            available,
            items: levels,
        })
    }

    async fn reserve_stock(
        &self,
        ctx: Context,
        request: ReserveStockRequest,
    ) -> Result<Reservation, rpc::Error> {
        let reservation = NewReservation::parse(&request)?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = inventory::reserve(&mut tx, &reservation).await?;
        if outcome.changed {
            let change = Change::ReservationHeld(&outcome.reservation);
            outbox::record_change(&mut tx, ctx.trace(), change).await?;
        }
        commit(tx).await?;
        Ok(self.forget_reserved(outcome.reservation.into()))
    }

    async fn release_reservation(
        &self,
        ctx: Context,
        request: ReleaseReservationRequest,
    ) -> Result<Reservation, rpc::Error> {
        let id = parse_field(
            "reservation_id",
            ReservationId::parse(&request.reservation_id),
        )?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = inventory::release(&mut tx, id).await?;
        if outcome.changed {
            let change = Change::ReservationReleased(&outcome.reservation);
            outbox::record_change(&mut tx, ctx.trace(), change).await?;
        }
        commit(tx).await?;
        Ok(self.forget_reserved(outcome.reservation.into()))
    }

    async fn commit_reservation(
        &self,
        ctx: Context,
        request: CommitReservationRequest,
    ) -> Result<Reservation, rpc::Error> {
        let id = parse_field(
            "reservation_id",
            ReservationId::parse(&request.reservation_id),
        )?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = inventory::commit(&mut tx, id).await?;
        if outcome.changed {
            let change = Change::ReservationCommitted(&outcome.reservation);
            outbox::record_change(&mut tx, ctx.trace(), change).await?;
        }
        commit(tx).await?;
        Ok(self.forget_reserved(outcome.reservation.into()))
    }

    async fn restock_reservation(
        &self,
        ctx: Context,
        request: RestockReservationRequest,
    ) -> Result<Reservation, rpc::Error> {
        let id = parse_field(
            "reservation_id",
            ReservationId::parse(&request.reservation_id),
        )?;
        let mut tx = self.begin(&ctx).await?;
        let outcome = inventory::restock(&mut tx, id).await?;
        if outcome.changed {
            let change = Change::ReservationRestocked(&outcome.reservation);
            outbox::record_change(&mut tx, ctx.trace(), change).await?;
        }
        commit(tx).await?;
        Ok(self.forget_reserved(outcome.reservation.into()))
    }
}
