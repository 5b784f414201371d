//! Rate limits: per client and class, shared through Redis, failing open without it.

use crate::helpers::{Options, TestApp, expect_error, product_path, products_path};

fn tiny_limits() -> Options {
    Options {
        configure: Box::new(|config| {
            config.rate_limits = "default=3/60,search=2/60".parse().unwrap();
        }),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_limit_are_429_with_rate_limit_headers() {
    let app = TestApp::spawn_with(tiny_limits()).await;
    let path = product_path(&uuid::Uuid::now_v7().to_string());
    for remaining in ["2", "1", "0"] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
        let reset: u64 = response.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    let response = app.get(&path).await;
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "one token refills in 20 s: {retry_after}"
    );
    expect_error(response, 429, "rate_limited").await;

    // Another class has its own bucket...
    let response = app.get(&products_path()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-limit"], "2");
    // ...and so does a signed-in user.
    let response = app.get_with_token(&path, &app.customer_token()).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-ratelimit-remaining"], "2");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_only_trusted_when_configured() {
    let app = TestApp::spawn_with(tiny_limits()).await;
    // Not trusted: changing the header does not buy a new bucket.
    for (i, expected) in [200, 200, 429].into_iter().enumerate() {
        let response = app
            .request(reqwest::Method::GET, &products_path())
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
    }
    app.stop().await;

    let app = TestApp::spawn_with(Options {
        configure: Box::new(|config| {
            config.rate_limits = "default=3/60,search=2/60".parse().unwrap();
            config.trust_forwarded_for = true;
        }),
        ..Options::default()
    })
    .await;
    for i in 0..4 {
        let response = app
            .request(reqwest::Method::GET, &products_path())
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "client {i} has its own bucket");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_requests_still_pass() {
    let mut app = TestApp::spawn_with(tiny_limits()).await;
    app.stop_redis();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let response = app.get(&products_path()).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-ratelimit-limit").is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rate_limit_decisions_total") && l.contains("fail_open")),
        "{metrics}"
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["checks"]["nats"], "ok");
    app.stop().await;
}
