//! Checkout through the gateway, as a customer and a seller go: a card becomes a payment
//! method, the cart becomes an order with an Idempotency-Key, the seller ships, the customer
//! follows it; and who may not see what.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Platform, PlatformOptions};

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

async fn platform(options: PlatformOptions) -> Platform {
    Platform::spawn_with(PlatformOptions {
        checkout: true,
        ..options
    })
    .await
}

/// A seller's approved shop with one product of `price` cents and `stock` on hand:
/// (seller token, shop id, product id).
pub(crate) async fn shop_with_product(
    platform: &Platform,
    name: &str,
    price: i64,
    stock: i64,
) -> (String, String, String) {
    let seller = platform.token(&[rpc::roles::SELLER]);
    let slug = format!("shop-{}", uuid::Uuid::now_v7().simple());
    let (status, shop) = platform
        .post(
            "/api/v1/shops",
            json!({"name": slug, "slug": slug, "contact_email": "s@shops.example", "currency": "USD"}),
            Some(&seller),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shop}");
    let shop_id = text(&shop, "id").to_owned();
    let (status, body) = platform
        .post(
            &format!("/api/v1/admin/shops/{shop_id}/approve"),
            json!({}),
            Some(&platform.admin_token()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, product) = platform
        .post(
            "/api/v1/products",
            json!({
                "shop_id": shop_id, "name": name,
                "price": {"minor_units": price, "currency": "USD"}, "initial_stock": stock,
            }),
            Some(&seller),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    (seller, shop_id, text(&product, "id").to_owned())
}

/// A customer's token, with an address, a payment method for `card`, and `quantity` of
/// `product_id` in their cart: (token, address id, payment method id).
pub(crate) async fn customer(
    platform: &Platform,
    card: &str,
    product_id: &str,
    quantity: i32,
) -> (String, String, String) {
    let token = platform.token(&[]);
    let (status, address) = platform
        .post(
            "/api/v1/addresses",
            json!({
                "recipient_name": "Ada Lovelace", "line1": "1 Market Street",
                "city": "San Francisco", "postal_code": "94105", "country_code": "US",
            }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{address}");
    let (status, method) = platform
        .post(
            "/api/v1/payment-methods",
            json!({"card_number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{method}");
    assert_eq!(text(&method, "last4"), &card[card.len() - 4..]);
    assert!(
        !method.to_string().contains(card),
        "the card number comes back: {method}"
    );
    let (status, cart) = platform
        .send(
            Method::PUT,
            &format!("/api/v1/cart/items/{product_id}"),
            Some(json!({"quantity": quantity})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    (
        token,
        text(&address, "id").to_owned(),
        text(&method, "id").to_owned(),
    )
}

async fn checkout(
    platform: &Platform,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    platform
        .send_with(
            Method::POST,
            "/api/v1/checkout",
            Some(body.clone()),
            Some(token),
            &headers,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_checks_out_and_follows_the_order_the_seller_ships() {
    let platform = platform(PlatformOptions::default()).await;
    let (seller, shop_id, lamp) = shop_with_product(&platform, "Lamp", 2500, 5).await;
    let (token, address_id, method_id) = customer(&platform, "4242 4242 4242 4242", &lamp, 2).await;
    let body = json!({"shipping_address_id": address_id, "payment_method_id": method_id});

    // Without the key, nothing happens.
    let (status, error) = checkout(&platform, &token, None, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["code"], "idempotency_key_required");
    // Anonymous: no.
    let (status, _) = platform
        .send_with(
            Method::POST,
            "/api/v1/checkout",
            Some(body.clone()),
            None,
            &[("Idempotency-Key", "k0")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, answer) = checkout(&platform, &token, Some("first-checkout"), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["http_status"], 201);
    let order = &answer["order"];
    assert_eq!(text(order, "status"), "paid", "{order}");
    assert_eq!(minor_units(&order["total"]), 2 * 2500 + 499);
    let order_id = text(order, "id").to_owned();
    assert_eq!(
        text(&answer, "order_url"),
        format!("/api/v1/orders/{order_id}")
    );

    // The same key again: the same answer, byte for byte, and no second order.
    let again = platform
        .http
        .post(format!("{}/api/v1/checkout", platform.address))
        .bearer_auth(&token)
        .header("Idempotency-Key", "first-checkout")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let replayed: Value = again.json().await.unwrap();
    assert_eq!(replayed, answer);
    let (status, orders) = platform.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1);

    // The cart is empty; the order is the customer's to read.
    let (_, cart) = platform.get("/api/v1/cart", Some(&token)).await;
    assert_eq!(cart["lines"].as_array().map_or(0, Vec::len), 0, "{cart}");
    let (status, read) = platform
        .get(&format!("/api/v1/orders/{order_id}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["sub_orders"][0]["shop_id"], shop_id.as_str());

    // The seller sees the sub-order in their shop and ships it.
    let (status, list) = platform
        .get(&format!("/api/v1/shops/{shop_id}/suborders"), Some(&seller))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let sub_order_id = text(&list["sub_orders"][0], "id").to_owned();
    let (status, shipped) = platform
        .post(
            &format!("/api/v1/suborders/{sub_order_id}/ship"),
            json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
            Some(&seller),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shipped}");
    assert_eq!(text(&shipped, "status"), "shipped");
    let (_, read) = platform
        .get(&format!("/api/v1/orders/{order_id}"), Some(&token))
        .await;
    assert_eq!(text(&read, "status"), "shipped");
    assert_eq!(read["sub_orders"][0]["carrier"], "UPS");
    // Shipped: cancelling is refused, and nothing is refunded.
    let (status, error) = platform
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], "failed_precondition");
    let (status, delivered) = platform
        .post(
            &format!("/api/v1/suborders/{sub_order_id}/deliver"),
            json!({}),
            Some(&seller),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{delivered}");
    let (_, read) = platform
        .get(&format!("/api/v1/orders/{order_id}"), Some(&token))
        .await;
    assert_eq!(text(&read, "status"), "delivered");

    // Who may not: another customer, another seller, a customer at the admin saga routes.
    let stranger = platform.token(&[]);
    let other_seller = platform.token(&[rpc::roles::SELLER]);
    for (path, who) in [
        (format!("/api/v1/orders/{order_id}"), &stranger),
        (format!("/api/v1/orders/{order_id}"), &seller),
        (format!("/api/v1/suborders/{sub_order_id}"), &stranger),
        (format!("/api/v1/suborders/{sub_order_id}"), &other_seller),
        (format!("/api/v1/shops/{shop_id}/suborders"), &other_seller),
    ] {
        let (status, body) = platform.get(&path, Some(who)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = platform
        .post(
            &format!("/api/v1/suborders/{sub_order_id}/ship"),
            json!({"carrier": "UPS", "tracking_number": "X1"}),
            Some(&other_seller),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for who in [&token, &seller] {
        let (status, _) = platform.get("/api/v1/admin/sagas", Some(who)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = platform
            .get(&format!("/api/v1/admin/sagas/{order_id}"), Some(who))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = platform
            .post(
                &format!("/api/v1/admin/sagas/{order_id}/abort"),
                json!({"reason": "x"}),
                Some(who),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = platform.get("/api/v1/admin/sagas", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An admin sees the saga, every step done.
    let (status, saga) = platform
        .get(
            &format!("/api/v1/admin/sagas/{order_id}"),
            Some(&platform.admin_token()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saga}");
    assert_eq!(text(&saga, "state"), "completed");
    assert_eq!(saga["steps"].as_array().unwrap().len(), 12, "{saga}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_checkout_answers_202_and_the_order_settles_at_its_url() {
    let platform = platform(PlatformOptions {
        checkout_wait_ms: 100,
        payment_latency_ms: 600,
        ..PlatformOptions::default()
    })
    .await;
    let (_seller, _shop, lamp) = shop_with_product(&platform, "Lamp", 1000, 5).await;
    let (token, address_id, method_id) = customer(&platform, "4242424242424242", &lamp, 1).await;
    let body = json!({"shipping_address_id": address_id, "payment_method_id": method_id});

    let (status, answer) = checkout(&platform, &token, Some("slow"), &body).await;

    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(text(&answer["order"], "status"), "pending");
    let url = text(&answer, "order_url").to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, order) = platform.get(&url, Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        if text(&order, "status") != "pending" {
            assert_eq!(text(&order, "status"), "paid", "{order}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still pending");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_answers_the_failed_order_with_the_reason_and_keeps_the_cart() {
    let platform = platform(PlatformOptions::default()).await;
    let (_seller, _shop, lamp) = shop_with_product(&platform, "Lamp", 1000, 5).await;
    let (token, address_id, method_id) = customer(&platform, "4000000000000002", &lamp, 1).await;
    let body = json!({"shipping_address_id": address_id, "payment_method_id": method_id});

    let (status, answer) = checkout(&platform, &token, Some("declined"), &body).await;

    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let order = &answer["order"];
    assert_eq!(text(order, "status"), "failed");
    assert_eq!(order["failure"]["code"], "payment_declined");
    assert_eq!(order["failure"]["payment_failure_code"], "card_declined");
    let (_, cart) = platform.get("/api/v1/cart", Some(&token)).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1);
    // A bad card number is named.
    let (status, error) = platform
        .post(
            "/api/v1/payment-methods",
            json!({"card_number": "4242424242424241", "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["details"][0]["field"], "card_number");
    platform.stop().await;
}
