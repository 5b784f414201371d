//! Rate limits: per client and class, shared through Redis, failing open without it.

use futures::StreamExt as _;

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

fn trusting_a_proxy() -> Options {
    Options {
        configure: Box::new(|config| {
            config.rate_limits = "default=3/60,search=2/60".parse().unwrap();
            config.trust_forwarded_for = true;
        }),
        ..Options::default()
    }
}

/// The rate-limit buckets in the gateway's Redis.
async fn buckets(app: &TestApp) -> Vec<String> {
    let client = redis::Client::open(app.redis_url().unwrap()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("gateway:ratelimit:*")
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.sort();
    keys
}

/// Lists products claiming `forwarded_for`; the status and the `X-Client-Ip` the service got.
async fn list_as(
    app: &TestApp,
    requests: &mut async_nats::Subscriber,
    forwarded_for: &str,
) -> (u16, Option<String>) {
    let response = app
        .request(reqwest::Method::GET, &products_path())
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 429 {
        return (status, None);
    }
    let seen = requests.next().await.unwrap().headers.unwrap();
    let client_ip = seen
        .get(rpc::headers::CLIENT_IP)
        .map(|v| v.as_str().to_owned());
    (status, client_ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_client_is_the_address_it_appended() {
    let app = TestApp::spawn_with(trusting_a_proxy()).await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    // The client claimed 198.51.100.1; our proxy appended the address it saw.
    let (status, client_ip) = list_as(&app, &mut requests, "198.51.100.1, 203.0.113.9").await;
    assert_eq!(status, 200);
    assert_eq!(client_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(
        buckets(&app).await,
        ["gateway:ratelimit:search:ip:203.0.113.9"]
    );
    // An entry the proxy did not write as an address does not hand the choice to the client.
    let (status, client_ip) = list_as(&app, &mut requests, "198.51.100.1, unknown").await;
    assert_eq!(status, 200);
    assert_eq!(client_ip.as_deref(), Some("127.0.0.1"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_proxy_a_forged_forwarded_for_is_ignored() {
    let app = TestApp::spawn_with(tiny_limits()).await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    let (status, client_ip) = list_as(&app, &mut requests, "198.51.100.1, 203.0.113.9").await;
    assert_eq!(status, 200);
    assert_eq!(client_ip.as_deref(), Some("127.0.0.1"), "the TCP peer");
    assert_eq!(
        buckets(&app).await,
        ["gateway:ratelimit:search:ip:127.0.0.1"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_share_a_bucket_per_64() {
    let app = TestApp::spawn_with(trusting_a_proxy()).await;
    let mut requests = app.watch(&api::product::methods::LIST_PRODUCTS).await;
    // The search class allows two: two addresses of one /64 spend them both.
    let (status, client_ip) = list_as(&app, &mut requests, "2001:db8:1:2::5").await;
    assert_eq!(status, 200);
    assert_eq!(
        client_ip.as_deref(),
        Some("2001:db8:1:2::5"),
        "services see the whole address"
    );
    assert_eq!(
        list_as(&app, &mut requests, "2001:db8:1:2:ffff::6").await.0,
        200
    );
    assert_eq!(list_as(&app, &mut requests, "2001:db8:1:2::7").await.0, 429);
    // Another /64 has a bucket of its own.
    assert_eq!(list_as(&app, &mut requests, "2001:db8:1:3::5").await.0, 200);
    assert_eq!(
        buckets(&app).await,
        [
            "gateway:ratelimit:search:ip:2001:db8:1:2::/64",
            "gateway:ratelimit:search:ip:2001:db8:1:3::/64",
        ]
    );
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
    let metrics = app.metrics().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_leases_tokens_but_never_gets_more_than_the_bucket() {
    let app = TestApp::spawn_with(Options {
        // 100 tokens an hour: nothing refills during the test.
        configure: Box::new(|config| {
            config.rate_limits = "default=100/3600".parse().unwrap();
        }),
        ..Options::default()
    })
    .await;
    let path = product_path(&uuid::Uuid::now_v7().to_string());
    let response = app.get(&path).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-ratelimit-remaining"], "99");

    // One trip to Redis took a lease of five tokens: the shared bucket shows 95.
    let client = redis::Client::open(app.redis_url().unwrap()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let tokens: String = redis::cmd("HGET")
        .arg("gateway:ratelimit:default:ip:127.0.0.1")
        .arg("tokens")
        .query_async(&mut redis)
        .await
        .unwrap();
    let tokens: f64 = tokens.parse().unwrap();
    assert!((94.9..95.1).contains(&tokens), "{tokens}");

    let mut allowed = 1;
    let mut last_remaining = 99;
    for _ in 0..120 {
        let response = app.get(&path).await;
        if response.status() == 429 {
            continue;
        }
        assert_eq!(response.status(), 404);
        allowed += 1;
        let remaining: u64 = response.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            remaining < last_remaining,
            "{remaining} after {last_remaining}"
        );
        last_remaining = remaining;
    }
    // Every token spent was taken from the shared bucket; leased tokens that expire unused
    // (a slow machine) are the only way to get fewer.
    assert!((90..=100).contains(&allowed), "{allowed} allowed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_spend_the_clients_tokens_too() {
    let app = TestApp::spawn_with(tiny_limits()).await;
    let path = product_path(&uuid::Uuid::now_v7().to_string());
    for remaining in ["2", "1", "0"] {
        let response = app.get_with_token(&path, "not.a.token").await;
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
        expect_error(response, 401, "unauthenticated").await;
    }
    // Guessing on is refused...
    let response = app.get_with_token(&path, "another.guess.here").await;
    assert!(response.headers().contains_key("retry-after"));
    expect_error(response, 429, "rate_limited").await;
    // ...and so is an anonymous request from the same address: it is the same bucket.
    let response = app.get(&path).await;
    expect_error(response, 429, "rate_limited").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_leases_never_allow_more_than_the_shared_bucket() {
    let limits = "default=100/3600";
    let app = TestApp::spawn_with(Options {
        configure: Box::new(move |config| {
            config.rate_limits = limits.parse().unwrap();
        }),
        ..Options::default()
    })
    .await;
    // A second gateway on the same NATS and Redis.
    let config = <gateway::Config as clap::Parser>::try_parse_from([
        "gateway",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--nats-url",
        app.nats_url(),
        "--redis-url",
        app.redis_url().unwrap(),
        "--rate-limits",
        limits,
    ])
    .unwrap();
    let config = gateway::Config {
        nats: app.nats_server().args_for("gateway"),
        ..config
    };
    let second = gateway::Application::build(config).await.unwrap();
    let second_url = format!("http://{}", second.local_addr());
    let second = testkit::AppTask::spawn("second gateway", |signal| second.run_until(signal));

    let path = product_path(&uuid::Uuid::now_v7().to_string());
    let mut allowed = 0;
    for i in 0..150 {
        let response = if i % 2 == 0 {
            app.get(&path).await
        } else {
            app.http
                .get(format!("{second_url}{path}"))
                .send()
                .await
                .unwrap()
        };
        match response.status().as_u16() {
            404 => allowed += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // Each replica holds at most one lease (5 tokens) it may not spend before the end.
    assert!((90..=100).contains(&allowed), "{allowed} allowed");
    second.stop().await;
    app.stop().await;
}
