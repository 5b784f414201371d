//! A guest's cart: opened by its token alone.

use api::product::CreateProductRequest;
use rpc::ErrorCode;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_fills_a_cart_and_reads_it_priced() {
    let app = TestApp::spawn().await;
    let mug = app
        .create_product(CreateProductRequest {
            price: money(1250, "USD"),
            image_urls: vec!["https://img.example/mug.png".into()],
            ..product("Mug")
        })
        .await;
    let tea = app.create_product(product("Tea")).await;
    let token = app.new_guest_cart().await;
    let guest = anonymous();

    app.set(&guest, &token, &mug.id, 2).await.unwrap();
    let answered = app.set(&guest, &token, &tea.id, 1).await.unwrap();
    let cart = app.get(&guest, &token).await.unwrap();
    assert_eq!(
        cart.lines, answered.lines,
        "a write answers the cart as a read does"
    );

    assert_eq!(cart.user_id, "", "a guest cart has no owner");
    assert_eq!(lines(&cart), [line(&mug, 2, "ok"), line(&tea, 1, "ok")]);
    let first = &cart.lines[0];
    assert_eq!(first.name, "Mug");
    assert_eq!(first.shop_id, mug.shop_id);
    assert_eq!(first.image_url, "https://img.example/mug.png");
    assert_eq!(first.unit_price, money(1250, "USD"));
    assert_eq!(first.line_total, money(2500, "USD"));
    assert_eq!(first.available, 10);
    assert_eq!(cart.currency, "USD");
    let shops: Vec<_> = cart
        .shops
        .iter()
        .map(|shop| {
            (
                shop.shop_id.clone(),
                shop.subtotal.clone(),
                shop.total.clone(),
            )
        })
        .collect();
    assert_eq!(
        shops,
        [
            (mug.shop_id.clone(), money(2500, "USD"), money(2500, "USD")),
            (tea.shop_id.clone(), money(1000, "USD"), money(1000, "USD")),
        ]
    );
    assert_eq!(cart.totals.len(), 1);
    assert_eq!(cart.totals[0].subtotal, money(3500, "USD"));
    assert_eq!(cart.totals[0].discount, money(0, "USD"));
    assert_eq!(cart.totals[0].total, money(3500, "USD"));
    assert!(cart.checkout_ready);
    assert!(cart.voucher.is_none());
    assert!(cart.updated_at.is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_token_opens_nothing_and_no_token_is_refused() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &mug.id, 1).await.unwrap();

    let guessed = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let error = expect_error(app.get(&anonymous(), guessed).await, ErrorCode::NotFound);
    assert_eq!(error.message(), "cart not found");
    expect_error(
        app.set(&anonymous(), guessed, &mug.id, 1).await,
        ErrorCode::NotFound,
    );
    let other = app.new_guest_cart().await;
    assert!(
        app.get(&anonymous(), &other)
            .await
            .unwrap()
            .lines
            .is_empty()
    );

    let error = expect_error(app.get(&anonymous(), "").await, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&error), ["cart_token"]);
    assert!(error.message().contains("X-Cart-Token"), "{error}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_changed_removed_and_cleared() {
    let app = TestApp::spawn().await;
    let [mug, tea, jam] = [
        app.create_product(product("Mug")).await,
        app.create_product(product("Tea")).await,
        app.create_product(product("Jam")).await,
    ];
    let guest = anonymous();
    let token = app.new_guest_cart().await;
    for item in [&mug, &tea, &jam] {
        app.set(&guest, &token, &item.id, 1).await.unwrap();
    }
    let cart = app.set(&guest, &token, &mug.id, 4).await.unwrap();
    assert_eq!(
        lines(&cart),
        [
            line(&mug, 4, "ok"),
            line(&tea, 1, "ok"),
            line(&jam, 1, "ok")
        ],
        "a changed line keeps its place"
    );
    let cart = app.set(&guest, &token, &tea.id, 0).await.unwrap();
    assert_eq!(lines(&cart), [line(&mug, 4, "ok"), line(&jam, 1, "ok")]);
    let cart = app.remove(&guest, &token, &jam.id).await;
    assert_eq!(lines(&cart), [line(&mug, 4, "ok")]);
    let again = app.remove(&guest, &token, &jam.id).await;
    assert_eq!(
        lines(&again),
        [line(&mug, 4, "ok")],
        "removing twice is harmless"
    );

    let cleared = app.clear(&guest, &token).await;
    assert!(cleared.lines.is_empty());
    assert_eq!(cleared.currency, "", "an empty cart has no currency");
    assert!(cleared.totals.is_empty());
    assert!(
        !cleared.checkout_ready,
        "an empty cart cannot be checked out"
    );
    assert!(app.get(&guest, &token).await.unwrap().lines.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_has_one_cart_that_others_do_not_see() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let alice = shopper();
    let bob = shopper();
    let empty = app.get(&alice, "").await.unwrap();
    assert!(
        empty.lines.is_empty(),
        "a user without a cart sees an empty one"
    );
    assert_eq!(empty.user_id, user_id(&alice));

    app.set(&alice, "", &mug.id, 3).await.unwrap();
    assert_eq!(
        lines(&app.get(&alice, "").await.unwrap()),
        [line(&mug, 3, "ok")]
    );
    assert!(app.get(&bob, "").await.unwrap().lines.is_empty());
    app.stop().await;
}
