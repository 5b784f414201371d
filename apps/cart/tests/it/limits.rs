//! What a cart refuses: quantities beyond 99, a 101st product, products that cannot be
//! bought, and a second currency.

use api::product::CreateProductRequest;
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_beyond_99_or_below_0_are_refused_naming_quantity() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    for quantity in [100, -1] {
        let error = expect_error(
            app.set(&user, "", &mug.id, quantity).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), ["quantity"]);
    }
    let error = expect_error(
        app.set(&user, "", "not-a-uuid", 1).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["product_id"]);
    app.set(&user, "", &mug.id, 99).await.unwrap();
    assert!(app.get(&user, "").await.unwrap().lines[0].quantity == 99);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_product_is_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let user = shopper();
    let shop_id = app.new_shop("USD").await;
    let mut products = Vec::new();
    for index in 0..101 {
        products.push(
            app.create_product(CreateProductRequest {
                shop_id: shop_id.clone(),
                ..product(&format!("Thing {index}"))
            })
            .await,
        );
    }
    for item in &products[..100] {
        app.set(&user, "", &item.id, 1).await.unwrap();
    }
    let before = app.get(&user, "").await.unwrap();
    assert_eq!(before.lines.len(), 100);

    let error = expect_error(
        app.set(&user, "", &products[100].id, 1).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(named_fields(&error), ["product_id"]);
    assert!(
        error.message().contains("100 different products"),
        "{error}"
    );
    let after = app.get(&user, "").await.unwrap();
    assert_eq!(after.lines, before.lines, "nothing changed");
    // A product already in the cart still changes.
    let changed = app.set(&user, "", &products[0].id, 2).await.unwrap();
    assert_eq!(changed.lines[0].quantity, 2);
    assert_eq!(changed.totals[0].subtotal, money(101 * 1000, "USD"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_inactive_products_are_refused_naming_product_id() {
    let app = TestApp::spawn().await;
    let retired = app
        .create_product(CreateProductRequest {
            status: "inactive".into(),
            ..product("Retired")
        })
        .await;
    let user = shopper();
    let error = expect_error(
        app.set(&user, "", &Uuid::now_v7().to_string(), 1).await,
        ErrorCode::NotFound,
    );
    assert_eq!(named_fields(&error), ["product_id"]);
    let error = expect_error(
        app.set(&user, "", &retired.id, 1).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(named_fields(&error), ["product_id"]);
    assert!(error.message().contains("Retired"), "{error}");
    assert!(app.get(&user, "").await.unwrap().lines.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_in_another_currency_is_refused_with_both_currencies_named() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let croissant = app
        .create_product(CreateProductRequest {
            price: money(250, "EUR"),
            ..product("Croissant")
        })
        .await;
    let user = shopper();
    app.set(&user, "", &mug.id, 1).await.unwrap();
    let error = expect_error(
        app.set(&user, "", &croissant.id, 1).await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(named_fields(&error), ["product_id"]);
    let message = error.message();
    assert!(
        message.contains("this cart is in USD") && message.contains("Croissant is priced in EUR"),
        "{message}"
    );
    // Once the cart is empty it takes the other currency.
    app.clear(&user, "").await;
    let cart = app.set(&user, "", &croissant.id, 1).await.unwrap();
    assert_eq!(cart.currency, "EUR");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_additions_never_pass_100_products() {
    let app = TestApp::spawn().await;
    let user = shopper();
    let shop_id = app.new_shop("USD").await;
    let mut products = Vec::new();
    for index in 0..102 {
        products.push(
            app.create_product(CreateProductRequest {
                shop_id: shop_id.clone(),
                ..product(&format!("Thing {index}"))
            })
            .await,
        );
    }
    for item in &products[..98] {
        app.set(&user, "", &item.id, 1).await.unwrap();
    }
    let additions = products[98..]
        .iter()
        .map(|item| app.set(&user, "", &item.id, 1));
    let answers = futures::future::join_all(additions).await;
    let added = answers.iter().filter(|answer| answer.is_ok()).count();
    for refused in answers.into_iter().filter_map(Result::err) {
        assert_eq!(refused.code(), ErrorCode::FailedPrecondition, "{refused}");
    }
    assert_eq!(added, 2, "two of the four fit");
    assert_eq!(app.get(&user, "").await.unwrap().lines.len(), 100);
    app.stop().await;
}
