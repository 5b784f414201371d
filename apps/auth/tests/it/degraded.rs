//! Redis holds sessions and sign-in counters only: without it the service starts, says it is
//! degraded, serves keys and registrations, and answers sign-in with `unavailable`, until
//! Redis is back, without a restart.

use std::time::{Duration, Instant};

use api::auth::GetJwksRequest;
use testkit::RedisServer;

use crate::helpers::{PASSWORD, TestApp, anonymous};

async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let url = format!(
        "http://{}{}",
        app.admin_addr(),
        telemetry::admin::READY_PATH
    );
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn without_redis_sign_in_is_unavailable_and_the_rest_serves() {
    let mut redis = RedisServer::start().await.expect("starting redis-server");
    redis.stop();
    let redis_url = redis.url().to_owned();
    let app = TestApp::spawn_with(|config| config.redis.redis_url = redis_url).await;

    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    let keys = app.client.get_jwks(&anonymous(), &GetJwksRequest {}).await;
    assert!(!keys.unwrap().keys.is_empty());
    app.register("someone@example.com", PASSWORD).await.unwrap();
    let refused = app
        .login("someone@example.com", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), rpc::ErrorCode::Unavailable, "{refused:?}");

    redis.restart().await.expect("restarting redis-server");
    let started = Instant::now();
    loop {
        if app.login("someone@example.com", PASSWORD).await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sign-in never came back with Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = readiness(&app).await;
    assert_eq!((status, &body["status"]), (200, &"ok".into()), "{body}");
    app.stop().await;
}
