//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::net::SocketAddr;

use api::common::Money;
use api::product::{
    Availability, CreateProductRequest, GetAvailabilityRequest, Product, ProductClient,
    Reservation, ReservationItem, ReserveStockRequest,
};
use clap::Parser as _;
use product_service::{Application, Config};
use rpc::{Context, Principal, roles};
use sqlx::PgPool;
use testkit::{NatsServer, RedisServer, Running, TestDatabase};
use uuid::Uuid;

pub use testkit::{bad_fields, expect_error};

pub fn admin() -> Context {
    Context::background().with_principal(Principal {
        user_id: "admin-1".into(),
        roles: vec![roles::ADMIN.into()],
    })
}

pub fn customer() -> Context {
    Context::background().with_principal(Principal {
        user_id: "customer-1".into(),
        roles: vec![roles::CUSTOMER.into()],
    })
}

pub fn anonymous() -> Context {
    Context::background()
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

pub struct TestApp {
    pub client: ProductClient,
    pub nats: async_nats::Client,
    /// The service's own database, for checking what it stored.
    pub db: PgPool,
    pub admin_addr: SocketAddr,
    pub config: Config,
    /// Dropping it stops the application; the servers below are dropped after it, so they
    /// outlive the application.
    running: Option<Running>,
    _database: TestDatabase,
    _redis: RedisServer,
    _nats_server: NatsServer,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        telemetry::init_for_tests();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let redis = RedisServer::start().await.expect("starting redis");
        let database = testkit::fresh_database()
            .await
            .expect("creating a database");
        let mut config = Config::try_parse_from(["product-service"]).expect("default config");
        config.nats.nats_url = nats_server.url().to_owned();
        config.redis.redis_url = redis.url().to_owned();
        config.postgres.database_url = Some(database.url().to_owned());
        config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.seed_demo_catalog = false;
        config.reservation_sweep_interval_ms = 100;
        configure(&mut config);

        let (running, admin_addr) = start(config.clone()).await;
        let nats = nats_server.connect().await;
        let db = PgPool::connect(database.url())
            .await
            .expect("connecting to the test database");
        Self {
            client: ProductClient::new(rpc::Client::new(nats.clone())),
            nats,
            db,
            admin_addr,
            config,
            running: Some(running),
            _database: database,
            _redis: redis,
            _nats_server: nats_server,
        }
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(mut self) {
        self.stop_application().await;
    }

    /// Like [`TestApp::stop`], but keeps the servers running.
    pub async fn stop_application(&mut self) {
        let running = self.running.take().expect("the application is running");
        running.stop().await;
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

    /// The messages of `event`'s type in its stream, oldest first, once `count` of them have
    /// arrived (the relay publishes shortly after the commit); fails after a few seconds.
    pub async fn published(
        &self,
        event: &api::EventDescriptor,
        count: usize,
    ) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let started = std::time::Instant::now();
        loop {
            let messages = self.events_of(event).await;
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{} of {count} {} events published",
                messages.len(),
                event.name
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Every message of `event`'s type in its stream now.
    pub async fn events_of(
        &self,
        event: &api::EventDescriptor,
    ) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let jetstream = async_nats::jetstream::new(self.nats.clone());
        let stream = jetstream
            .get_stream(events::names::stream_of(event))
            .await
            .expect("the event stream exists");
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut messages = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let event_type = message
                .headers
                .get(events::headers::EVENT_TYPE)
                .map(|v| v.as_str().to_owned());
            if event_type.as_deref() == Some(event.name) {
                messages.push(message);
            }
        }
        messages
    }

    /// `(stock, reserved)` as stored.
    pub async fn stored_stock(&self, product_id: &str) -> (i64, i64) {
        sqlx::query_as("SELECT stock, reserved FROM inventory WHERE product_id = $1::uuid")
            .bind(product_id)
            .fetch_one(&self.db)
            .await
            .expect("reading inventory")
    }
}

/// Builds the application and runs it on a task until stopped; also returns its admin address.
pub async fn start(config: Config) -> (Running, SocketAddr) {
    let application = Application::build(config)
        .await
        .expect("building the application");
    let admin_addr = application.admin_addr();
    let running = Running::spawn("product-service", |signal| application.run_until(signal));
    (running, admin_addr)
}
