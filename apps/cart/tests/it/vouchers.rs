//! A voucher code on a cart: evaluated by the voucher service on every read.

use api::cart::{ApplyVoucherRequest, Cart, RemoveVoucherRequest};
use api::product::CreateProductRequest;
use api::voucher::CreateVoucherRequest;
use rpc::{Context, ErrorCode};
use testkit::callers::admin;

use crate::helpers::*;

impl TestApp {
    /// A platform-wide voucher taking a fixed amount of USD off, from `min_order` up.
    async fn fixed_voucher(&self, code: &str, amount_off: i64, min_order: i64) {
        self.vouchers
            .create_voucher(
                &admin(),
                &CreateVoucherRequest {
                    code: code.into(),
                    kind: "fixed".into(),
                    amount_off_minor_units: amount_off,
                    currency: "USD".into(),
                    min_order_minor_units: min_order,
                    ..Default::default()
                },
            )
            .await
            .expect("creating a voucher");
    }

    async fn apply(&self, ctx: &Context, token: &str, code: &str) -> Result<Cart, rpc::Error> {
        self.client
            .apply_voucher(
                ctx,
                &ApplyVoucherRequest {
                    cart_token: token.into(),
                    code: code.into(),
                },
            )
            .await
    }
}

/// `(shop id, discount, total)` of every shop, in minor units.
fn shop_discounts(cart: &Cart) -> Vec<(String, i64, i64)> {
    cart.shops
        .iter()
        .map(|shop| {
            (
                shop.shop_id.clone(),
                shop.discount.as_ref().unwrap().minor_units,
                shop.total.as_ref().unwrap().minor_units,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_voucher_is_spread_over_the_shops_to_the_unit() {
    let app = TestApp::spawn_with_vouchers().await;
    app.fixed_voucher("HUNDRED", 100, 0).await;
    let user = shopper();
    let mut shops = Vec::new();
    for name in ["Mug", "Tea", "Jam"] {
        let item = app.create_product(product(name)).await;
        app.set(&user, "", &item.id, 1).await.unwrap();
        shops.push(item.shop_id);
    }
    let cart = app.apply(&user, "", "HUNDRED").await.unwrap();
    let voucher = cart.voucher.clone().expect("the applied voucher");
    assert_eq!(voucher.code, "HUNDRED");
    assert!(voucher.applies, "{voucher:?}");
    assert_eq!(voucher.discount, money(100, "USD"));
    assert_eq!(voucher.shop_id, "", "platform-wide");
    assert_eq!(
        shop_discounts(&cart),
        [
            (shops[0].clone(), 34, 966),
            (shops[1].clone(), 33, 967),
            (shops[2].clone(), 33, 967)
        ]
    );
    assert_eq!(cart.totals[0].subtotal, money(3000, "USD"));
    assert_eq!(cart.totals[0].discount, money(100, "USD"));
    assert_eq!(cart.totals[0].total, money(2900, "USD"));

    let read = app.get(&user, "").await.unwrap();
    assert_eq!(read.voucher, cart.voucher, "a read evaluates it again");
    let removed = app
        .client
        .remove_voucher(&user, &RemoveVoucherRequest::default())
        .await
        .unwrap();
    assert!(removed.voucher.is_none());
    assert_eq!(removed.totals[0].total, money(3000, "USD"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_that_does_not_apply_is_refused_with_its_reason_and_not_kept() {
    let app = TestApp::spawn_with_vouchers().await;
    app.fixed_voucher("BIGSPENDER", 500, 100_000).await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 1).await.unwrap();

    let error = expect_error(
        app.apply(&user, "", "BIGSPENDER").await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(named_fields(&error), ["code"]);
    assert!(!error.message().is_empty());
    let error = expect_error(
        app.apply(&user, "", "NOSUCHCODE").await,
        ErrorCode::NotFound,
    );
    assert_eq!(named_fields(&error), ["code"]);
    let error = expect_error(
        app.apply(&user, "", "bad code!").await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["code"]);
    assert!(app.get(&user, "").await.unwrap().voucher.is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_that_stops_applying_shows_why_and_takes_nothing_off() {
    let app = TestApp::spawn_with_vouchers().await;
    app.fixed_voucher("FIVER", 500, 2000).await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();
    let cart = app.apply(&user, "", "FIVER").await.unwrap();
    assert_eq!(cart.totals[0].total, money(1500, "USD"));

    let cart = app.set(&user, "", &mug.id, 1).await.unwrap();
    let voucher = cart.voucher.expect("the code stays on the cart");
    assert!(!voucher.applies);
    assert_eq!(voucher.reason, "below_minimum");
    assert!(!voucher.message.is_empty());
    assert_eq!(cart.totals[0].discount, money(0, "USD"));
    assert_eq!(cart.totals[0].total, money(1000, "USD"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guests_voucher_comes_along_when_the_user_has_none() {
    let app = TestApp::spawn_with_vouchers().await;
    app.fixed_voucher("WELCOME", 200, 0).await;
    let tea = app
        .create_product(CreateProductRequest {
            shop_id: app.new_shop("USD").await,
            ..product("Tea")
        })
        .await;
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &tea.id, 1).await.unwrap();
    let guest_cart = app.apply(&anonymous(), &token, "WELCOME").await.unwrap();
    assert!(
        guest_cart.voucher.unwrap().applies,
        "a guest may apply a code"
    );

    let user = shopper();
    let cart = app.get(&user, &token).await.unwrap();
    assert_eq!(cart.voucher.unwrap().code, "WELCOME");
    assert_eq!(cart.totals[0].total, money(800, "USD"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_voucher_discounts_only_its_shops_lines() {
    let app = TestApp::spawn_with_vouchers().await;
    let owner = seller();
    let own_shop = app.new_shop_of(&owner, "USD").await;
    app.vouchers
        .create_voucher(
            &owner,
            &CreateVoucherRequest {
                code: "SHOP250".into(),
                shop_id: own_shop.clone(),
                kind: "fixed".into(),
                amount_off_minor_units: 250,
                currency: "USD".into(),
                ..Default::default()
            },
        )
        .await
        .expect("the shop's owner creates its voucher");
    let mug = app
        .create_product(CreateProductRequest {
            shop_id: own_shop.clone(),
            ..product("Mug")
        })
        .await;
    let tea = app.create_product(product("Tea")).await;
    let user = shopper();
    app.set(&user, "", &tea.id, 1).await.unwrap();
    app.set(&user, "", &mug.id, 1).await.unwrap();

    let cart = app.apply(&user, "", "SHOP250").await.unwrap();
    let voucher = cart.voucher.clone().unwrap();
    assert!(voucher.applies, "{voucher:?}");
    assert_eq!(voucher.shop_id, own_shop);
    assert_eq!(
        shop_discounts(&cart),
        [(tea.shop_id.clone(), 0, 1000), (own_shop, 250, 750)]
    );
    assert_eq!(cart.totals[0].total, money(1750, "USD"));
    app.stop().await;
}
