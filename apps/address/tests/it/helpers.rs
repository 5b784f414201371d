//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use address_service::Config;
use api::address::{
    Address, AddressClient, CreateAddressRequest, DeleteAddressRequest, GetAddressRequest,
    ListAddressesRequest, SetDefaultAddressRequest, UpdateAddressRequest,
};
use rpc::Context;
use testkit::Harness;
use uuid::Uuid;

pub use testkit::{bad_fields, expect_error};

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
        testkit::callers::customer(&self.id.to_string())
    }
}

pub use testkit::callers::anonymous;

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

testkit::test_app!(TestApp, Config, AddressClient);

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(address_service::start, configure).await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
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
        .fetch_all(self.db())
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
            .fetch_one(self.db())
            .await
            .expect("counting addresses")
    }

    /// How many addresses there are in the database, of any user.
    pub async fn stored_total(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM addresses")
            .fetch_one(self.db())
            .await
            .expect("counting addresses")
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
