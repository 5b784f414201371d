//! What the checkout asks of the cart: subtotals, a snapshot, and emptying it once paid.

use api::cart::{
    CartLineRef, CompleteCheckoutRequest, GetCartSubtotalsRequest, GetCheckoutSnapshotRequest,
    ShopSubtotal,
};
use api::product::CreateProductRequest;
use rpc::{Context, ErrorCode};
use uuid::Uuid;

use crate::helpers::*;

fn bought(product_id: &str, quantity: i32) -> CartLineRef {
    CartLineRef {
        product_id: product_id.into(),
        quantity,
    }
}

impl TestApp {
    async fn complete(
        &self,
        user: &str,
        order_id: &str,
        lines: Vec<CartLineRef>,
    ) -> Result<bool, rpc::Error> {
        self.client
            .complete_checkout(
                &Context::background(),
                &CompleteCheckoutRequest {
                    user_id: user.into(),
                    order_id: order_id.into(),
                    lines,
                },
            )
            .await
            .map(|response| response.cleared)
    }

    async fn subtotals(
        &self,
        user_id: &str,
        cart_token: &str,
    ) -> Result<(String, Vec<(String, i64)>), rpc::Error> {
        let subtotals = self
            .client
            .get_cart_subtotals(
                &Context::background(),
                &GetCartSubtotalsRequest {
                    user_id: user_id.into(),
                    cart_token: cart_token.into(),
                },
            )
            .await?;
        Ok((
            subtotals.currency,
            subtotals
                .subtotals
                .into_iter()
                .map(
                    |ShopSubtotal {
                         shop_id,
                         subtotal_minor_units,
                     }| (shop_id, subtotal_minor_units),
                )
                .collect(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_checkout_happens_once_per_order() {
    let app = TestApp::spawn().await;
    let [mug, tea, jam] = [
        app.create_product(product("Mug")).await,
        app.create_product(product("Tea")).await,
        app.create_product(product("Jam")).await,
    ];
    let user = shopper();
    let id = user_id(&user);
    app.set(&user, "", &mug.id, 3).await.unwrap();
    app.set(&user, "", &tea.id, 1).await.unwrap();
    let order = Uuid::now_v7().to_string();
    let order_lines = vec![bought(&mug.id, 2), bought(&tea.id, 1)];

    assert!(
        app.complete(&id, &order, order_lines.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        lines(&app.get(&user, "").await.unwrap()),
        [line(&mug, 1, "ok")],
        "what the order took left the cart"
    );
    app.set(&user, "", &jam.id, 1).await.unwrap();
    let retried = app
        .complete(&id, &order, order_lines.clone())
        .await
        .unwrap();
    assert!(!retried, "a repeat says it changed nothing");
    assert_eq!(
        lines(&app.get(&user, "").await.unwrap()),
        [line(&mug, 1, "ok"), line(&jam, 1, "ok")],
        "lines added since stay"
    );
    let stranger = Uuid::now_v7().to_string();
    expect_error(
        app.complete(&stranger, &order, order_lines).await,
        ErrorCode::Conflict,
    );
    expect_error(
        app.complete(&id, &order, vec![bought(&mug.id, 1)]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(
        lines(&app.get(&user, "").await.unwrap()),
        [line(&mug, 1, "ok"), line(&jam, 1, "ok")],
        "a refused retry changed nothing"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtotals_are_per_shop_of_the_lines_that_count() {
    let app = TestApp::spawn().await;
    let shop = app.new_shop("USD").await;
    let [mug, tea, retired] = [
        app.create_product(CreateProductRequest {
            shop_id: shop.clone(),
            price: money(1250, "USD"),
            ..product("Mug")
        })
        .await,
        app.create_product(CreateProductRequest {
            shop_id: shop.clone(),
            ..product("Tea")
        })
        .await,
        app.create_product(product("Retired")).await,
    ];
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();
    app.set(&user, "", &tea.id, 1).await.unwrap();
    app.set(&user, "", &retired.id, 1).await.unwrap();
    app.set_stock(&retired, 0).await;
    assert_eq!(
        app.subtotals(&user_id(&user), "").await.unwrap(),
        ("USD".to_owned(), vec![(shop.clone(), 3500)])
    );

    let token = app.new_guest_cart().await;
    assert_eq!(
        app.subtotals("", &token).await.unwrap(),
        (String::new(), vec![]),
        "an empty cart has no currency and no subtotals"
    );
    app.set(&anonymous(), &token, &tea.id, 2).await.unwrap();
    assert_eq!(
        app.subtotals("", &token).await.unwrap(),
        ("USD".to_owned(), vec![(shop, 2000)])
    );

    expect_error(
        app.subtotals(&Uuid::now_v7().to_string(), "").await,
        ErrorCode::NotFound,
    );
    expect_error(app.subtotals("", "unknown").await, ErrorCode::NotFound);
    let error = expect_error(app.subtotals("", "").await, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&error), ["user_id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_snapshot_is_the_users_priced_cart() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    let snapshot = |user_id: String| {
        let client = app.client.clone();
        async move {
            client
                .get_checkout_snapshot(
                    &Context::background(),
                    &GetCheckoutSnapshotRequest { user_id },
                )
                .await
                .expect("a snapshot")
        }
    };
    assert!(snapshot(user_id(&user)).await.lines.is_empty());
    app.set(&user, "", &mug.id, 2).await.unwrap();
    let cart = snapshot(user_id(&user)).await;
    assert_eq!(lines(&cart), [line(&mug, 2, "ok")]);
    assert_eq!(cart.user_id, user_id(&user));
    assert_eq!(cart.totals[0].total, money(2000, "USD"));
    assert!(cart.checkout_ready);
    app.stop().await;
}
