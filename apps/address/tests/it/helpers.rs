//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::net::SocketAddr;

use address_service::{Application, Config};
use api::address::{
    Address, AddressClient, CreateAddressRequest, DeleteAddressRequest, GetAddressRequest,
    ListAddressesRequest, SetDefaultAddressRequest, UpdateAddressRequest,
};
use clap::Parser as _;
use rpc::{Context, ErrorCode, Principal, roles};
use sqlx::PgPool;
use testkit::{NatsServer, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A signed-in customer with a fresh user id.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
}

impl User {
    pub fn signed_up() -> Self {
        User { id: Uuid::now_v7() }
    }

    pub fn ctx(&self) -> Context {
        Context::background().with_principal(Principal {
            user_id: self.id.to_string(),
            roles: vec![roles::CUSTOMER.into()],
        })
    }
}

pub fn anonymous() -> Context {
    Context::background()
}

/// A valid address request to adjust with struct update syntax.
pub fn address(recipient_name: &str) -> CreateAddressRequest {
    CreateAddressRequest {
        recipient_name: recipient_name.into(),
        phone: "+1 415 555 2671".into(),
        line1: "1 Market Street".into(),
        line2: "Suite 300".into(),
        city: "San Francisco".into(),
        region: "CA".into(),
        postal_code: "94105".into(),
        country_code: "us".into(),
        is_default: false,
    }
}

/// A replacement of every field of `id` with a valid German address.
pub fn replacement(id: &str) -> UpdateAddressRequest {
    UpdateAddressRequest {
        id: id.into(),
        recipient_name: "Grace Hopper".into(),
        phone: String::new(),
        line1: "Unter den Linden 1".into(),
        line2: String::new(),
        city: "Berlin".into(),
        region: String::new(),
        postal_code: "10117".into(),
        country_code: "DE".into(),
    }
}

/// Asserts `result` failed with `code`, and returns the error.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, rpc::Error>,
    code: ErrorCode,
) -> rpc::Error {
    match result {
        Ok(value) => panic!("expected {code}, got {value:?}"),
        Err(error) => {
            assert_eq!(error.code(), code, "{error}");
            error
        }
    }
}

/// The fields an `invalid_argument` error names, in order.
#[track_caller]
pub fn bad_fields(error: &rpc::Error) -> Vec<&str> {
    assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
    error.details().iter().map(|d| d.field.as_str()).collect()
}

pub struct TestApp {
    pub client: AddressClient,
    /// The service's own database, for checking what it stored.
    pub db: PgPool,
    shutdown: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the servers outlive the application.
    _database: TestDatabase,
    _nats_server: NatsServer,
}

impl TestApp {
    pub async fn spawn() -> Self {
        telemetry::init_for_tests();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let database = testkit::fresh_database()
            .await
            .expect("creating a database");
        let mut config = Config::try_parse_from(["address-service"]).expect("default config");
        config.nats.nats_url = nats_server.url().to_owned();
        config.postgres.database_url = Some(database.url().to_owned());
        config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let application = Application::build(config)
            .await
            .expect("building the application");
        let (shutdown, signal) = oneshot::channel::<()>();
        let running = tokio::spawn(application.run_until(async {
            let _ = signal.await;
        }));
        let nats = nats_server.connect().await;
        let db = PgPool::connect(database.url())
            .await
            .expect("connecting to the test database");
        Self {
            client: AddressClient::new(rpc::Client::new(nats)),
            db,
            shutdown: Some(shutdown),
            running: Some(running),
            _database: database,
            _nats_server: nats_server,
        }
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let running = self.running.take().expect("the application is running");
        running
            .await
            .expect("the application task panicked")
            .expect("the application shut down with an error");
    }

    pub async fn create(
        &self,
        user: &User,
        request: CreateAddressRequest,
    ) -> Result<Address, rpc::Error> {
        self.client.create_address(&user.ctx(), &request).await
    }

    /// Creates `request` for `user`, which must succeed.
    pub async fn add(&self, user: &User, request: CreateAddressRequest) -> Address {
        self.create(user, request)
            .await
            .expect("creating an address")
    }

    pub async fn get(&self, user: &User, id: &str) -> Result<Address, rpc::Error> {
        let request = GetAddressRequest { id: id.into() };
        self.client.get_address(&user.ctx(), &request).await
    }

    pub async fn list(&self, user: &User) -> Vec<Address> {
        self.client
            .list_addresses(&user.ctx(), &ListAddressesRequest {})
            .await
            .expect("listing addresses")
            .addresses
    }

    pub async fn update(
        &self,
        user: &User,
        request: UpdateAddressRequest,
    ) -> Result<Address, rpc::Error> {
        self.client.update_address(&user.ctx(), &request).await
    }

    pub async fn delete(&self, user: &User, id: &str) -> Result<(), rpc::Error> {
        let request = DeleteAddressRequest { id: id.into() };
        self.client
            .delete_address(&user.ctx(), &request)
            .await
            .map(drop)
    }

    pub async fn set_default(&self, user: &User, id: &str) -> Result<Address, rpc::Error> {
        let request = SetDefaultAddressRequest { id: id.into() };
        self.client.set_default_address(&user.ctx(), &request).await
    }

    /// The ids of `user`'s stored addresses that are marked default, read from the database.
    pub async fn stored_defaults(&self, user: &User) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT id::text FROM addresses WHERE user_id = $1 AND is_default ORDER BY id",
        )
        .bind(user.id)
        .fetch_all(&self.db)
        .await
        .expect("reading the defaults")
    }

    /// Asserts that the database holds exactly one default of `user`'s, address `id`.
    pub async fn assert_only_default(&self, user: &User, id: &str) {
        assert_eq!(
            self.stored_defaults(user).await,
            [id],
            "the stored defaults"
        );
    }

    /// How many addresses `user` has in the database.
    pub async fn stored_count(&self, user: &User) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM addresses WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(&self.db)
            .await
            .expect("counting addresses")
    }

    /// How many addresses there are in the database, of any user.
    pub async fn stored_total(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM addresses")
            .fetch_one(&self.db)
            .await
            .expect("counting addresses")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
