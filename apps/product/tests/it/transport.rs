//! The service as seen from outside the typed client: plain NATS with JSON (what `nats req`
//! sends), protobuf, the admin port, and shutdown.

use std::time::Duration;

use api::product::methods::GET_PRODUCT;
use api::product::{GetProductRequest, Product};
use async_nats::HeaderMap;
use prost::Message as _;
use rpc::{ErrorCode, headers};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, anonymous, product};

#[tokio::test]
async fn plain_json_over_nats_works_like_nats_req() {
    let app = TestApp::spawn().await;
    let created = app.create_product(product("Teapot")).await;

    let request = serde_json::to_vec(&json!({ "id": created.id })).unwrap();
    let reply = app
        .nats
        .request(GET_PRODUCT.subject, request.into())
        .await
        .unwrap();
    let reply_headers = reply.headers.as_ref();
    assert!(
        reply_headers
            .and_then(|h| h.get(headers::NATS_SERVICE_ERROR))
            .is_none()
    );
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["id"], created.id.as_str());
    assert_eq!(body["name"], "Teapot");
    assert_eq!(
        body["price"]["minor_units"], "1000",
        "int64 is a JSON string"
    );
    assert_eq!(body["price"]["currency"], "USD");
    assert_eq!(body["status"], "active");

    // Errors come back as headers plus a JSON body.
    let missing = serde_json::to_vec(&json!({ "id": uuid::Uuid::now_v7() })).unwrap();
    let reply = app
        .nats
        .request(GET_PRODUCT.subject, missing.into())
        .await
        .unwrap();
    let reply_headers = reply.headers.as_ref().expect("error headers");
    assert_eq!(
        reply_headers
            .get(headers::NATS_SERVICE_ERROR_CODE)
            .map(|v| v.as_str()),
        Some("5")
    );
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["code"], "not_found");

    let reply = app
        .nats
        .request(GET_PRODUCT.subject, "{\"id\": ".into())
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["code"], "invalid_argument");
    app.stop().await;
}

#[tokio::test]
async fn protobuf_is_spoken_when_asked_for() {
    let app = TestApp::spawn().await;
    let created = app.create_product(product("Saucepan")).await;

    let mut request_headers = HeaderMap::new();
    request_headers.insert(headers::CONTENT_TYPE, headers::PROTOBUF);
    let request = GetProductRequest {
        id: created.id.clone(),
    };
    let reply = app
        .nats
        .request_with_headers(
            GET_PRODUCT.subject,
            request_headers,
            request.encode_to_vec().into(),
        )
        .await
        .unwrap();
    let content_type = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::CONTENT_TYPE))
        .map(|v| v.as_str().to_owned());
    assert_eq!(content_type.as_deref(), Some(headers::PROTOBUF));
    let product = Product::decode(reply.payload).unwrap();
    assert_eq!(product, created);

    // The typed client can speak protobuf too.
    let client = api::product::ProductClient::new(
        rpc::Client::new(app.nats.clone()).with_codec(rpc::Codec::Protobuf),
    );
    assert_eq!(
        client.get_product(&anonymous(), &request).await.unwrap(),
        created
    );
    app.stop().await;
}

/// A GET on the admin port: (status code, body).
pub(crate) async fn admin_get(app: &TestApp, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.admin_addr())
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_admin_port_reports_health_and_metrics() {
    let app = TestApp::spawn().await;
    let (status, _) = admin_get(&app, "/health/live").await;
    assert_eq!(status, 200);

    let (status, body) = admin_get(&app, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    // Redis only caches: it cannot make the service unready (see `degraded`).
    for check in ["nats", "postgres"] {
        assert!(
            body.contains(&format!("\"{check}\":\"ok\"")),
            "{check} in {body}"
        );
    }

    app.create_product(product("Whisk")).await;
    let (status, body) = admin_get(&app, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("rpc_server_requests_total") && body.contains("create_product"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn after_shutdown_nobody_answers() {
    let mut app = TestApp::spawn().await;
    let created = app.create_product(product("Ladle")).await;
    app.stop_service().await;

    // The server stops routing to the instance once it has processed the instance's
    // unsubscriptions, which on a loaded machine can trail the end of `run_until` by a moment;
    // a request sent in that moment goes unanswered instead of failing fast. Either way it
    // must never be served, and the server must soon know that nobody is there.
    let request = GetProductRequest { id: created.id };
    for _ in 0..20 {
        let ctx = anonymous().with_timeout(Duration::from_millis(500));
        match app.client.get_product(&ctx, &request).await {
            Err(error) if error.code() == ErrorCode::Unavailable => return,
            Err(error) if error.code() == ErrorCode::DeadlineExceeded => continue,
            other => panic!("a request was served after shutdown: {other:?}"),
        }
    }
    panic!("the server still routes requests to the stopped service");
}
