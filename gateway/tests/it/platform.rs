//! What the gateway offers around the API: request ids, CORS, compression, health, metrics,
//! the OpenAPI document and its page.

use serde_json::Value;

use crate::helpers::{TestApp, expect_error, product_path, products_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let response = app
        .request(reqwest::Method::GET, &products_path())
        .header("x-request-id", "my-request-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "my-request-7");

    let response = app.get(&products_path()).await;
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

    // Errors made by the gateway itself carry one too.
    let response = app.get("/api/v1/no-such-thing").await;
    assert!(response.headers().contains_key("x-request-id"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(
        document["paths"].get(products_path()).is_some(),
        "{}",
        document["paths"]
    );
    for route in api::ROUTES {
        let operation = &document["paths"][route.path][route.http_method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} is documented",
            route.http_method,
            route.path
        );
    }

    let page = app.admin_get("/docs").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    assert!(
        !html.contains("<script src="),
        "the page loads nothing from elsewhere"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_answered_for_allowed_origins_only() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.request(reqwest::Method::OPTIONS, &products_path())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let response = preflight("https://shop.example").await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    // A header a contract fills a field from (the guest cart's token) is one a browser sends.
    assert!(allowed.contains("x-cart-token"), "{allowed}");

    let response = preflight("https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Simple requests from the allowed origin get the header and can read the rate limits.
    let response = app
        .request(reqwest::Method::GET, &products_path())
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-ratelimit-remaining"), "{exposed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_gzipped_when_asked() {
    let app = TestApp::spawn().await;
    let response = app
        .request(reqwest::Method::GET, "/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    assert!(compressed.len() < api::OPENAPI_JSON.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_are_served() {
    let app = TestApp::spawn().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["checks"]["nats"], "ok");
    assert_eq!(ready["checks"]["redis"], "ok");

    app.get(&product_path(&uuid::Uuid::now_v7().to_string()))
        .await;
    app.get(&products_path()).await;
    let metrics = app.metrics().await;
    let template = api::ROUTES
        .iter()
        .find(|r| std::ptr::eq(r.descriptor, &api::product::methods::GET_PRODUCT))
        .unwrap()
        .path;
    assert!(
        metrics.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(&format!("route=\"{template}\""))
            && l.contains("status=\"404\"")),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rate_limit_decisions_total")
                && l.contains("class=\"search\"")
                && l.contains("decision=\"allowed\"")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_have_the_same_shape_as_service_errors() {
    let app = TestApp::spawn().await;
    let body = expect_error(app.get("/nope").await, 404, "not_found").await;
    assert_eq!(body["details"], serde_json::json!([]));
    app.stop().await;
}
