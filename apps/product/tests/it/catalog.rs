//! Creating, reading and updating products, and what callers may see.

use api::common::Money;
use api::product::{
    CreateProductRequest, GetProductRequest, ListProductsRequest, StringList, UpdateProductRequest,
};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{
    Seller, TestApp, admin, anonymous, bad_fields, customer, expect_error, product, usd,
};

fn get(id: &str) -> GetProductRequest {
    GetProductRequest { id: id.into() }
}

#[tokio::test]
async fn a_created_product_can_be_read_back() {
    let app = TestApp::spawn().await;
    // An admin may create products in any seller's shop.
    let shop_id = app.active_shop(&Seller::new(), "USD").await;
    let created = app
        .create_product(CreateProductRequest {
            shop_id: shop_id.clone(),
            name: "  Travel Mug ".into(),
            description: "Keeps coffee hot for hours.".into(),
            price: usd(1999),
            image_urls: vec!["https://cdn.example.com/mug.png".into()],
            initial_stock: 12,
            ..Default::default()
        })
        .await;

    let id = Uuid::parse_str(&created.id).expect("the id is a UUID");
    assert_eq!(id.get_version_num(), 7, "ids are UUID v7");
    assert_eq!(created.name, "Travel Mug", "the name is trimmed");
    assert_eq!(created.shop_id, shop_id);
    assert_eq!(created.status, "active");
    assert_eq!(created.price, usd(1999));
    assert_eq!(created.category_id, "");
    assert!(created.created_at.is_some() && created.created_at == created.updated_at);

    let fetched = app
        .client
        .get_product(&anonymous(), &get(&created.id))
        .await
        .unwrap();
    assert_eq!(fetched, created);

    let availability = app.availability(&created.id).await;
    assert_eq!(
        (
            availability.stock,
            availability.reserved,
            availability.available
        ),
        (12, 0, 12)
    );
    assert!(availability.in_stock);
    app.stop().await;
}

#[tokio::test]
async fn invalid_products_are_refused_naming_every_bad_field() {
    let app = TestApp::spawn().await;
    let error = app
        .client
        .create_product(
            &admin(),
            &CreateProductRequest {
                shop_id: "my-shop".into(),
                name: " ".into(),
                description: "d".repeat(5001),
                price: Some(Money {
                    minor_units: 1_000_000_000_001,
                    currency: "XYZ".into(),
                }),
                category_id: "gadgets".into(),
                image_urls: vec!["not a url".into()],
                status: "archived".into(),
                initial_stock: -1,
            },
        )
        .await
        .unwrap_err();
    // The contract's field rules come first and name every field that breaks one, each image
    // by its index; "XYZ" looks like a currency code, so it is the service's to refuse once
    // the request has the right shape.
    assert_eq!(
        bad_fields(&error),
        [
            "shop_id",
            "name",
            "description",
            "price.minor_units",
            "category_id",
            "image_urls[0]",
            "status",
            "initial_stock"
        ]
    );
    let error = app
        .client
        .create_product(
            &admin(),
            &CreateProductRequest {
                price: Some(Money {
                    minor_units: 100,
                    currency: "XYZ".into(),
                }),
                ..product("Mug")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["price.currency"]);

    let error = app
        .client
        .create_product(
            &admin(),
            &CreateProductRequest {
                price: None,
                ..product("Mug")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["price"]);

    let eleven_images = (0..11)
        .map(|i| format!("https://cdn.example.com/{i}.png"))
        .collect();
    let error = app
        .client
        .create_product(
            &admin(),
            &CreateProductRequest {
                image_urls: eleven_images,
                ..product("Mug")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["image_urls"]);

    // Nothing was written by any of them.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(count, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_category_is_an_invalid_category_id() {
    let app = TestApp::spawn().await;
    let error = app
        .client
        .create_product(
            &admin(),
            &CreateProductRequest {
                category_id: Uuid::now_v7().to_string(),
                ..product("Mug")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["category_id"]);
    app.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7().to_string();
    let error = expect_error(
        app.client.get_product(&anonymous(), &get(&id)).await,
        ErrorCode::NotFound,
    );
    assert_eq!(error.message(), format!("product {id} not found"));

    let error = app
        .client
        .get_product(&anonymous(), &get("42"))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["id"]);

    let update = UpdateProductRequest {
        id: id.clone(),
        name: Some("Renamed".into()),
        ..Default::default()
    };
    expect_error(
        app.client.update_product(&admin(), &update).await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test]
async fn customers_and_strangers_do_not_create_products() {
    let app = TestApp::spawn().await;
    expect_error(
        app.client
            .create_product(&customer(), &product("Mug"))
            .await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.client
            .create_product(&anonymous(), &product("Mug"))
            .await,
        ErrorCode::Unauthenticated,
    );
    app.stop().await;
}

#[tokio::test]
async fn an_update_changes_only_the_fields_present_and_reads_see_it_at_once() {
    let app = TestApp::spawn().await;
    let created = app.create_product(product("Desk Lamp")).await;

    // Read it first, so that it is in both cache tiers when the update happens.
    let cached = app
        .client
        .get_product(&customer(), &get(&created.id))
        .await
        .unwrap();
    assert_eq!(cached.name, "Desk Lamp");

    let updated = app
        .client
        .update_product(
            &admin(),
            &UpdateProductRequest {
                id: created.id.clone(),
                name: Some("Desk Lamp Pro".into()),
                price: usd(4500),
                image_urls: Some(StringList {
                    values: vec!["https://cdn.example.com/lamp.jpg".into()],
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Desk Lamp Pro");
    assert_eq!(
        updated.description, created.description,
        "absent fields are kept"
    );
    assert_eq!(updated.price, usd(4500));
    assert_eq!(updated.image_urls, ["https://cdn.example.com/lamp.jpg"]);
    assert_eq!(updated.created_at, created.created_at);
    let seconds_and_nanos = |t: &Option<api::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(seconds_and_nanos(&updated.updated_at) > seconds_and_nanos(&created.updated_at));

    let read = app
        .client
        .get_product(&customer(), &get(&created.id))
        .await
        .unwrap();
    assert_eq!(read, updated, "the cached copy was invalidated");

    let error = app
        .client
        .update_product(
            &admin(),
            &UpdateProductRequest {
                id: created.id.clone(),
                name: Some(String::new()),
                description: Some("x".repeat(5001)),
                price: Some(Money {
                    minor_units: -5,
                    currency: "USD".into(),
                }),
                category_id: Some("nope".into()),
                status: Some("gone".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&error),
        [
            "name",
            "description",
            "price.minor_units",
            "category_id",
            "status"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn inactive_products_are_visible_to_admins_only() {
    let app = TestApp::spawn().await;
    let hidden = app
        .create_product(CreateProductRequest {
            status: "inactive".into(),
            ..product("Prototype")
        })
        .await;
    let shown = app.create_product(product("Released")).await;

    for ctx in [anonymous(), customer()] {
        let error = expect_error(
            app.client.get_product(&ctx, &get(&hidden.id)).await,
            ErrorCode::NotFound,
        );
        assert_eq!(error.message(), format!("product {} not found", hidden.id));
    }
    assert_eq!(
        app.client
            .get_product(&admin(), &get(&hidden.id))
            .await
            .unwrap(),
        hidden
    );

    let public = app
        .client
        .list_products(&anonymous(), &ListProductsRequest::default())
        .await
        .unwrap();
    let names: Vec<_> = public.products.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Released"]);

    let inactive = ListProductsRequest {
        status: "inactive".into(),
        ..Default::default()
    };
    expect_error(
        app.client.list_products(&customer(), &inactive).await,
        ErrorCode::PermissionDenied,
    );
    let listed = app.client.list_products(&admin(), &inactive).await.unwrap();
    assert_eq!(listed.products, [hidden]);

    // Deactivating hides a product that was cached while active.
    assert!(
        app.client
            .get_product(&customer(), &get(&shown.id))
            .await
            .is_ok()
    );
    app.client
        .update_product(
            &admin(),
            &UpdateProductRequest {
                id: shown.id.clone(),
                status: Some("inactive".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    expect_error(
        app.client.get_product(&customer(), &get(&shown.id)).await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}
