//! Every failure is a JSON error with the right status, and bad input names its fields.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::json;

use crate::helpers::{
    Options, TestApp, bad_fields, expect_error, http_method_of, new_product, path_of, product_path,
    products_path,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_products_are_400_naming_each_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let cases = [
        (
            json!({"price": {"minor_units": -1, "currency": "USD"}}),
            "price.minor_units",
        ),
        (json!({"name": ""}), "name"),
        (
            json!({"price": {"minor_units": 100, "currency": "ZZZ"}}),
            "price.currency",
        ),
    ];
    for (change, field) in cases {
        let mut body = new_product("Valid name", 100);
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response = app.post_json(&products_path(), &body, Some(&admin)).await;
        let error = expect_error(response, 400, "invalid_argument").await;
        assert_eq!(bad_fields(&error), [field], "{error}");
    }
    assert!(
        app.list_products("").await.is_empty(),
        "nothing was written"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    // Forwarded as is (the hot path): the service refuses it.
    let response = app
        .request(reqwest::Method::POST, &products_path())
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_argument").await;

    // Merged with a path parameter: the gateway refuses it.
    let product = app.create_product(&new_product("Mug", 900)).await;
    let update = path_of(
        &api::product::methods::UPDATE_PRODUCT,
        &[("id", product["id"].as_str().unwrap())],
    );
    for body in ["{\"name\": ", "[1, 2]"] {
        let response = app
            .request(reqwest::Method::PATCH, &update)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 400, "invalid_argument").await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("malformed JSON"),
            "{error}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_values_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    let response = app
        .get(&format!("{}?page_size=lots", products_path()))
        .await;
    let error = expect_error(response, 400, "invalid_argument").await;
    assert_eq!(bad_fields(&error), ["page_size"]);
    let response = app
        .get(&format!("{}?min_price_minor_units=1.5", products_path()))
        .await;
    let error = expect_error(response, 400, "invalid_argument").await;
    assert_eq!(bad_fields(&error), ["min_price_minor_units"]);
    crate::helpers::assert_nothing_arrives(&mut requests).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|config| config.body_limit_bytes = 4096),
        ..Options::default()
    })
    .await;
    let mut body = new_product("Big", 100);
    body["description"] = json!("x".repeat(8192));
    let response = app
        .post_json(&products_path(), &body, Some(&app.admin_token()))
        .await;
    expect_error(response, 413, "payload_too_large").await;

    // A chunked body without a declared length is cut off at the limit too.
    let (status, body) = post_chunked(&app, &products_path(), 8, 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    assert!(app.list_products("").await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let response = app
        .request(reqwest::Method::POST, &products_path())
        .bearer_auth(app.admin_token())
        .header("content-type", "text/plain")
        .body("name=Widget")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_products_and_unknown_routes_are_404() {
    let app = TestApp::spawn().await;
    let response = app
        .get(&product_path(&uuid::Uuid::now_v7().to_string()))
        .await;
    expect_error(response, 404, "not_found").await;
    let response = app.get("/api/v1/no-such-thing").await;
    expect_error(response, 404, "not_found").await;
    let response = app.get("/").await;
    expect_error(response, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::now_v7().to_string();
    let response = app
        .request(reqwest::Method::DELETE, &product_path(&id))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    expect_error(response, 405, "method_not_allowed").await;
    for method in [
        http_method_of(&api::product::methods::GET_PRODUCT),
        http_method_of(&api::product::methods::UPDATE_PRODUCT),
    ] {
        assert!(allow.contains(method.as_str()), "{allow}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_product_service_requests_fail_fast_with_503() {
    let app = TestApp::spawn_with(Options {
        product_service: false,
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let response = app.get(&products_path()).await;
    let elapsed = started.elapsed();
    assert_eq!(response.headers()["retry-after"], "1");
    expect_error(response, 503, "unavailable").await;
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");

    // Access is still checked first: no token, no 503.
    let response = app
        .post_json(&products_path(), &new_product("X", 1), None)
        .await;
    expect_error(response, 401, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_does_not_answer_in_time_is_504() {
    let app = TestApp::spawn_with(Options {
        product_service: false,
        configure: Box::new(|config| config.request_timeout_ms = 300),
    })
    .await;
    // Something listens on the subject but never answers.
    let mut silent = app.watch(&api::product::methods::GET_PRODUCT).await;
    let started = Instant::now();
    let response = app.get(&product_path("p-1")).await;
    let elapsed = started.elapsed();
    expect_error(response, 504, "deadline_exceeded").await;
    assert!(elapsed >= Duration::from_millis(250), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let request = silent.next().await.unwrap();
    let timeout_ms: u64 = request
        .headers
        .unwrap()
        .get(rpc::headers::TIMEOUT_MS)
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    assert!(timeout_ms <= 300, "{timeout_ms}");
    app.stop().await;
}

/// Sends a body of `chunks` chunks of `chunk_size` spaces with chunked transfer encoding (no
/// Content-Length), over a raw connection; returns the status and the raw response text.
async fn post_chunked(
    app: &TestApp,
    path: &str,
    chunks: usize,
    chunk_size: usize,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.admin_token()
    )
    .into_bytes();
    for _ in 0..chunks {
        request.extend_from_slice(format!("{chunk_size:x}\r\n").as_bytes());
        request.extend(std::iter::repeat_n(b' ', chunk_size));
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything; that is fine.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
