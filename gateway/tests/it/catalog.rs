//! Shoppers browse and search; admins create and change products.

use serde_json::{Value, json};

use crate::helpers::{TestApp, new_product, path_of, product_path, products_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_list_search_and_get_products_without_a_token() {
    let app = TestApp::spawn().await;
    let lamp = app
        .create_product(&new_product("Brass desk lamp", 4500))
        .await;
    app.create_product(&new_product("Oak bookshelf", 12000))
        .await;

    let listed = app.list_products("").await;
    assert_eq!(listed.len(), 2);
    let names: Vec<&str> = listed.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"Brass desk lamp") && names.contains(&"Oak bookshelf"));

    let found = app.list_products("?q=lamp").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], lamp["id"]);

    // Query values are converted to the message's types (page_size is an int32).
    let first_page = app.list_products("?page_size=1").await;
    assert_eq!(first_page.len(), 1);

    let response = app.get(&product_path(lamp["id"].as_str().unwrap())).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let product: Value = response.json().await.unwrap();
    assert_eq!(product["name"], "Brass desk lamp");
    assert_eq!(product["price"]["currency"], "USD");
    // Canonical proto3 JSON from the service, untouched: 64-bit integers are strings.
    assert_eq!(product["price"]["minor_units"], "4500");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_and_updates_a_product() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let response = app
        .post_json(
            &products_path(),
            &new_product("Wool scarf", 2500),
            Some(&admin),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "active");

    let update = path_of(&api::product::methods::UPDATE_PRODUCT, &[("id", &id)]);
    let response = app
        .patch_json(
            &update,
            &json!({"name": "Merino wool scarf", "price": {"minor_units": "2700", "currency": "USD"}}),
            Some(&admin),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["name"], "Merino wool scarf");
    assert_eq!(updated["description"], created["description"]);

    let fetched: Value = app.get(&product_path(&id)).await.json().await.unwrap();
    assert_eq!(fetched["name"], "Merino wool scarf");
    assert_eq!(fetched["price"]["minor_units"], "2700");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_id_wins_over_an_id_in_the_body() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let first = app.create_product(&new_product("First", 100)).await;
    let second = app.create_product(&new_product("Second", 200)).await;
    let first_id = first["id"].as_str().unwrap();

    let update = path_of(&api::product::methods::UPDATE_PRODUCT, &[("id", first_id)]);
    let response = app
        .patch_json(
            &update,
            &json!({"id": second["id"], "name": "Renamed"}),
            Some(&admin),
        )
        .await;
    assert_eq!(response.status(), 200);
    let second_now: Value = app
        .get(&product_path(second["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second_now["name"], "Second");
    let first_now: Value = app.get(&product_path(first_id)).await.json().await.unwrap();
    assert_eq!(first_now["name"], "Renamed");
    app.stop().await;
}
