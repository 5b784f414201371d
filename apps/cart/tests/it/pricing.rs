//! Every read prices the cart from the catalog as it is now.

use api::product::{CreateProductRequest, UpdateProductRequest};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_change_shows_on_the_next_read() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 3).await.unwrap();
    app.update_product(UpdateProductRequest {
        id: mug.id.clone(),
        price: money(800, "USD"),
        ..Default::default()
    })
    .await;
    let cart = app.get(&user, "").await.unwrap();
    assert_eq!(cart.lines[0].unit_price, money(800, "USD"));
    assert_eq!(cart.lines[0].line_total, money(2400, "USD"));
    assert_eq!(cart.totals[0].total, money(2400, "USD"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_that_cannot_be_bought_are_flagged_kept_and_not_counted() {
    let app = TestApp::spawn().await;
    let [mug, tea, jam, pan] = [
        app.create_product(product("Mug")).await,
        app.create_product(product("Tea")).await,
        app.create_product(CreateProductRequest {
            initial_stock: 3,
            ..product("Jam")
        })
        .await,
        app.create_product(product("Pan")).await,
    ];
    let user = shopper();
    for (item, quantity) in [(&mug, 1), (&tea, 1), (&jam, 5), (&pan, 2)] {
        let answered = app.set(&user, "", &item.id, quantity).await;
        answered.expect("more than is in stock may be wished for");
    }
    app.update_product(UpdateProductRequest {
        id: mug.id.clone(),
        status: Some("inactive".into()),
        ..Default::default()
    })
    .await;
    app.set_stock(&tea, 0).await;

    let cart = app.get(&user, "").await.unwrap();
    assert_eq!(
        lines(&cart),
        [
            line(&mug, 1, "inactive"),
            line(&tea, 1, "out_of_stock"),
            line(&jam, 5, "insufficient_stock"),
            line(&pan, 2, "ok"),
        ]
    );
    assert_eq!(cart.lines[2].available, 3);
    assert_eq!(
        cart.lines[0].name, "Mug",
        "a flagged line still shows its product"
    );
    assert_eq!(cart.shops.len(), 1, "only the shop of the line that counts");
    assert_eq!(cart.shops[0].shop_id, pan.shop_id);
    assert_eq!(cart.totals[0].subtotal, money(2000, "USD"));
    assert!(!cart.checkout_ready);

    app.set(&user, "", &mug.id, 0).await.unwrap();
    app.set(&user, "", &tea.id, 0).await.unwrap();
    let cart = app.set(&user, "", &jam.id, 3).await.unwrap();
    assert!(cart.checkout_ready, "{:?}", lines(&cart));
    assert_eq!(cart.totals[0].subtotal, money(5000, "USD"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_still_answers_while_vouchers_are_down() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();
    // A code applied while the voucher service answered; now nothing answers for vouchers.
    sqlx::query("UPDATE carts SET voucher_code = 'SAVE10', version = version + 1")
        .execute(app.db())
        .await
        .unwrap();
    app.flush_redis().await;

    let cart = app.get(&user, "").await.unwrap();
    let voucher = cart.voucher.expect("the code is shown");
    assert_eq!(voucher.code, "SAVE10");
    assert!(!voucher.applies);
    assert_eq!(voucher.reason, cart_service::VOUCHER_UNAVAILABLE);
    assert!(!voucher.message.is_empty());
    assert_eq!(cart.totals[0].discount, money(0, "USD"));
    assert_eq!(cart.totals[0].total, money(2000, "USD"));

    let cart = app
        .client
        .remove_voucher(&user, &Default::default())
        .await
        .unwrap();
    assert!(cart.voucher.is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_catalog_is_down_a_cart_says_so_and_keeps_its_lines() {
    let mut app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();
    app.stop_catalog().await;

    let error = expect_error(app.get(&user, "").await, rpc::ErrorCode::Unavailable);
    assert!(error.message().contains("catalog"), "{error}");
    expect_error(
        app.set(&user, "", &mug.id, 3).await,
        rpc::ErrorCode::Unavailable,
    );
    let stored: serde_json::Value = sqlx::query_scalar("SELECT lines FROM carts")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(stored[0]["quantity"], 2, "a refused write changed nothing");
    app.stop().await;
}
