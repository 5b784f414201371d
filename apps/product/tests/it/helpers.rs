//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use api::common::Money;
use api::product::{
    Availability, CreateProductRequest, GetAvailabilityRequest, Product, ProductClient,
    Reservation, ReservationItem, ReserveStockRequest,
};
use product_service::Config;
use rpc::Context;
use testkit::Harness;
use uuid::Uuid;

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

/// A valid product request to adjust with struct update syntax.
pub fn product(name: &str) -> CreateProductRequest {
    CreateProductRequest {
        shop_id: Uuid::now_v7().to_string(),
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

testkit::test_app!(TestApp, Config, ProductClient);

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
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
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
