//! `TestApp`: the service on private servers, beside the shop service it asks who may change
//! a shop's catalog, and helpers that read like what a user does.

use api::common::Money;
use api::product::{
    Availability, CreateProductRequest, GetAvailabilityRequest, Product, ProductClient,
    Reservation, ReservationItem, ReserveStockRequest,
};
use api::shop::{ApproveShopRequest, CreateShopRequest, ShopClient, SuspendShopRequest};
use product_service::Config;
use rpc::{Context, roles};
use testkit::{Companion, Harness};
use uuid::Uuid;
use vocab::demo;

pub use testkit::{bad_fields, expect_error};

pub use testkit::callers::{admin, anonymous};

/// The one customer these tests need.
pub fn customer() -> Context {
    testkit::callers::customer("customer-1")
}

pub fn usd(minor_units: i64) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: "USD".into(),
    })
}

/// A signed-in seller with a fresh id.
#[derive(Clone, Debug)]
pub struct Seller {
    pub id: Uuid,
}

impl Seller {
    pub fn new() -> Self {
        Seller { id: Uuid::now_v7() }
    }

    pub fn ctx(&self) -> Context {
        testkit::callers::signed_in(&self.id.to_string(), &[roles::CUSTOMER, roles::SELLER])
    }
}

/// A valid product request in the demo shop (active, in USD), to adjust with struct update
/// syntax.
pub fn product(name: &str) -> CreateProductRequest {
    CreateProductRequest {
        shop_id: demo::DEMO_SHOP_ID.into(),
        name: name.into(),
        description: format!("The {name}."),
        price: usd(1000),
        initial_stock: 10,
        ..Default::default()
    }
}

pub fn item(product_id: &str, quantity: i64) -> ReservationItem {
    ReservationItem {
        product_id: product_id.into(),
        quantity,
    }
}

testkit::test_app!(ProductApp, Config, ProductClient);

/// The product service under test, and the real shop service beside it (with the demo shop
/// seeded), reached through `shops`.
pub struct TestApp {
    app: ProductApp,
    pub shops: ShopClient,
    shop_service: Option<Companion>,
}

impl std::ops::Deref for TestApp {
    type Target = ProductApp;

    fn deref(&self) -> &ProductApp {
        &self.app
    }
}

impl std::ops::DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut ProductApp {
        &mut self.app
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(product_service::start, |config: &mut Config| {
            config.seed_demo_catalog = false;
            config.reservation_sweep_interval_ms = 100;
            configure(config);
        })
        .await;
        let shop_service = harness
            .companion(shop_service::start, |config: &mut shop_service::Config| {
                config.seed_demo_shop = true;
            })
            .await;
        let shops = ShopClient::new(rpc::Client::new(harness.nats.clone()));
        wait_until_answering(&shops).await;
        Self {
            app: ProductApp::new(harness),
            shops,
            shop_service: Some(shop_service),
        }
    }

    /// Stops both services the way SIGTERM does and checks that they shut down cleanly (and
    /// that NATS refused the product service nothing).
    pub async fn stop(self) {
        if let Some(shop_service) = self.shop_service {
            shop_service.stop().await;
        }
        self.app.harness.stop().await;
    }

    /// Stops the shop service only: product is left without it.
    pub async fn stop_shop_service(&mut self) {
        if let Some(shop_service) = self.shop_service.take() {
            shop_service.stop().await;
        }
    }

    /// A shop `owner` opened in `currency`, still pending.
    pub async fn pending_shop(&self, owner: &Seller, currency: &str) -> String {
        let request = CreateShopRequest {
            name: "Test Shop".into(),
            slug: format!("shop-{}", &Uuid::now_v7().simple().to_string()[20..]),
            description: String::new(),
            logo_url: String::new(),
            contact_email: "seller@shop.example".into(),
            currency: currency.into(),
        };
        self.shops
            .create_shop(&owner.ctx(), &request)
            .await
            .expect("opening a shop")
            .id
    }

    /// A shop `owner` opened in `currency`, approved by an admin.
    pub async fn active_shop(&self, owner: &Seller, currency: &str) -> String {
        let id = self.pending_shop(owner, currency).await;
        self.shops
            .approve_shop(&admin(), &ApproveShopRequest { id: id.clone() })
            .await
            .expect("approving a shop");
        id
    }

    pub async fn suspend_shop(&self, id: &str) {
        let request = SuspendShopRequest {
            id: id.into(),
            reason: "Under review".into(),
        };
        self.shops
            .suspend_shop(&admin(), &request)
            .await
            .expect("suspending a shop");
    }

    pub async fn create_product(&self, request: CreateProductRequest) -> Product {
        self.client
            .create_product(&admin(), &request)
            .await
            .expect("creating a product")
    }

    pub async fn availability(&self, product_id: &str) -> Availability {
        self.client
            .get_availability(
                &admin(),
                &GetAvailabilityRequest {
                    id: product_id.into(),
                },
            )
            .await
            .expect("reading availability")
    }

    pub async fn reserve(
        &self,
        reservation_id: &str,
        items: Vec<ReservationItem>,
        ttl_seconds: i32,
    ) -> Result<Reservation, rpc::Error> {
        self.client
            .reserve_stock(
                &anonymous(),
                &ReserveStockRequest {
                    reservation_id: reservation_id.into(),
                    items,
                    ttl_seconds,
                },
            )
            .await
    }

    /// `(stock, reserved)` as stored.
    pub async fn stored_stock(&self, product_id: &str) -> (i64, i64) {
        sqlx::query_as("SELECT stock, reserved FROM inventory WHERE product_id = $1::uuid")
            .bind(product_id)
            .fetch_one(self.db())
            .await
            .expect("reading inventory")
    }
}

/// Waits until the just-started shop service answers on this nats-server (its subscriptions
/// are made on its own connection, which may not have reached the server yet).
async fn wait_until_answering(shops: &ShopClient) {
    let request = api::shop::GetShopAccessRequest {
        shop_id: demo::DEMO_SHOP_ID.into(),
    };
    eventually(
        std::time::Duration::from_secs(10),
        "the shop service to answer",
        || async { shops.get_shop_access(&anonymous(), &request).await.is_ok() },
    )
    .await;
}

/// Polls `check` until it holds, failing the test after `within`.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
