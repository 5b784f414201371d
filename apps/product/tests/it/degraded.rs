//! Redis only caches products: without it the service starts, stays ready and serves from
//! PostgreSQL, and once Redis is back reads are cached again, without a restart.

use std::time::{Duration, Instant};

use api::product::GetProductRequest;
use testkit::RedisServer;

use crate::helpers::{TestApp, anonymous, product};
use crate::transport::admin_get;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_service_serves_from_postgres_and_caches_again_once_redis_is_back() {
    let mut redis = RedisServer::start().await.expect("starting redis-server");
    redis.stop();
    let redis_url = redis.url().to_owned();
    let app = TestApp::spawn_with(|config| {
        config.redis.redis_url = redis_url;
        // No copy in this process's memory: what Redis holds is what a read sees.
        config.product_cache_local_ttl_ms = 0;
    })
    .await;

    let created = app.create_product(product("Kettle")).await;
    let request = GetProductRequest {
        id: created.id.clone(),
    };
    let read = app.client.get_product(&anonymous(), &request).await;
    assert_eq!(read.expect("served from PostgreSQL"), created);
    let (status, body) = admin_get(&app, "/health/ready").await;
    assert_eq!(
        status, 200,
        "a cache outage leaves the service ready: {body}"
    );
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "degraded", "{body}");
    assert!(
        ready["checks"]["redis"]
            .as_str()
            .is_some_and(|r| r.starts_with("error")),
        "the readiness answer says what is down: {body}"
    );

    redis.restart().await.expect("restarting redis-server");
    // Ready and no longer degraded once Redis answers again.
    let started = Instant::now();
    loop {
        let (status, body) = admin_get(&app, "/health/ready").await;
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        if status == 200 && ready["status"] == "ok" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still not ok with Redis back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = db::redis::connect(redis.url()).await.unwrap();
    let key = format!("{}:{}", product_service::CACHE_NAMESPACE, created.id);
    let started = Instant::now();
    let cached = loop {
        app.client
            .get_product(&anonymous(), &request)
            .await
            .unwrap();
        let cached: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Some(cached) = cached {
            break cached;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "reads never cached the product once Redis was back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Reads are served from Redis now: a value changed there, and only there, is what a
    // read returns.
    let mut value: serde_json::Value = serde_json::from_str(&cached).unwrap();
    value["name"] = "Kettle (from Redis)".into();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(value.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    let read = app
        .client
        .get_product(&anonymous(), &request)
        .await
        .unwrap();
    assert_eq!(read.name, "Kettle (from Redis)");
    app.stop().await;
}
