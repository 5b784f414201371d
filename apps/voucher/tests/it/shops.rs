//! Vouchers of shops: sellers create and manage them for the shops they own while those are
//! active, and nobody else sees them. The real shop service answers who owns a shop.

use api::shop::{ApproveShopRequest, CreateShopRequest, ShopClient};
use api::voucher::{
    CreateVoucherRequest, GetVoucherRequest, ListVouchersRequest, UpdateVoucherRequest, Voucher,
};
use rpc::{Context, ErrorCode};
use testkit::Companion;

use crate::helpers::{
    TestApp, admin, bad_fields, customer, expect_error, new_id, seller, subtotal, usd, voucher,
};

/// The voucher service with the shop service beside it.
struct Marketplace {
    app: TestApp,
    shops: ShopClient,
    _shop_service: Companion,
}

impl Marketplace {
    async fn start() -> Self {
        let app = TestApp::spawn().await;
        let shop_service = app
            .companion(shop_service::start, |config: &mut shop_service::Config| {
                config.seed_demo_shop = false;
            })
            .await;
        let shops = ShopClient::new(rpc::Client::new(app.nats.clone()));
        Self {
            app,
            shops,
            _shop_service: shop_service,
        }
    }

    /// A shop `owner` opens in `currency`; an admin approves it when `approved`.
    async fn open_shop(&self, owner: &Context, currency: &str, approved: bool) -> String {
        let suffix = new_id().replace('-', "");
        let shop = self
            .shops
            .create_shop(
                owner,
                &CreateShopRequest {
                    name: "Voucher Test Shop".into(),
                    slug: format!("shop-{}", &suffix[suffix.len() - 12..]),
                    contact_email: "owner@shop.example".into(),
                    currency: currency.into(),
                    ..Default::default()
                },
            )
            .await
            .expect("opening a shop");
        if approved {
            self.shops
                .approve_shop(
                    &admin(),
                    &ApproveShopRequest {
                        id: shop.id.clone(),
                    },
                )
                .await
                .expect("approving a shop");
        }
        shop.id
    }

    async fn create(
        &self,
        caller: &Context,
        shop_id: &str,
        code: &str,
    ) -> Result<Voucher, rpc::Error> {
        self.app
            .client
            .create_voucher(
                caller,
                &CreateVoucherRequest {
                    shop_id: shop_id.into(),
                    ..voucher(code)
                },
            )
            .await
    }

    async fn get(&self, caller: &Context, code: &str) -> Result<Voucher, rpc::Error> {
        self.app
            .client
            .get_voucher(caller, &GetVoucherRequest { code: code.into() })
            .await
    }

    async fn disable(&self, caller: &Context, code: &str) -> Result<Voucher, rpc::Error> {
        self.app
            .client
            .update_voucher(
                caller,
                &UpdateVoucherRequest {
                    code: code.into(),
                    status: Some("disabled".into()),
                    ..Default::default()
                },
            )
            .await
    }

    async fn list(&self, caller: &Context, shop_id: &str) -> Result<Vec<String>, rpc::Error> {
        let page = self
            .app
            .client
            .list_vouchers(
                caller,
                &ListVouchersRequest {
                    shop_id: shop_id.into(),
                    ..Default::default()
                },
            )
            .await?;
        Ok(page.vouchers.into_iter().map(|v| v.code).collect())
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_manages_the_vouchers_of_their_own_active_shop_and_nobody_else_sees_them() {
    let market = Marketplace::start().await;
    let owner_id = new_id();
    let owner = seller(&owner_id);
    let shop = market.open_shop(&owner, "USD", true).await;

    let created = market.create(&owner, &shop, "Shop-Ten").await.unwrap();
    assert_eq!(created.shop_id, shop);
    assert_eq!(created.created_by, owner_id);
    assert_eq!(market.get(&owner, "shop-ten").await.unwrap(), created);
    assert_eq!(
        market.disable(&owner, "SHOP-TEN").await.unwrap().status,
        "disabled"
    );
    assert_eq!(market.list(&owner, &shop).await.unwrap(), ["Shop-Ten"]);

    let rival = seller(&new_id());
    let rivals_shop = market.open_shop(&rival, "USD", true).await;
    market
        .create(&rival, &rivals_shop, "Rival-Deal")
        .await
        .unwrap();
    for code in ["Shop-Ten", "shop-ten"] {
        let error = expect_error(market.get(&rival, code).await, ErrorCode::NotFound);
        let missing = expect_error(market.get(&rival, "never-made").await, ErrorCode::NotFound);
        assert_eq!(
            error.message().to_lowercase().replace("shop-ten", "x"),
            missing.message().to_lowercase().replace("never-made", "x"),
            "another seller's voucher reads exactly like a missing one"
        );
        expect_error(market.disable(&rival, code).await, ErrorCode::NotFound);
    }
    expect_error(
        market.create(&rival, &shop, "Hijack").await,
        ErrorCode::NotFound,
    );
    expect_error(market.list(&rival, &shop).await, ErrorCode::NotFound);
    expect_error(
        market.get(&customer(), "Shop-Ten").await,
        ErrorCode::NotFound,
    );
    expect_error(
        market.create(&customer(), &shop, "Customer-Deal").await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(
        market.list(&rival, &rivals_shop).await.unwrap(),
        ["Rival-Deal"]
    );

    // Admins see and change every shop's vouchers, and create them for any shop.
    assert_eq!(
        market.get(&admin(), "shop-ten").await.unwrap().shop_id,
        shop
    );
    market.create(&admin(), &shop, "House-Deal").await.unwrap();
    assert_eq!(
        market.list(&admin(), &shop).await.unwrap(),
        ["House-Deal", "Shop-Ten"]
    );
    assert_eq!(market.list(&admin(), "").await.unwrap().len(), 3);
    assert_eq!(market.app.stored_vouchers().await, 3);
    market.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_voucher_needs_an_active_shop_in_its_currency() {
    let market = Marketplace::start().await;
    let owner = seller(&new_id());
    let pending = market.open_shop(&owner, "USD", false).await;
    expect_error(
        market.create(&owner, &pending, "Too-Early").await,
        ErrorCode::FailedPrecondition,
    );
    market
        .create(&admin(), &pending, "Admin-Early")
        .await
        .expect("an admin may create for a shop in any status");

    let euros = market.open_shop(&owner, "EUR", true).await;
    let error = expect_error(
        market.create(&owner, &euros, "Dollar-Deal").await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["currency"]);
    assert!(error.details()[0].problem.contains("EUR"), "{error}");

    expect_error(
        market.create(&owner, &new_id(), "No-Shop").await,
        ErrorCode::NotFound,
    );
    assert_eq!(market.app.stored_vouchers().await, 1);
    market.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_voucher_discounts_only_its_shops_subtotal() {
    let market = Marketplace::start().await;
    let owner = seller(&new_id());
    let shop = market.open_shop(&owner, "USD", true).await;
    market
        .app
        .client
        .create_voucher(
            &owner,
            &CreateVoucherRequest {
                shop_id: shop.clone(),
                percent_off: 20,
                min_order_minor_units: 1000,
                ..voucher("Shop-Twenty")
            },
        )
        .await
        .unwrap();
    let other = new_id();
    let app = &market.app;

    let both = app
        .evaluate(
            "shop-twenty",
            "",
            "USD",
            vec![subtotal(&shop, 1500), subtotal(&other, 9000)],
        )
        .await;
    assert!(both.applies, "{both:?}");
    assert_eq!(both.discount, usd(300), "20% of the shop's 15.00 only");
    assert_eq!(both.shop_id, shop);

    let elsewhere = app
        .evaluate("shop-twenty", "", "USD", vec![subtotal(&other, 9000)])
        .await;
    assert_eq!(elsewhere.reason, "wrong_shop");
    let little = app
        .evaluate(
            "shop-twenty",
            "",
            "USD",
            vec![subtotal(&shop, 999), subtotal(&other, 9000)],
        )
        .await;
    assert_eq!(
        little.reason, "below_minimum",
        "the minimum is of the shop's subtotal"
    );
    market.stop().await;
}
