//! The demo catalog.

use api::product::{ListCategoriesRequest, ListProductsRequest};
use product_service::seed::seed_demo_catalog;

use crate::helpers::{TestApp, anonymous, usd};

#[tokio::test]
async fn seeding_twice_gives_the_three_demo_products_once() {
    let app = TestApp::spawn_with(|config| config.seed_demo_catalog = true).await;

    // A second replica starting with the same flag against the same database.
    let second = app.start_replica().await;
    assert_eq!(
        seed_demo_catalog(app.db()).await.unwrap(),
        0,
        "a third run adds nothing"
    );

    let listed = app
        .client
        .list_products(&anonymous(), &ListProductsRequest::default())
        .await
        .unwrap()
        .products;
    let mut products: Vec<_> = listed
        .iter()
        .map(|p| (p.name.as_str(), p.price.clone(), p.shop_id.clone()))
        .collect();
    products.sort_by_key(|(name, _, _)| *name);
    let shop = vocab::demo::DEMO_SHOP_ID.to_string();
    assert_eq!(
        products,
        [
            ("Deluxe Gadget", usd(4999), shop.clone()),
            ("Elite Device", usd(9999), shop.clone()),
            ("Premium Widget", usd(2999), shop.clone()),
        ]
    );
    for product in &listed {
        assert!(!product.description.is_empty());
        let expected_stock = match product.name.as_str() {
            "Premium Widget" => 100,
            "Deluxe Gadget" => 50,
            _ => 25,
        };
        assert_eq!(app.availability(&product.id).await.stock, expected_stock);
    }

    let categories = app
        .client
        .list_categories(&anonymous(), &ListCategoriesRequest {})
        .await
        .unwrap()
        .categories;
    assert_eq!(categories.len(), 1);
    assert_eq!(
        (categories[0].name.as_str(), categories[0].slug.as_str()),
        ("Gadgets", "gadgets")
    );
    assert!(listed.iter().all(|p| p.category_id == categories[0].id));

    second.stop().await;
    app.stop().await;
}
