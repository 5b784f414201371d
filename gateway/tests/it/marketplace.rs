//! The marketplace through the gateway, as its users go: a seller opens a shop that an admin
//! approves and stocks it; a guest fills a cart that merges into their account when they sign
//! in; a voucher discounts it; prices are the catalog's at every read. And the refusals: other
//! sellers, customers and guessed tokens reach nothing that is not theirs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Platform, PlatformOptions, bad_fields};

const PASSWORD: &str = "correct horse battery staple";

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

fn minor_units(money: &Value) -> i64 {
    match &money["minor_units"] {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_i64().unwrap(),
        Value::Null => 0,
        other => panic!("minor_units {other} in {money}"),
    }
}

async fn marketplace() -> Platform {
    Platform::spawn_with(PlatformOptions {
        marketplace: true,
        ..PlatformOptions::default()
    })
    .await
}

/// A registered account with the seller role, signed in again so its token carries it.
async fn seller(platform: &Platform, email: &str) -> (String, String) {
    let tokens = platform.register_and_login(email, PASSWORD).await;
    let user_id = text(&tokens, "user_id").to_owned();
    let (status, body) = platform
        .post(
            &format!("/api/v1/auth/accounts/{user_id}/roles"),
            json!({"role": "seller"}),
            Some(&platform.admin_token()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "granting the seller role: {body}");
    let (status, tokens) = platform
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(
        tokens["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("seller")),
        "{tokens}"
    );
    (user_id, text(&tokens, "access_token").to_owned())
}

/// An approved shop of the seller's.
async fn active_shop(platform: &Platform, token: &str, slug: &str) -> String {
    let (status, shop) = platform
        .post(
            "/api/v1/shops",
            json!({
                "name": format!("Shop {slug}"),
                "slug": slug,
                "contact_email": format!("{slug}@shops.example"),
                "currency": "USD",
            }),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "opening a shop: {shop}");
    assert_eq!(text(&shop, "status"), "pending");
    let id = text(&shop, "id").to_owned();
    let (status, approved) = platform
        .post(
            &format!("/api/v1/admin/shops/{id}/approve"),
            json!({}),
            Some(&platform.admin_token()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(text(&approved, "status"), "active");
    id
}

async fn product(
    platform: &Platform,
    token: &str,
    shop_id: &str,
    name: &str,
    price: i64,
) -> String {
    let (status, product) = platform
        .post(
            "/api/v1/products",
            json!({
                "shop_id": shop_id,
                "name": name,
                "price": {"minor_units": price, "currency": "USD"},
                "initial_stock": 10,
            }),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "creating {name}: {product}");
    text(&product, "id").to_owned()
}

async fn cart_call(
    platform: &Platform,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
    cart_token: Option<&str>,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = cart_token
        .map(|t| ("X-Cart-Token", t))
        .into_iter()
        .collect();
    platform
        .send_with(method, path, body, token, &headers)
        .await
}

fn line<'a>(cart: &'a Value, product_id: &str) -> &'a Value {
    cart["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("lines in {cart}"))
        .iter()
        .find(|line| line["product_id"] == product_id)
        .unwrap_or_else(|| panic!("{product_id} in {cart}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_opens_a_shop_and_a_guest_cart_merges_discounts_and_reprices() {
    let platform = marketplace().await;
    let (_seller_id, seller_token) = seller(&platform, "maker@shops.example").await;
    let shop_id = active_shop(&platform, &seller_token, "makers-corner").await;
    // Anyone sees an active shop, by id or slug.
    let (status, shop) = platform.get("/api/v1/shops/makers-corner", None).await;
    assert_eq!(status, StatusCode::OK, "{shop}");
    assert_eq!(text(&shop, "id"), shop_id);

    let lamp = product(&platform, &seller_token, &shop_id, "Desk lamp", 2_500).await;
    let chair = product(&platform, &seller_token, &shop_id, "Chair", 7_500).await;
    let (status, stock) = platform
        .send(
            Method::PUT,
            &format!("/api/v1/products/{chair}/stock"),
            Some(json!({"stock": 4})),
            Some(&seller_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stock}");

    // A guest fills a cart.
    let (status, created) = platform.post("/api/v1/carts", json!({}), None).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let guest = text(&created, "cart_token").to_owned();
    for (product_id, quantity) in [(&lamp, 2), (&chair, 1)] {
        let (status, cart) = cart_call(
            &platform,
            Method::PUT,
            &format!("/api/v1/cart/items/{product_id}"),
            Some(json!({"quantity": quantity})),
            None,
            Some(&guest),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{cart}");
    }
    let (status, cart) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        None,
        Some(&guest),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["lines"].as_array().unwrap().len(), 2, "{cart}");
    assert_eq!(
        minor_units(&cart["totals"][0]["subtotal"]),
        2 * 2_500 + 7_500,
        "{cart}"
    );

    // The guest signs up; the first cart request with both merges the guest cart, once.
    let customer = platform
        .register_and_login("guest@buyers.example", PASSWORD)
        .await;
    let customer_token = text(&customer, "access_token").to_owned();
    let (status, cart) = cart_call(
        &platform,
        Method::PUT,
        &format!("/api/v1/cart/items/{lamp}"),
        Some(json!({"quantity": 1})),
        Some(&customer_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    let (status, merged) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        Some(&customer_token),
        Some(&guest),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(
        line(&merged, &lamp)["quantity"],
        3,
        "quantities add: {merged}"
    );
    assert_eq!(line(&merged, &chair)["quantity"], 1, "{merged}");
    let (status, again) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        Some(&customer_token),
        Some(&guest),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(line(&again, &lamp)["quantity"], 3, "merged once: {again}");
    let (status, gone) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        None,
        Some(&guest),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the guest cart ended: {gone}"
    );

    // The seller's voucher applies, and the cart shows the discount.
    let (status, voucher) = platform
        .post(
            "/api/v1/vouchers",
            json!({
                "code": "MAKERS10",
                "shop_id": shop_id,
                "kind": "percent",
                "percent_off": 10,
                "currency": "USD",
            }),
            Some(&seller_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{voucher}");
    let (status, check) = platform
        .get("/api/v1/vouchers/makers10/check", Some(&customer_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["applies"], true, "{check}");
    let subtotal = 3 * 2_500 + 7_500;
    assert_eq!(minor_units(&check["discount"]), subtotal / 10, "{check}");
    let (status, discounted) = cart_call(
        &platform,
        Method::POST,
        "/api/v1/cart/voucher",
        Some(json!({"code": "makers10"})),
        Some(&customer_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{discounted}");
    assert_eq!(discounted["voucher"]["applies"], true, "{discounted}");
    assert_eq!(
        minor_units(&discounted["voucher"]["discount"]),
        subtotal / 10
    );
    assert_eq!(
        minor_units(&discounted["totals"][0]["discount"]),
        subtotal / 10
    );
    assert_eq!(
        minor_units(&discounted["totals"][0]["total"]),
        subtotal - subtotal / 10,
        "{discounted}"
    );

    // The seller changes a price; the next read of the cart has it.
    let (status, repriced) = platform
        .send(
            Method::PATCH,
            &format!("/api/v1/products/{lamp}"),
            Some(json!({"price": {"minor_units": 2_000, "currency": "USD"}})),
            Some(&seller_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{repriced}");
    let (status, cart) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        Some(&customer_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(
        minor_units(&line(&cart, &lamp)["unit_price"]),
        2_000,
        "{cart}"
    );
    let subtotal = 3 * 2_000 + 7_500;
    assert_eq!(
        minor_units(&cart["totals"][0]["subtotal"]),
        subtotal,
        "{cart}"
    );
    assert_eq!(
        minor_units(&cart["totals"][0]["discount"]),
        subtotal / 10,
        "{cart}"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reaches_another_sellers_shop_products_vouchers_or_cart() {
    let platform = marketplace().await;
    let (_, owner) = seller(&platform, "owner@shops.example").await;
    let (_, rival) = seller(&platform, "rival@shops.example").await;
    let shop_id = active_shop(&platform, &owner, "owners-shop").await;
    let lamp = product(&platform, &owner, &shop_id, "Lamp", 1_000).await;
    let (status, voucher) = platform
        .post(
            "/api/v1/vouchers",
            json!({"code": "OWN5", "shop_id": shop_id, "kind": "fixed",
                   "amount_off_minor_units": 500, "currency": "USD"}),
            Some(&owner),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{voucher}");

    // Another seller: exactly as if none of it existed.
    let missing_shop = uuid::Uuid::now_v7();
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/shops/{shop_id}"),
            json!({"name": "Mine now"}),
        ),
        (
            Method::POST,
            format!("/api/v1/shops/{shop_id}/close"),
            json!({}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/products/{lamp}"),
            json!({"name": "Mine now"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/products/{lamp}/stock"),
            json!({"stock": 0}),
        ),
        (
            Method::PATCH,
            "/api/v1/vouchers/OWN5".to_owned(),
            json!({"status": "disabled"}),
        ),
    ] {
        let (status, body) = platform
            .send(method.clone(), &path, Some(body), Some(&rival))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (status, body) = platform.get("/api/v1/vouchers/OWN5", Some(&rival)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = platform
        .send(
            Method::PATCH,
            &format!("/api/v1/shops/{missing_shop}"),
            Some(json!({"name": "Mine now"})),
            Some(&rival),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a missing shop answers the same: {body}"
    );
    let (status, body) = platform
        .post(
            "/api/v1/products",
            json!({"shop_id": shop_id, "name": "Intruder",
                   "price": {"minor_units": 100, "currency": "USD"}}),
            Some(&rival),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Nothing changed.
    let (_, shop) = platform
        .get(&format!("/api/v1/shops/{shop_id}"), None)
        .await;
    assert_eq!(text(&shop, "name"), "Shop owners-shop");
    let (_, lamp_now) = platform
        .get(&format!("/api/v1/products/{lamp}"), None)
        .await;
    assert_eq!(text(&lamp_now, "name"), "Lamp");
    let (_, voucher_now) = platform.get("/api/v1/vouchers/OWN5", Some(&owner)).await;
    assert_eq!(text(&voucher_now, "status"), "active", "{voucher_now}");

    // A customer opens no shop and creates no voucher.
    let customer = platform.token(&[rpc::roles::CUSTOMER]);
    let (status, body) = platform
        .post(
            "/api/v1/shops",
            json!({"name": "Nope", "slug": "nope-shop", "contact_email": "a@b.example", "currency": "USD"}),
            Some(&customer),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = platform
        .post(
            "/api/v1/vouchers",
            json!({"code": "FREE", "kind": "fixed", "amount_off_minor_units": 100, "currency": "USD"}),
            Some(&customer),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A guessed cart token reads nothing.
    let (_, created) = platform.post("/api/v1/carts", json!({}), None).await;
    let token = text(&created, "cart_token").to_owned();
    let (status, _) = cart_call(
        &platform,
        Method::PUT,
        &format!("/api/v1/cart/items/{lamp}"),
        Some(json!({"quantity": 1})),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut guessed = token.clone();
    let last = guessed.pop().unwrap();
    guessed.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        None,
        Some(&guessed),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The token travels in the header only: a query or body value is not a cart token.
    let (status, body) = platform
        .get(&format!("/api/v1/cart?cart_token={token}"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_changes_nothing() {
    let platform = marketplace().await;
    let (_, owner) = seller(&platform, "careful@shops.example").await;
    let shop_id = active_shop(&platform, &owner, "careful-shop").await;
    let lamp = product(&platform, &owner, &shop_id, "Lamp", 1_000).await;

    let (status, body) = platform
        .post(
            "/api/v1/shops",
            json!({"name": "Bad", "slug": "Not A Slug", "contact_email": "no-at-sign", "currency": "usd"}),
            Some(&owner),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = bad_fields(&body);
    for field in ["slug", "contact_email", "currency"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {body}");
    }
    let (_, mine) = platform.get("/api/v1/me/shops", Some(&owner)).await;
    assert_eq!(mine["shops"].as_array().unwrap().len(), 1, "{mine}");

    let (_, created) = platform.post("/api/v1/carts", json!({}), None).await;
    let token = text(&created, "cart_token").to_owned();
    for (quantity, field) in [(100, "quantity"), (-1, "quantity")] {
        let (status, body) = cart_call(
            &platform,
            Method::PUT,
            &format!("/api/v1/cart/items/{lamp}"),
            Some(json!({"quantity": quantity})),
            None,
            Some(&token),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["details"][0]["field"], field, "{body}");
    }
    let missing = uuid::Uuid::now_v7();
    let (status, body) = cart_call(
        &platform,
        Method::PUT,
        &format!("/api/v1/cart/items/{missing}"),
        Some(json!({"quantity": 1})),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, cart) = cart_call(
        &platform,
        Method::GET,
        "/api/v1/cart",
        None,
        None,
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["lines"].as_array().map_or(0, Vec::len), 0, "{cart}");

    let (status, body) = platform
        .post(
            "/api/v1/vouchers",
            json!({"code": "x", "shop_id": shop_id, "kind": "percent", "percent_off": 101, "currency": "USD"}),
            Some(&owner),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = bad_fields(&body);
    assert!(
        fields.iter().any(|f| f == "code") && fields.iter().any(|f| f == "percent_off"),
        "{body}"
    );
    let (status, _) = platform.get("/api/v1/vouchers/x", Some(&owner)).await;
    assert_ne!(status, StatusCode::OK);
    platform.stop().await;
}
