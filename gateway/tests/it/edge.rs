//! What every request meets at the edge: the admin port apart from the public one, security
//! headers, metric labels no client can multiply, request ids, deadlines from arrival, and
//! load shedding.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures::StreamExt as _;
use sha2::Digest as _;

use crate::helpers::{Options, TestApp, expect_error, product_path, products_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_docs_are_on_the_admin_port_only() {
    let app = TestApp::spawn().await;
    for path in ["/metrics", "/docs"] {
        expect_error(app.get(path).await, 404, "not_found").await;
        assert_eq!(app.admin_get(path).await.status(), 200, "{path}");
    }
    // The document stays public (clients generate code from it); the page on the admin port
    // fetches it from there.
    assert_eq!(app.get("/openapi.json").await.status(), 200);
    assert_eq!(app.admin_get("/openapi.json").await.status(), 200);
    for path in ["/health/live", "/health/ready"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
        assert_eq!(app.admin_get(path).await.status(), 200, "{path}");
    }
    let metrics = app.metrics().await;
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    app.stop().await;
}

fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let what = response.url().path();
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert!(
        headers.contains_key("content-security-policy"),
        "{what}: {headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_hsts_only_over_https() {
    let app = TestApp::spawn().await;
    let ok = app.get(&products_path()).await;
    assert_eq!(ok.status(), 200);
    assert_security_headers(&ok);
    assert_eq!(
        ok.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert!(!ok.headers().contains_key("strict-transport-security"));
    let missing = app.get("/no/such/route").await;
    assert_security_headers(&missing);
    let not_found = app
        .get(&product_path(&uuid::Uuid::now_v7().to_string()))
        .await;
    assert_security_headers(&not_found);
    // A client saying it came over HTTPS is not believed without a proxy of ours.
    let claimed = app
        .request(reqwest::Method::GET, &products_path())
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(!claimed.headers().contains_key("strict-transport-security"));
    app.stop().await;

    let app = TestApp::spawn_with(Options {
        configure: Box::new(|config| config.public_tls = true),
        ..Options::default()
    })
    .await;
    let response = app.get(&products_path()).await;
    assert_security_headers(&response);
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="),
        "{:?}",
        response.headers()
    );
    app.stop().await;

    let app = TestApp::spawn_with(Options {
        configure: Box::new(|config| config.trust_forwarded_for = true),
        ..Options::default()
    })
    .await;
    let over = |proto: &'static str| {
        app.request(reqwest::Method::GET, &products_path())
            .header("x-forwarded-proto", proto)
            .send()
    };
    let https = over("https").await.unwrap();
    assert!(https.headers().contains_key("strict-transport-security"));
    let http = over("http").await.unwrap();
    assert!(!http.headers().contains_key("strict-transport-security"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_may_run_only_its_own_inline_script_and_style() {
    let app = TestApp::spawn().await;
    let page = app.admin_get("/docs").await;
    assert_eq!(page.status(), 200);
    assert_security_headers(&page);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let inline = |tag: &str| {
        let open = format!("<{tag}>");
        let start = html.find(&open).unwrap() + open.len();
        let end = start + html[start..].find(&format!("</{tag}>")).unwrap();
        let digest = sha2::Sha256::digest(&html.as_bytes()[start..end]);
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    };
    assert!(
        policy.contains(&format!("script-src {};", inline("script"))),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("style-src {};", inline("style"))),
        "{policy}"
    );
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(
        policy.contains("connect-src 'self'"),
        "it fetches /openapi.json: {policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    app.stop().await;
}

/// The series of `http_requests_total` and `http_request_duration_seconds`, as label sets.
fn http_series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("http_requests_total{")
                || line.starts_with("http_request_duration_seconds_count{")
        })
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + series[start..].find('"')?;
    Some(&series[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_add_no_metric_series() {
    let app = TestApp::spawn().await;
    let mut seed = 0x0bad_5eed_u64;
    let mut token = |length: usize| {
        (0..length)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(seed >> 33) as usize % 36] as char
            })
            .collect::<String>()
    };
    let send = async |method: String, path: String| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app.request(method, &path).send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    };
    // One of each kind first: the series a made-up method or path falls into.
    send(format!("M{}", token(8)), format!("/{}", token(12))).await;
    send(format!("M{}", token(8)), products_path()).await;
    send("GET".to_owned(), format!("/{}", token(12))).await;
    let before = http_series(&app.metrics().await);

    let mut made_up = Vec::new();
    for i in 0..50 {
        let method = format!("M{}", token(8));
        let path = format!("/{}/{}", token(6), token(10));
        made_up.push(method.clone());
        made_up.push(path.clone());
        match i % 3 {
            0 => send(method, path).await,
            1 => send(method, products_path()).await,
            _ => send("GET".to_owned(), path).await,
        }
    }
    let after = http_series(&app.metrics().await);
    let other: Vec<&String> = after
        .iter()
        .filter(|series| label(series, "method") == Some("other"))
        .collect();
    let other_before: Vec<&String> = before
        .iter()
        .filter(|series| label(series, "method") == Some("other"))
        .collect();
    assert_eq!(other, other_before, "no new series for made-up methods");
    let known_routes: BTreeSet<&str> = api::ROUTES
        .iter()
        .map(|route| route.path)
        .chain([
            "unmatched",
            "/health/live",
            "/health/ready",
            "/openapi.json",
        ])
        .collect();
    for series in &after {
        let route = label(series, "route").unwrap();
        let method = label(series, "method").unwrap();
        assert!(known_routes.contains(route), "{series}");
        assert!(
            [
                "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
                "other"
            ]
            .contains(&method),
            "{series}"
        );
        for text in &made_up {
            assert!(!series.contains(text.as_str()), "{series}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_that_are_not_short_plain_text_are_replaced() {
    let app = TestApp::spawn().await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    for sent in ["x".repeat(4096), "tab\there".to_owned(), String::new()] {
        let response = app
            .request(reqwest::Method::GET, &products_path())
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(echoed).is_ok(), "{echoed}");
        let forwarded = requests.next().await.unwrap().headers.unwrap();
        assert_eq!(
            forwarded.get(rpc::headers::REQUEST_ID).unwrap().as_str(),
            echoed,
            "the service gets the same id"
        );
    }
    app.stop().await;
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_an_absolute_deadline_counted_from_arrival() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|config| config.request_timeout_ms = 4_000),
        ..Options::default()
    })
    .await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    // A forged deadline is never forwarded.
    let sent_at = unix_millis();
    let response = app
        .request(reqwest::Method::GET, &products_path())
        .header(rpc::headers::DEADLINE, (sent_at + 3_600_000).to_string())
        .send()
        .await
        .unwrap();
    let answered_at = unix_millis();
    assert_eq!(response.status(), 200);
    let headers = requests.next().await.unwrap().headers.unwrap();
    let deadline: u64 = headers
        .get(rpc::headers::DEADLINE)
        .expect("the deadline travels with the request")
        .as_str()
        .parse()
        .unwrap();
    // The request arrived after it was sent and before it was answered; its deadline is
    // that moment plus the gateway's timeout (millisecond rounding aside).
    assert!(
        deadline + 5 >= sent_at + 4_000,
        "{deadline} vs sent {sent_at}"
    );
    assert!(
        deadline <= answered_at + 4_000,
        "{deadline} vs answered {answered_at}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_are_shed_with_503_and_retry_after() {
    let app = TestApp::spawn_with(Options {
        product_service: false,
        configure: Box::new(|config| config.max_in_flight = 1),
    })
    .await;
    // Stands in for a slow service: holds the request until the test answers it.
    let mut slow = app.watch(&api::product::methods::GET_PRODUCT).await;
    let path = product_path(&uuid::Uuid::now_v7().to_string());
    let held = tokio::spawn({
        let request = app.request(reqwest::Method::GET, &path);
        async move { request.send().await.unwrap().status() }
    });
    let in_flight = slow.next().await.expect("the request reaches NATS");

    let response = app.get("/openapi.json").await;
    assert_eq!(
        response.headers()["retry-after"],
        "1",
        "{:?}",
        response.headers()
    );
    expect_error(response, 503, "unavailable").await;
    // Health probes are never shed.
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get("/health/ready").await.status(), 200);
    // Nor is the admin port.
    assert_eq!(app.admin_get("/health/ready").await.status(), 200);

    app.nats
        .publish(in_flight.reply.unwrap(), r#"{}"#.into())
        .await
        .unwrap();
    app.nats.flush().await.unwrap();
    assert_eq!(held.await.unwrap(), 200);
    assert_eq!(app.get("/openapi.json").await.status(), 200);
    let metrics = app.metrics().await;
    let shed: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("gateway_requests_shed_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(shed >= 1.0, "{metrics}");
    app.stop().await;
}
