//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::time::{Duration, Instant};

use api::common::Money;
use api::voucher::{
    CreateVoucherRequest, EvaluateVoucherRequest, GetVoucherRequest, Redemption, RedemptionRequest,
    ReserveVoucherRequest, ShopSubtotal, UpdateVoucherRequest, Voucher, VoucherClient,
    VoucherEvaluation,
};
use rpc::{Context, roles};
use testkit::Harness;
use uuid::Uuid;
use voucher_service::Config;

pub use testkit::callers::{admin, anonymous};
pub use testkit::{bad_fields, expect_error};

/// A signed-in customer with a fresh user id (a UUID, as the user service issues).
pub fn customer() -> Context {
    testkit::callers::customer(&new_id())
}

/// A signed-in seller with this user id.
pub fn seller(user_id: &str) -> Context {
    testkit::callers::signed_in(user_id, &[roles::CUSTOMER, roles::SELLER])
}

pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

pub fn usd(minor_units: i64) -> Option<Money> {
    money(minor_units, "USD")
}

pub fn money(minor_units: i64, currency: &str) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: currency.into(),
    })
}

/// A valid platform-wide voucher: 10% off, in USD, unlimited.
pub fn voucher(code: &str) -> CreateVoucherRequest {
    CreateVoucherRequest {
        code: code.into(),
        description: format!("The {code} voucher."),
        kind: "percent".into(),
        percent_off: 10,
        currency: "USD".into(),
        ..Default::default()
    }
}

pub fn subtotal(shop_id: &str, minor_units: i64) -> ShopSubtotal {
    ShopSubtotal {
        shop_id: shop_id.into(),
        subtotal_minor_units: minor_units,
    }
}

testkit::test_app!(TestApp, Config, VoucherClient);

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(voucher_service::start, |config: &mut Config| {
            config.redemption_sweep_interval_ms = 100;
            configure(config);
        })
        .await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
    }

    /// An admin creates `request`.
    pub async fn create(&self, request: CreateVoucherRequest) -> Voucher {
        self.client
            .create_voucher(&admin(), &request)
            .await
            .expect("creating a voucher")
    }

    /// The voucher as an admin sees it.
    pub async fn get(&self, code: &str) -> Voucher {
        self.client
            .get_voucher(&admin(), &GetVoucherRequest { code: code.into() })
            .await
            .expect("reading a voucher")
    }

    pub async fn update(&self, request: UpdateVoucherRequest) -> Result<Voucher, rpc::Error> {
        self.client.update_voucher(&admin(), &request).await
    }

    pub async fn reserve(
        &self,
        code: &str,
        user_id: &str,
        order_id: &str,
        amount: i64,
        ttl_seconds: i32,
    ) -> Result<Redemption, rpc::Error> {
        self.client
            .reserve_voucher(
                &anonymous(),
                &ReserveVoucherRequest {
                    code: code.into(),
                    user_id: user_id.into(),
                    order_id: order_id.into(),
                    amount: usd(amount),
                    ttl_seconds,
                },
            )
            .await
    }

    pub async fn commit(&self, order_id: &str) -> Result<Redemption, rpc::Error> {
        self.client
            .commit_redemption(
                &anonymous(),
                &RedemptionRequest {
                    order_id: order_id.into(),
                },
            )
            .await
    }

    pub async fn release(&self, order_id: &str) -> Result<Redemption, rpc::Error> {
        self.client
            .release_redemption(
                &anonymous(),
                &RedemptionRequest {
                    order_id: order_id.into(),
                },
            )
            .await
    }

    pub async fn return_use(&self, order_id: &str) -> Result<Redemption, rpc::Error> {
        self.client
            .return_redemption(
                &anonymous(),
                &RedemptionRequest {
                    order_id: order_id.into(),
                },
            )
            .await
    }

    /// How many uses `user_id` has of the voucher `code`, as stored (0 without a row).
    pub async fn stored_user_uses(&self, code: &str, user_id: &str) -> i32 {
        sqlx::query_scalar(
            "SELECT COALESCE(( \
                 SELECT u.uses FROM voucher_user_uses u JOIN vouchers v ON v.id = u.voucher_id \
                 WHERE v.code_key = lower($1) AND u.user_id = $2::uuid), 0)",
        )
        .bind(code)
        .bind(user_id)
        .fetch_one(self.db())
        .await
        .expect("reading a user's uses")
    }

    pub async fn evaluate(
        &self,
        code: &str,
        user_id: &str,
        currency: &str,
        subtotals: Vec<ShopSubtotal>,
    ) -> VoucherEvaluation {
        self.client
            .evaluate_voucher(
                &anonymous(),
                &EvaluateVoucherRequest {
                    code: code.into(),
                    user_id: user_id.into(),
                    currency: currency.into(),
                    subtotals,
                },
            )
            .await
            .expect("evaluating a voucher")
    }

    /// `(used_count, reserved_count)` as stored.
    pub async fn stored_counts(&self, code: &str) -> (i32, i32) {
        sqlx::query_as("SELECT used_count, reserved_count FROM vouchers WHERE code_key = lower($1)")
            .bind(code)
            .fetch_one(self.db())
            .await
            .expect("reading a voucher's counts")
    }

    /// The stored status of an order's redemption.
    pub async fn stored_status(&self, order_id: &str) -> String {
        sqlx::query_scalar("SELECT status FROM redemptions WHERE order_id = $1::uuid")
            .bind(order_id)
            .fetch_one(self.db())
            .await
            .expect("reading a redemption")
    }

    /// How many vouchers are stored.
    pub async fn stored_vouchers(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM vouchers")
            .fetch_one(self.db())
            .await
            .expect("counting vouchers")
    }
}

/// Polls `check` until it holds, failing the test after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
