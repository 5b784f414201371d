//! Sellers manage their own shops' catalogs: product asks the real shop service (started
//! beside it) who owns a shop and whether it trades, on every seller write.

use api::common::Money;
use api::product::{
    CreateProductRequest, GetProductRequest, Product, SetStockRequest, UpdateProductRequest,
};
use rpc::{Context, ErrorCode, roles};
use uuid::Uuid;

use crate::helpers::{Seller, TestApp, admin, bad_fields, customer, expect_error, product, usd};

fn in_shop(shop_id: &str, name: &str) -> CreateProductRequest {
    CreateProductRequest {
        shop_id: shop_id.into(),
        ..product(name)
    }
}

fn rename(id: &str, name: &str) -> UpdateProductRequest {
    UpdateProductRequest {
        id: id.into(),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn stock(id: &str, stock: i64) -> SetStockRequest {
    SetStockRequest {
        id: id.into(),
        stock,
    }
}

impl TestApp {
    /// The product as stored now, whoever may see it.
    async fn stored(&self, id: &str) -> Product {
        self.client
            .get_product(&admin(), &GetProductRequest { id: id.into() })
            .await
            .expect("reading the product")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_manages_the_catalog_of_their_own_active_shop() {
    let app = TestApp::spawn().await;
    let seller = Seller::new();
    let shop_id = app.active_shop(&seller, "USD").await;

    let created = app
        .client
        .create_product(&seller.ctx(), &in_shop(&shop_id, "Hand Plane"))
        .await
        .expect("a seller creating a product in their shop");
    assert_eq!(created.shop_id, shop_id);

    let updated = app
        .client
        .update_product(
            &seller.ctx(),
            &UpdateProductRequest {
                price: usd(2500),
                ..rename(&created.id, "Block Plane")
            },
        )
        .await
        .expect("a seller updating their product");
    assert_eq!(
        (updated.name.as_str(), updated.price.clone()),
        ("Block Plane", usd(2500))
    );

    let availability = app
        .client
        .set_stock(&seller.ctx(), &stock(&created.id, 42))
        .await
        .expect("a seller setting their stock");
    assert_eq!(availability.stock, 42);
    assert_eq!(app.stored_stock(&created.id).await, (42, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_or_suspended_shop_cannot_change_its_catalog() {
    let app = TestApp::spawn().await;
    let seller = Seller::new();
    let pending = app.pending_shop(&seller, "USD").await;
    let error = expect_error(
        app.client
            .create_product(&seller.ctx(), &in_shop(&pending, "Too Early"))
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert!(error.message().contains("pending"), "{error}");

    let shop_id = app.active_shop(&seller, "USD").await;
    let created = app
        .client
        .create_product(&seller.ctx(), &in_shop(&shop_id, "Chisel"))
        .await
        .unwrap();
    app.suspend_shop(&shop_id).await;
    expect_error(
        app.client
            .update_product(&seller.ctx(), &rename(&created.id, "Gouge"))
            .await,
        ErrorCode::FailedPrecondition,
    );
    expect_error(
        app.client
            .set_stock(&seller.ctx(), &stock(&created.id, 99))
            .await,
        ErrorCode::FailedPrecondition,
    );
    expect_error(
        app.client
            .create_product(&seller.ctx(), &in_shop(&shop_id, "Mallet"))
            .await,
        ErrorCode::FailedPrecondition,
    );
    assert_eq!(app.stored(&created.id).await.name, "Chisel");
    assert_eq!(app.stored_stock(&created.id).await, (10, 0));

    // Admins are not held to the shop's status.
    let renamed = app
        .client
        .update_product(&admin(), &rename(&created.id, "Gouge"))
        .await
        .expect("an admin updating a suspended shop's product");
    assert_eq!(renamed.name, "Gouge");
    app.client
        .set_stock(&admin(), &stock(&created.id, 3))
        .await
        .expect("an admin setting a suspended shop's stock");
    app.client
        .create_product(&admin(), &in_shop(&pending, "House Special"))
        .await
        .expect("an admin creating a product in a pending shop");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sellers_product_answers_like_a_missing_one_and_stays_unchanged() {
    let app = TestApp::spawn().await;
    let (owner, other) = (Seller::new(), Seller::new());
    let shop_id = app.active_shop(&owner, "USD").await;
    let created = app
        .client
        .create_product(&owner.ctx(), &in_shop(&shop_id, "Saw"))
        .await
        .unwrap();
    app.active_shop(&other, "USD").await;

    let missing = Uuid::now_v7().to_string();
    let missing_error = expect_error(
        app.client
            .update_product(&other.ctx(), &rename(&missing, "Mine Now"))
            .await,
        ErrorCode::NotFound,
    );
    let same_shape = |error: rpc::Error, id: &str| {
        assert_eq!(error.code(), ErrorCode::NotFound);
        assert_eq!(
            error.message(),
            missing_error.message().replace(&missing, id)
        );
        assert_eq!(error.details(), missing_error.details());
    };
    same_shape(
        app.client
            .update_product(&other.ctx(), &rename(&created.id, "Mine Now"))
            .await
            .unwrap_err(),
        &created.id,
    );
    same_shape(
        app.client
            .set_stock(&other.ctx(), &stock(&created.id, 0))
            .await
            .unwrap_err(),
        &created.id,
    );

    // Creating in their shop looks exactly like creating in a shop that does not exist.
    let no_shop = expect_error(
        app.client
            .create_product(&other.ctx(), &in_shop(&missing, "Nowhere"))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(bad_fields_of(&no_shop), ["shop_id"]);
    let not_theirs = expect_error(
        app.client
            .create_product(&other.ctx(), &in_shop(&shop_id, "Sneaky"))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        not_theirs.message(),
        no_shop.message().replace(&missing, &shop_id)
    );
    assert_eq!(not_theirs.details(), no_shop.details());

    assert_eq!(app.stored(&created.id).await, created);
    assert_eq!(app.stored_stock(&created.id).await, (10, 0));
    app.stop().await;
}

fn bad_fields_of(error: &rpc::Error) -> Vec<&str> {
    error.details().iter().map(|d| d.field.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_need_the_seller_role() {
    let app = TestApp::spawn().await;
    let seller = Seller::new();
    let shop_id = app.active_shop(&seller, "USD").await;
    let created = app
        .client
        .create_product(&seller.ctx(), &in_shop(&shop_id, "Rasp"))
        .await
        .unwrap();

    let error = expect_error(
        app.client
            .create_product(&customer(), &in_shop(&shop_id, "Wish"))
            .await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(error.message(), "this needs the seller role");
    expect_error(
        app.client
            .update_product(&customer(), &rename(&created.id, "Mine"))
            .await,
        ErrorCode::NotFound,
    );

    // The shop's owner without the seller role any more is told why.
    let former_seller = testkit::callers::signed_in(&seller.id.to_string(), &[roles::CUSTOMER]);
    let error = expect_error(
        app.client
            .update_product(&former_seller, &rename(&created.id, "Old Rasp"))
            .await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(error.message(), "this needs the seller role");
    assert_eq!(app.stored(&created.id).await.name, "Rasp");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_in_the_currency_of_the_shop() {
    let app = TestApp::spawn().await;
    let seller = Seller::new();
    let shop_id = app.active_shop(&seller, "EUR").await;
    let euros = |minor_units| {
        Some(Money {
            minor_units,
            currency: "EUR".into(),
        })
    };
    for ctx in [seller.ctx(), admin()] {
        let error = app
            .client
            .create_product(&ctx, &in_shop(&shop_id, "Dollar Priced"))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&error), ["price.currency"]);
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(rows, 0, "a refused product is not stored");

    let created = app
        .client
        .create_product(
            &seller.ctx(),
            &CreateProductRequest {
                price: euros(1500),
                ..in_shop(&shop_id, "Euro Priced")
            },
        )
        .await
        .expect("a product in the shop's currency");
    for ctx in [seller.ctx(), admin()] {
        let error = app
            .client
            .update_product(
                &ctx,
                &UpdateProductRequest {
                    id: created.id.clone(),
                    price: usd(1500),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&error), ["price.currency"]);
    }
    assert_eq!(app.stored(&created.id).await.price, euros(1500));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_shop_service_sellers_wait_and_admins_still_keep_stock() {
    let mut app = TestApp::spawn().await;
    let seller = Seller::new();
    let shop_id = app.active_shop(&seller, "USD").await;
    let created = app
        .client
        .create_product(&seller.ctx(), &in_shop(&shop_id, "File"))
        .await
        .unwrap();
    app.stop_shop_service().await;

    let quick = |ctx: Context| ctx.with_timeout(std::time::Duration::from_secs(2));
    let error = app
        .client
        .set_stock(&quick(seller.ctx()), &stock(&created.id, 5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.code(),
            ErrorCode::Unavailable | ErrorCode::DeadlineExceeded
        ),
        "{error}"
    );
    assert_eq!(app.stored_stock(&created.id).await, (10, 0));
    app.client
        .set_stock(&admin(), &stock(&created.id, 5))
        .await
        .expect("an admin setting stock without the shop service");
    app.stop().await;
}
