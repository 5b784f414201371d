//! Redis at start-up: a service starts whether or not Redis is there. One that needs Redis to
//! be correct is not ready until Redis answers; one that only caches stays ready.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser as _;
use testkit::{NatsServer, RedisServer};

static CACHING: rpc::ServiceDescriptor = rpc::ServiceDescriptor {
    name: "caching",
    version: "0.1.0",
    description: "A service with Redis and nothing to serve.",
};

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    service: config::ServiceArgs,
    #[command(flatten)]
    redis: config::RedisArgs,
}

/// Arguments naming `redis_url`, with a free admin port.
fn args(redis_url: &str) -> Args {
    Args::try_parse_from([
        "caching",
        "--admin-addr",
        "127.0.0.1:0",
        "--redis-url",
        redis_url,
    ])
    .unwrap()
}

/// A Redis server that was started, to learn a port, and stopped again.
async fn stopped_redis() -> RedisServer {
    let mut server = RedisServer::start().await.expect("starting redis-server");
    server.stop();
    server
}

async fn readiness(admin: SocketAddr) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("http://{admin}/health/ready"))
        .await
        .expect("asking for readiness");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn eventually_ready(admin: SocketAddr) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (status, body) = readiness(admin).await;
        if status == 200 {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(serving: host::Serving) {
    serving.run_until(async {}).await.expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_needs_redis_starts_without_it_and_is_unready_until_it_answers() {
    telemetry::init_for_tests();
    let nats_server = NatsServer::start().await.expect("starting nats-server");
    let mut redis_server = stopped_redis().await;
    let args = args(redis_server.url());

    let mut host =
        host::Host::with_connection(&CACHING, nats_server.connect().await, &args.service);
    host.redis(&args.redis)
        .await
        .expect("Redis being down does not fail the start");
    let serving = host.serve(Vec::new()).await.expect("serving");
    let admin = serving.admin_addr();

    let (status, body) = readiness(admin).await;
    assert_eq!(status, 503, "{body}");
    let redis = body["checks"]["redis"].as_str().unwrap_or_default();
    assert!(redis.starts_with("error"), "{body}");

    redis_server.restart().await.unwrap();
    let body = eventually_ready(admin).await;
    assert_eq!(body["checks"]["redis"], "ok", "{body}");
    stop(serving).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_only_caches_in_redis_stays_ready_and_reconnects() {
    telemetry::init_for_tests();
    let nats_server = NatsServer::start().await.expect("starting nats-server");
    let mut redis_server = stopped_redis().await;
    let args = args(redis_server.url());

    let mut host =
        host::Host::with_connection(&CACHING, nats_server.connect().await, &args.service);
    let redis = host
        .redis_optional(&args.redis)
        .expect("Redis being down does not fail the start");
    let serving = host.serve(Vec::new()).await.expect("serving");

    let (status, body) = readiness(serving.admin_addr()).await;
    assert_eq!(
        status, 200,
        "a cache outage leaves the service ready: {body}"
    );
    assert_ne!(
        body["checks"]["redis"], "ok",
        "nothing claims Redis is fine: {body}"
    );

    redis_server.restart().await.unwrap();
    let started = Instant::now();
    loop {
        let mut conn = redis.clone();
        let pong = ::redis::cmd("PING").query_async::<String>(&mut conn).await;
        if pong.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the connection never came back: {pong:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(serving).await;
}

#[tokio::test]
async fn a_redis_url_that_cannot_work_fails_the_start() {
    telemetry::init_for_tests();
    let nats_server = NatsServer::start().await.expect("starting nats-server");
    let mut args = args("redis://127.0.0.1:1");
    args.redis.redis_url = "http://not-redis".to_owned();

    let mut host =
        host::Host::with_connection(&CACHING, nats_server.connect().await, &args.service);
    assert!(host.redis(&args.redis).await.is_err());
    assert!(host.redis_optional(&args.redis).is_err());
}
