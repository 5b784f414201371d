//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use api::shop::{
    ApproveShopRequest, CreateShopRequest, GetShopRequest, ListMyShopsRequest, ListShopsRequest,
    Shop, ShopClient, SuspendShopRequest,
};
use rpc::{Context, roles};
use shop_service::Config;
use testkit::Harness;
use uuid::Uuid;

pub use testkit::callers::{admin, anonymous};
pub use testkit::{bad_fields, expect_error};

/// A signed-in user with a fresh id and the roles they were given.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    roles: &'static [&'static str],
}

impl User {
    pub fn seller() -> Self {
        User {
            id: Uuid::now_v7(),
            roles: &[roles::CUSTOMER, roles::SELLER],
        }
    }

    pub fn customer() -> Self {
        User {
            id: Uuid::now_v7(),
            roles: &[roles::CUSTOMER],
        }
    }

    pub fn ctx(&self) -> Context {
        testkit::callers::signed_in(&self.id.to_string(), self.roles)
    }
}

/// A valid shop request with a slug of its own, to adjust with struct update syntax.
pub fn shop(name: &str) -> CreateShopRequest {
    let suffix = Uuid::now_v7().simple().to_string();
    CreateShopRequest {
        name: name.into(),
        slug: format!("shop-{}", &suffix[suffix.len() - 12..]),
        description: format!("The {name}."),
        logo_url: String::new(),
        contact_email: "owner@shop.example".into(),
        currency: "EUR".into(),
    }
}

testkit::test_app!(TestApp, Config, ShopClient);

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(shop_service::start, |config: &mut Config| {
            config.seed_demo_shop = false;
            configure(config);
        })
        .await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
    }

    /// `user` opens `request`, which must succeed.
    pub async fn open(&self, user: &User, request: CreateShopRequest) -> Shop {
        self.client
            .create_shop(&user.ctx(), &request)
            .await
            .expect("opening a shop")
    }

    /// `user` opens a shop and an admin approves it.
    pub async fn open_active(&self, user: &User, name: &str) -> Shop {
        let shop = self.open(user, shop(name)).await;
        self.approve(&shop.id).await.expect("approving the shop")
    }

    pub async fn approve(&self, id: &str) -> Result<Shop, rpc::Error> {
        self.client
            .approve_shop(&admin(), &ApproveShopRequest { id: id.into() })
            .await
    }

    pub async fn suspend(&self, id: &str, reason: &str) -> Result<Shop, rpc::Error> {
        let request = SuspendShopRequest {
            id: id.into(),
            reason: reason.into(),
        };
        self.client.suspend_shop(&admin(), &request).await
    }

    pub async fn get(&self, ctx: &Context, id_or_slug: &str) -> Result<Shop, rpc::Error> {
        let request = GetShopRequest {
            id: id_or_slug.into(),
        };
        self.client.get_shop(ctx, &request).await
    }

    /// The names on one page of the public listing (or an admin's, by status).
    pub async fn list(
        &self,
        ctx: &Context,
        status: &str,
        page_size: i32,
        cursor: &str,
    ) -> Result<(Vec<String>, String), rpc::Error> {
        let request = ListShopsRequest {
            status: status.into(),
            page_size,
            cursor: cursor.into(),
        };
        let page = self.client.list_shops(ctx, &request).await?;
        let names = page.shops.into_iter().map(|shop| shop.name).collect();
        Ok((names, page.next_cursor))
    }

    /// The names on one page of `user`'s own shops.
    pub async fn list_mine(
        &self,
        user: &User,
        page_size: i32,
        cursor: &str,
    ) -> (Vec<String>, String) {
        let request = ListMyShopsRequest {
            page_size,
            cursor: cursor.into(),
        };
        let page = self
            .client
            .list_my_shops(&user.ctx(), &request)
            .await
            .expect("listing my shops");
        let names = page.shops.into_iter().map(|shop| shop.name).collect();
        (names, page.next_cursor)
    }

    /// How many shops are stored, whoever owns them.
    pub async fn stored_shops(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM shops")
            .fetch_one(self.db())
            .await
            .expect("counting shops")
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
