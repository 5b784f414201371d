//! `Idempotency-Key` end to end: a customer creating addresses through the gateway (auth,
//! user and address services behind it), an admin creating products, and a product service
//! that is not there yet.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{Options, Platform, TestApp, new_product, products_path};

const ADDRESSES: &str = "/api/v1/addresses";

/// What came back, unparsed, to compare answers byte for byte.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.expect("a body"),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn replayed(&self) -> bool {
        match self.headers.get("idempotent-replayed") {
            None => false,
            Some(value) => {
                assert_eq!(value, "true", "the replay marker says true");
                true
            }
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Checks an error answer's status and code, and returns its body.
    fn error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].is_string(), "{body}");
        assert!(body["details"].is_array(), "{body}");
        body
    }
}

fn address(line1: &str) -> Value {
    json!({
        "recipient_name": "Ada Lovelace",
        "line1": line1,
        "city": "London",
        "postal_code": "SW1A 1AA",
        "country_code": "GB",
    })
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn send(
    http: &reqwest::Client,
    url: String,
    method: reqwest::Method,
    token: &str,
    key: Option<&[u8]>,
    body: Option<&Value>,
) -> Answer {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(key) = key {
        request = request.header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(key).expect("a header value"),
        );
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Answer::of(request.send().await.expect("request sent")).await
}

impl Platform {
    async fn create_address(&self, token: &str, key: Option<&str>, body: &Value) -> Answer {
        send(
            &self.http,
            format!("{}{ADDRESSES}", self.address),
            reqwest::Method::POST,
            token,
            key.map(str::as_bytes),
            Some(body),
        )
        .await
    }

    /// The ids of the caller's addresses.
    async fn address_ids(&self, token: &str) -> Vec<String> {
        let (status, list) = self.get(ADDRESSES, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["addresses"]
            .as_array()
            .expect("addresses")
            .iter()
            .map(|a| a["id"].as_str().expect("an id").to_owned())
            .collect()
    }
}

fn customer(platform: &Platform) -> String {
    platform.token(&[rpc::roles::CUSTOMER])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_with_the_same_key_gets_the_first_answer_and_creates_nothing() {
    let platform = Platform::spawn().await;
    let token = customer(&platform);
    let key = new_key();

    let first = platform
        .create_address(&token, Some(&key), &address("1 Home Street"))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert!(!first.replayed(), "the first answer is not a replay");
    let again = platform
        .create_address(&token, Some(&key), &address("1 Home Street"))
        .await;
    assert_eq!(again.status, first.status);
    assert!(again.replayed(), "the repeat is marked as a replay");
    assert_eq!(again.body, first.body, "the same answer, byte for byte");
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_ne!(
        again.header("x-request-id"),
        first.header("x-request-id"),
        "the request id is the repeat's own"
    );
    assert_eq!(
        platform.address_ids(&token).await,
        [first.json()["id"].as_str().unwrap()],
        "one address was created"
    );

    // Without a key the same request is a new one: a second address.
    let unkeyed = platform
        .create_address(&token, None, &address("1 Home Street"))
        .await;
    assert_eq!(unkeyed.status, StatusCode::OK, "{:?}", unkeyed.body);
    assert!(!unkeyed.replayed());
    assert_ne!(unkeyed.json()["id"], first.json()["id"]);
    assert_eq!(platform.address_ids(&token).await.len(), 2);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_create_one_address() {
    let platform = Platform::spawn().await;
    let token = customer(&platform);
    let key = new_key();
    let body = address("5 Busy Lane");

    let answers = futures::future::join_all(
        (0..5).map(|_| platform.create_address(&token, Some(&key), &body)),
    )
    .await;
    let mut originals = Vec::new();
    let mut replays = Vec::new();
    for answer in &answers {
        match answer.status {
            StatusCode::OK if answer.replayed() => replays.push(answer),
            StatusCode::OK => originals.push(answer),
            StatusCode::CONFLICT => {
                answer.error(StatusCode::CONFLICT, "idempotency_key_in_flight");
                assert_eq!(answer.header("retry-after"), Some("1"));
            }
            other => panic!("{other}: {:?}", answer.body),
        }
    }
    assert_eq!(
        originals.len(),
        1,
        "exactly one request was served: {answers:#?}"
    );
    for replay in replays {
        assert_eq!(replay.body, originals[0].body);
    }
    let created = originals[0].json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        platform.address_ids(&token).await,
        std::slice::from_ref(&created)
    );

    // Once the first is done, every repeat gets its answer.
    let later = platform.create_address(&token, Some(&key), &body).await;
    assert!(later.replayed());
    assert_eq!(later.body, originals[0].body);
    assert_eq!(platform.address_ids(&token).await, [created]);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_for_another_request_is_refused() {
    let platform = Platform::spawn().await;
    let token = customer(&platform);
    let key = new_key();

    let first = platform
        .create_address(&token, Some(&key), &address("1 Home Street"))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let other = platform
        .create_address(&token, Some(&key), &address("2 Work Road"))
        .await;
    let body = other.error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{body}"
    );
    assert!(!other.replayed());
    assert_eq!(platform.address_ids(&token).await.len(), 1);

    // The same key on another route is another record: making the address the default.
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let default = send(
        &platform.http,
        format!("{}{ADDRESSES}/{id}/default", platform.address),
        reqwest::Method::POST,
        &token,
        Some(key.as_bytes()),
        Some(&json!({})),
    )
    .await;
    assert_eq!(default.status, StatusCode::OK, "{:?}", default.body);
    assert!(!default.replayed());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_with_one_key_have_a_record_each() {
    let platform = Platform::spawn().await;
    let ada = customer(&platform);
    let grace = customer(&platform);
    let key = new_key();
    let body = address("1 Shared Street");

    let ada_answer = platform.create_address(&ada, Some(&key), &body).await;
    assert_eq!(ada_answer.status, StatusCode::OK, "{:?}", ada_answer.body);
    let grace_answer = platform.create_address(&grace, Some(&key), &body).await;
    assert_eq!(
        grace_answer.status,
        StatusCode::OK,
        "{:?}",
        grace_answer.body
    );
    assert!(!grace_answer.replayed(), "not Ada's answer");
    assert_ne!(grace_answer.json()["id"], ada_answer.json()["id"]);
    assert_eq!(
        platform.address_ids(&ada).await,
        [ada_answer.json()["id"].as_str().unwrap()]
    );
    assert_eq!(
        platform.address_ids(&grace).await,
        [grace_answer.json()["id"].as_str().unwrap()]
    );
    // Each one's repeat is their own answer.
    let grace_again = platform.create_address(&grace, Some(&key), &body).await;
    assert!(grace_again.replayed());
    assert_eq!(grace_again.body, grace_answer.body);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_keys_are_refused_and_reads_ignore_the_header() {
    let platform = Platform::spawn().await;
    let token = customer(&platform);
    let too_long = "k".repeat(256);
    for key in [
        too_long.as_bytes(),
        b"tab\there",
        b"with space",
        b"",
        "caf\u{e9}".as_bytes(),
    ] {
        let answer = send(
            &platform.http,
            format!("{}{ADDRESSES}", platform.address),
            reqwest::Method::POST,
            &token,
            Some(key),
            Some(&address("1 Home Street")),
        )
        .await;
        let body = answer.error(StatusCode::BAD_REQUEST, "invalid_argument");
        assert_eq!(body["details"][0]["field"], "Idempotency-Key", "{body}");
    }
    // 255 characters are fine.
    let longest = "k".repeat(255);
    let answer = platform
        .create_address(&token, Some(&longest), &address("1 Home Street"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(platform.address_ids(&token).await.len(), 1);

    // A read ignores the header, even a malformed one.
    let list = send(
        &platform.http,
        format!("{}{ADDRESSES}", platform.address),
        reqwest::Method::GET,
        &token,
        Some(b"with space"),
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert!(!list.replayed());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_the_answer_too_and_is_kept() {
    let platform = Platform::spawn().await;
    let token = customer(&platform);
    let key = new_key();
    let bad = json!({"recipient_name": "", "line1": "x", "city": "y", "postal_code": "1", "country_code": "XXX"});

    let first = platform.create_address(&token, Some(&key), &bad).await;
    first.error(StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(!first.replayed());
    let again = platform.create_address(&token, Some(&key), &bad).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.replayed(), "a 4xx is kept");
    assert_eq!(again.body, first.body);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_service_is_not_the_answer_a_retry_gets() {
    let app = TestApp::spawn_with(Options {
        product_service: false,
        ..Options::default()
    })
    .await;
    let token = app.admin_token();
    let key = new_key();
    let body = new_product("Lamp", 1999);
    let create = || {
        send(
            &app.http,
            app.url(&products_path()),
            reqwest::Method::POST,
            &token,
            Some(key.as_bytes()),
            Some(&body),
        )
    };

    let first = create().await;
    first.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let again = create().await;
    again.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(!again.replayed(), "a 503 is not kept");

    // The service comes up: the retry with the same key is served.
    let mut requests = app.watch(&api::product::methods::CREATE_PRODUCT).await;
    let nats = app.nats.clone();
    let service = tokio::spawn(async move {
        let mut served = 0;
        while let Some(request) = requests.next().await {
            served += 1;
            let reply = request.reply.expect("a request has a reply subject");
            nats.publish(reply, format!(r#"{{"id":"product-{served}"}}"#).into())
                .await
                .expect("replying");
        }
    });
    let served = create().await;
    assert_eq!(served.status, StatusCode::OK, "{:?}", served.body);
    assert!(!served.replayed());
    assert_eq!(served.json()["id"], "product-1");
    // And that answer is the one kept: the next retry does not reach the service.
    let replay = create().await;
    assert!(replay.replayed());
    assert_eq!(replay.body, served.body);
    assert!(
        app.metrics()
            .await
            .lines()
            .any(|l| l.starts_with("gateway_idempotency_total") && l.contains("released")),
        "the released claim is counted"
    );
    service.abort();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_keyed_request_waits_and_an_unkeyed_one_is_served() {
    let mut app = TestApp::spawn().await;
    let token = app.admin_token();
    let key = new_key();
    app.stop_redis();
    let body = new_product("Chair", 4999);
    // With a key: refused rather than risk a second effect on a retry.
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let answer = send(
            &app.http,
            app.url(&products_path()),
            reqwest::Method::POST,
            &token,
            Some(key.as_bytes()),
            Some(&body),
        )
        .await;
        answer.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    // Without a key: served as ever.
    let answer = send(
        &app.http,
        app.url(&products_path()),
        reqwest::Method::POST,
        &token,
        None,
        Some(&body),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_idempotency_total") && l.contains("unavailable")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_may_send_the_key_and_read_the_replay_marker() {
    let app = TestApp::spawn().await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url(&products_path()))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,idempotency-key",
        )
        .send()
        .await
        .expect("a preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");

    let response = app
        .http
        .get(app.url(&products_path()))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .expect("a GET");
    let exposed = response
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("idempotent-replayed"), "{exposed}");
    app.stop().await;
}
