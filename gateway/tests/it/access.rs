//! Access rules are enforced before anything reaches NATS, and only the gateway says who the
//! caller is.

use futures::StreamExt as _;
use serde_json::json;

use crate::helpers::{
    ADMIN_ID, CUSTOMER_ID, TestApp, assert_nothing_arrives, expect_error, new_product, path_of,
    product_path, products_path,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_product_without_a_token_is_401_and_never_reaches_the_service() {
    let app = TestApp::spawn().await;
    let mut requests = app.watch(&api::product::methods::CREATE_PRODUCT).await;

    let response = app
        .post_json(&products_path(), &new_product("Sneaky", 100), None)
        .await;
    assert!(response.headers().contains_key("www-authenticate"));
    expect_error(response, 401, "unauthenticated").await;

    assert_nothing_arrives(&mut requests).await;
    assert!(app.list_products("").await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_cannot_create_or_update_products() {
    // Sellers manage their own shops' products, so these routes take any signed-in user and
    // the product service decides: a customer is no seller, and owns no product.
    let app = TestApp::spawn().await;
    let existing = app.create_product(&new_product("Kettle", 3000)).await;
    let id = existing["id"].as_str().unwrap();
    let customer = app.customer_token();

    let response = app
        .post_json(
            &products_path(),
            &new_product("Sneaky", 100),
            Some(&customer),
        )
        .await;
    expect_error(response, 403, "permission_denied").await;
    let update = path_of(&api::product::methods::UPDATE_PRODUCT, &[("id", id)]);
    let response = app
        .patch_json(&update, &json!({"name": "Hacked"}), Some(&customer))
        .await;
    expect_error(response, 404, "not_found").await;

    let products = app.list_products("").await;
    assert_eq!(products.len(), 1);
    assert_eq!(products[0]["name"], "Kettle");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_principal_headers_are_never_forwarded() {
    let app = TestApp::spawn().await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;

    // Anonymous, claiming to be an admin.
    let response = app
        .request(reqwest::Method::GET, &products_path())
        .header(rpc::headers::PRINCIPAL_ID, ADMIN_ID)
        .header(rpc::headers::PRINCIPAL_ROLES, "admin")
        .header(rpc::headers::TIMEOUT_MS, "999999")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = requests.next().await.unwrap();
    let headers = seen.headers.expect("headers on the NATS request");
    assert!(headers.get(rpc::headers::PRINCIPAL_ID).is_none());
    assert!(headers.get(rpc::headers::PRINCIPAL_ROLES).is_none());
    let timeout_ms: u64 = headers
        .get(rpc::headers::TIMEOUT_MS)
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    assert!(timeout_ms <= 10_000, "{timeout_ms}");

    // A customer, claiming to be the admin: the token decides.
    let response = app
        .request(reqwest::Method::GET, &products_path())
        .bearer_auth(app.customer_token())
        .header(rpc::headers::PRINCIPAL_ID, ADMIN_ID)
        .header(rpc::headers::PRINCIPAL_ROLES, "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = requests.next().await.unwrap();
    let headers = seen.headers.unwrap();
    assert_eq!(
        headers.get(rpc::headers::PRINCIPAL_ID).unwrap().as_str(),
        CUSTOMER_ID
    );
    assert_eq!(
        headers.get(rpc::headers::PRINCIPAL_ROLES).unwrap().as_str(),
        "customer"
    );

    // And the service agrees: inactive products are for admins only.
    let response = app
        .request(
            reqwest::Method::GET,
            &format!("{}?status=inactive", products_path()),
        )
        .header(rpc::headers::PRINCIPAL_ID, ADMIN_ID)
        .header(rpc::headers::PRINCIPAL_ROLES, "admin")
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "permission_denied").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_sends_request_id_trace_context_and_principal_to_the_service() {
    let app = TestApp::spawn().await;
    let mut requests = app.watch(&api::product::methods::GET_PRODUCT).await;
    let product = app.create_product(&new_product("Teapot", 1800)).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let response = app
        .request(
            reqwest::Method::GET,
            &product_path(product["id"].as_str().unwrap()),
        )
        .bearer_auth(app.admin_token())
        .header("x-request-id", "req-from-client-42")
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = requests.next().await.unwrap();
    let headers = seen.headers.unwrap();
    assert_eq!(
        headers.get(rpc::headers::REQUEST_ID).unwrap().as_str(),
        "req-from-client-42"
    );
    assert_eq!(
        headers.get(rpc::headers::PRINCIPAL_ID).unwrap().as_str(),
        ADMIN_ID
    );
    assert_eq!(
        headers.get(rpc::headers::CONTENT_TYPE).unwrap().as_str(),
        "application/json"
    );
    let forwarded = headers.get("traceparent").unwrap().as_str();
    assert!(
        forwarded.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{forwarded}"
    );
    let message: serde_json::Value = serde_json::from_slice(&seen.payload).unwrap();
    assert_eq!(message, json!({"id": product["id"]}));

    // Without a traceparent the gateway starts a trace.
    app.get(&product_path(product["id"].as_str().unwrap()))
        .await;
    let seen = requests.next().await.unwrap();
    let started = seen
        .headers
        .unwrap()
        .get("traceparent")
        .unwrap()
        .as_str()
        .to_owned();
    assert_eq!(
        started.split('-').nth(1).map(str::len),
        Some(32),
        "{started}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_is_refused_even_on_a_public_route() {
    let app = TestApp::spawn().await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    let stranger = tokens::SigningKey::generate("someone-elses-key").mint(
        "x",
        &["admin"],
        std::time::Duration::from_secs(60),
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    );
    let response = app.get_with_token(&products_path(), &stranger).await;
    expect_error(response, 401, "unauthenticated").await;
    let response = app.get_with_token(&products_path(), "not.a.token").await;
    expect_error(response, 401, "unauthenticated").await;
    assert_nothing_arrives(&mut requests).await;
    app.stop().await;
}
