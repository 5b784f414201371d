//! Listing, full-text search, filters and cursor pagination.

use std::collections::HashSet;

use api::common::Money;
use api::product::{
    CreateCategoryRequest, CreateProductRequest, ListProductsRequest, ListProductsResponse, Product,
};

use crate::helpers::{Seller, TestApp, admin, anonymous, bad_fields, product, usd};

/// Walks every page of `request` and returns the products in order.
async fn walk(app: &TestApp, request: ListProductsRequest) -> (Vec<Product>, usize) {
    let mut products = Vec::new();
    let mut pages = 0;
    let mut cursor = request.cursor.clone();
    loop {
        let page: ListProductsResponse = app
            .client
            .list_products(
                &anonymous(),
                &ListProductsRequest {
                    cursor: cursor.clone(),
                    ..request.clone()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.products.len() <= request.page_size as usize);
        products.extend(page.products);
        if page.next_cursor.is_empty() {
            return (products, pages);
        }
        cursor = page.next_cursor;
        assert!(pages < 100, "pagination does not end");
    }
}

fn ids(products: &[Product]) -> Vec<&str> {
    products.iter().map(|p| p.id.as_str()).collect()
}

#[tokio::test]
async fn pages_cover_every_product_exactly_once_newest_first() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(app.create_product(product(&format!("Widget {i:02}"))).await);
    }

    let first = app
        .client
        .list_products(
            &anonymous(),
            &ListProductsRequest {
                page_size: 7,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.products.len(), 7);
    assert!(!first.next_cursor.is_empty());

    // A product added while someone is paging neither shifts nor repeats later pages.
    app.create_product(product("Latecomer")).await;

    let mut seen = first.products.clone();
    let (rest, _) = walk(
        &app,
        ListProductsRequest {
            page_size: 7,
            cursor: first.next_cursor.clone(),
            ..Default::default()
        },
    )
    .await;
    seen.extend(rest);

    let newest_first: Vec<&str> = created.iter().rev().map(|p| p.id.as_str()).collect();
    assert_eq!(ids(&seen), newest_first, "every product once, newest first");

    let (all, pages) = walk(
        &app,
        ListProductsRequest {
            page_size: 13,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 26);
    assert_eq!(pages, 2);
    assert_eq!(all[0].name, "Latecomer");

    let default_page = app
        .client
        .list_products(&anonymous(), &ListProductsRequest::default())
        .await
        .unwrap();
    assert_eq!(
        default_page.products.len(),
        20,
        "the default page size is 20"
    );
    app.stop().await;
}

#[tokio::test]
async fn search_ranks_name_matches_first_and_understands_web_syntax() {
    let app = TestApp::spawn().await;
    let shoes = app
        .create_product(CreateProductRequest {
            description: "Lightweight trainers for long runs on the road.".into(),
            ..product("Running Shoes")
        })
        .await;
    let jacket = app
        .create_product(CreateProductRequest {
            description: "A waterproof jacket that packs small; wear it over running shoes.".into(),
            ..product("Rain Jacket")
        })
        .await;
    app.create_product(CreateProductRequest {
        description: "Twenty metres of kink-free hose.".into(),
        ..product("Garden Hose")
    })
    .await;

    let search = |q: &str| ListProductsRequest {
        q: q.into(),
        page_size: 10,
        ..Default::default()
    };
    let (found, _) = walk(&app, search("running shoes")).await;
    assert_eq!(ids(&found), [shoes.id.as_str(), jacket.id.as_str()]);

    let (found, _) = walk(&app, search("shoes -jacket")).await;
    assert_eq!(ids(&found), [shoes.id.as_str()]);

    let (found, _) = walk(&app, search("\"kink-free hose\"")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "Garden Hose");

    let (found, _) = walk(&app, search("submarine")).await;
    assert!(found.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn search_results_page_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let mut lamps = HashSet::new();
    for i in 0..17 {
        // Some products match in the name, some only in the description, many tie in rank.
        let request = if i % 3 == 0 {
            CreateProductRequest {
                description: "A reading lamp with a warm light.".into(),
                ..product(&format!("Fixture {i}"))
            }
        } else {
            product(&format!("Lamp {i}"))
        };
        lamps.insert(app.create_product(request).await.id);
    }
    app.create_product(product("Armchair")).await;

    let (found, pages) = walk(
        &app,
        ListProductsRequest {
            q: "lamp".into(),
            page_size: 4,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(pages, 5);
    let found_ids: HashSet<String> = found.iter().map(|p| p.id.clone()).collect();
    assert_eq!(found.len(), found_ids.len(), "no product is repeated");
    assert_eq!(found_ids, lamps, "none is missing");
    // Name matches (weight A) come before description-only matches (weight B).
    let first_fixture = found
        .iter()
        .position(|p| p.name.starts_with("Fixture"))
        .unwrap();
    assert!(
        found[first_fixture..]
            .iter()
            .all(|p| p.name.starts_with("Fixture"))
    );
    app.stop().await;
}

#[tokio::test]
async fn filters_narrow_the_listing() {
    let app = TestApp::spawn().await;
    let category = |name: &str, parent_id: &str| CreateCategoryRequest {
        name: name.into(),
        parent_id: parent_id.into(),
        description: String::new(),
    };
    let electronics = app
        .client
        .create_category(&admin(), &category("Electronics", ""))
        .await
        .unwrap();
    let phones = app
        .client
        .create_category(&admin(), &category("Phones", &electronics.id))
        .await
        .unwrap();
    let clothing = app
        .client
        .create_category(&admin(), &category("Clothing", ""))
        .await
        .unwrap();

    let shop = app.active_shop(&Seller::new(), "USD").await;
    let in_category = |name: &str, category_id: &str, price: i64| CreateProductRequest {
        category_id: category_id.into(),
        price: usd(price),
        ..product(name)
    };
    let radio = app
        .create_product(in_category("Radio", &electronics.id, 3000))
        .await;
    let phone = app
        .create_product(CreateProductRequest {
            shop_id: shop.clone(),
            ..in_category("Phone", &phones.id, 50000)
        })
        .await;
    let scarf = app
        .create_product(CreateProductRequest {
            shop_id: shop.clone(),
            ..in_category("Scarf", &clothing.id, 2500)
        })
        .await;
    let euro_scarf = app
        .create_product(CreateProductRequest {
            shop_id: app.active_shop(&Seller::new(), "EUR").await,
            price: Some(Money {
                minor_units: 2500,
                currency: "EUR".into(),
            }),
            ..in_category("Euro Scarf", &clothing.id, 0)
        })
        .await;

    let list = |request: ListProductsRequest| {
        let app = &app;
        async move {
            let (products, _) = walk(
                app,
                ListProductsRequest {
                    page_size: 10,
                    ..request
                },
            )
            .await;
            let mut names: Vec<String> = products.into_iter().map(|p| p.name).collect();
            names.sort();
            names
        }
    };

    assert_eq!(
        list(ListProductsRequest {
            category_id: electronics.id.clone(),
            ..Default::default()
        })
        .await,
        [phone.name.as_str(), radio.name.as_str()],
        "a category includes its descendants"
    );
    assert_eq!(
        list(ListProductsRequest {
            category_id: phones.id.clone(),
            ..Default::default()
        })
        .await,
        [phone.name.as_str()]
    );
    assert_eq!(
        list(ListProductsRequest {
            min_price_minor_units: Some(2500),
            max_price_minor_units: Some(3000),
            currency: "USD".into(),
            ..Default::default()
        })
        .await,
        [radio.name.as_str(), scarf.name.as_str()]
    );
    assert_eq!(
        list(ListProductsRequest {
            currency: "EUR".into(),
            ..Default::default()
        })
        .await,
        [euro_scarf.name.as_str()]
    );
    assert_eq!(
        list(ListProductsRequest {
            shop_id: shop.clone(),
            ..Default::default()
        })
        .await,
        [phone.name.as_str(), scarf.name.as_str()]
    );
    assert_eq!(
        list(ListProductsRequest {
            q: "scarf".into(),
            category_id: clothing.id.clone(),
            max_price_minor_units: Some(2500),
            currency: "USD".into(),
            ..Default::default()
        })
        .await,
        [scarf.name.as_str()]
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_listing_requests_name_their_fields() {
    let app = TestApp::spawn().await;
    let bad = |request: ListProductsRequest| {
        let app = &app;
        async move {
            app.client
                .list_products(&anonymous(), &request)
                .await
                .unwrap_err()
        }
    };
    let error = bad(ListProductsRequest {
        cursor: "definitely-not-a-cursor".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(bad_fields(&error), ["cursor"]);

    let error = bad(ListProductsRequest {
        page_size: 101,
        currency: "XYZ".into(),
        min_price_minor_units: Some(-1),
        shop_id: "shop".into(),
        ..Default::default()
    })
    .await;
    // The field rules name what is malformed or out of bounds; an unknown currency that looks
    // like a code is the service's to refuse once the request has the right shape.
    assert_eq!(
        bad_fields(&error),
        ["shop_id", "min_price_minor_units", "page_size"]
    );
    let error = bad(ListProductsRequest {
        currency: "XYZ".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(bad_fields(&error), ["currency"]);
    app.stop().await;
}
