use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use db::cache::{Cache, CacheConfig};
use serde::{Deserialize, Serialize};

use crate::counter_value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Widget {
    widget_id: u64,
    name: String,
}

fn sprocket() -> Widget {
    Widget {
        widget_id: 7,
        name: "sprocket".to_owned(),
    }
}

/// A cache on a private Redis, a namespace of its own, and a loader that counts its calls.
struct Fixture {
    server: Option<testkit::RedisServer>,
    redis: ConnectionManager,
    cache: Cache,
    namespace: String,
    loads: Arc<AtomicUsize>,
}

impl Fixture {
    async fn start(redis_ttl: Duration, local_ttl: Option<Duration>) -> Self {
        // The recorder must be installed before the cache counts anything.
        telemetry::metrics();
        telemetry::init_for_tests();
        let server = testkit::RedisServer::start()
            .await
            .expect("start redis-server");
        let redis = db::redis::connect(server.url())
            .await
            .expect("connect to Redis");
        let namespace = format!("widget:test-{}", uuid::Uuid::new_v4().simple());
        let cache = Cache::new(
            redis.clone(),
            CacheConfig {
                namespace: namespace.clone(),
                redis_ttl,
                local_ttl,
            },
        );
        Self {
            server: Some(server),
            redis,
            cache,
            namespace,
            loads: Arc::default(),
        }
    }

    /// Reads `key` through the cache with a loader that finds `found`.
    async fn read(&self, key: &str, found: Option<Widget>) -> Option<Widget> {
        let loads = self.loads.clone();
        self.cache
            .get_or_load(key, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(found)
            })
            .await
            .unwrap()
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    async fn raw_get(&self, key: &str) -> Option<String> {
        let mut redis = self.redis.clone();
        ::redis::cmd("GET")
            .arg(format!("{}:{key}", self.namespace))
            .query_async(&mut redis)
            .await
            .unwrap()
    }

    async fn raw_del(&self, key: &str) {
        let mut redis = self.redis.clone();
        let deleted: i64 = ::redis::cmd("DEL")
            .arg(format!("{}:{key}", self.namespace))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(deleted, 1, "the key was in Redis");
    }

    fn requests(&self, tier: &str, result: &str) -> u64 {
        counter_value(
            "cache_requests_total",
            &[
                ("namespace", &self.namespace),
                ("tier", tier),
                ("result", result),
            ],
        )
    }
}

#[tokio::test]
async fn the_first_read_loads_and_the_second_is_served_from_redis() {
    let fixture = Fixture::start(Duration::from_secs(60), None).await;

    assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
    assert_eq!(fixture.loads(), 1);
    assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
    assert_eq!(
        fixture.loads(),
        1,
        "the second read did not call the loader"
    );

    let stored = fixture
        .raw_get("7")
        .await
        .expect("the value is in Redis under <namespace>:<key>");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({ "widget_id": 7, "name": "sprocket" })
    );

    assert_eq!(fixture.requests("redis", "miss"), 1);
    assert_eq!(fixture.requests("redis", "hit"), 1);
    assert_eq!(
        fixture.requests("local", "hit") + fixture.requests("local", "miss"),
        0
    );
}

#[tokio::test]
async fn invalidate_makes_the_next_read_load_again() {
    let fixture = Fixture::start(Duration::from_secs(60), Some(Duration::from_secs(60))).await;
    fixture.read("7", Some(sprocket())).await;
    assert_eq!(fixture.loads(), 1);

    fixture.cache.invalidate("7").await;
    assert_eq!(fixture.raw_get("7").await, None, "gone from Redis");

    let renamed = Widget {
        name: "renamed sprocket".to_owned(),
        ..sprocket()
    };
    assert_eq!(
        fixture.read("7", Some(renamed.clone())).await,
        Some(renamed)
    );
    assert_eq!(fixture.loads(), 2, "gone from the local tier too");
}

#[tokio::test]
async fn values_expire_from_redis_after_the_ttl() {
    let fixture = Fixture::start(Duration::from_secs(1), None).await;
    fixture.read("7", Some(sprocket())).await;
    let mut redis = fixture.redis.clone();
    let ttl_ms: i64 = ::redis::cmd("PTTL")
        .arg(format!("{}:7", fixture.namespace))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=1000).contains(&ttl_ms), "PTTL is {ttl_ms}");

    fixture.read("7", Some(sprocket())).await;
    assert_eq!(fixture.loads(), 1);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(fixture.raw_get("7").await, None, "expired in Redis");
    fixture.read("7", Some(sprocket())).await;
    assert_eq!(fixture.loads(), 2);
}

#[tokio::test]
async fn a_value_that_is_not_found_is_not_cached() {
    let fixture = Fixture::start(Duration::from_secs(60), Some(Duration::from_secs(60))).await;

    assert_eq!(fixture.read("404", None).await, None);
    assert_eq!(fixture.read("404", None).await, None);
    assert_eq!(fixture.loads(), 2, "every read asked the loader");
    assert_eq!(fixture.raw_get("404").await, None);

    // Once it exists, it is cached as usual.
    assert_eq!(
        fixture.read("404", Some(sprocket())).await,
        Some(sprocket())
    );
    assert_eq!(fixture.read("404", None).await, Some(sprocket()));
    assert_eq!(fixture.loads(), 3);
}

#[tokio::test]
async fn the_local_tier_serves_until_its_ttl_even_when_redis_lost_the_key() {
    let local_ttl = Duration::from_millis(500);
    let fixture = Fixture::start(Duration::from_secs(60), Some(local_ttl)).await;
    fixture.read("7", Some(sprocket())).await;
    fixture.raw_del("7").await;

    assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
    assert_eq!(fixture.loads(), 1, "served from memory");
    assert_eq!(fixture.requests("local", "hit"), 1);

    tokio::time::sleep(local_ttl + Duration::from_millis(100)).await;
    assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
    assert_eq!(
        fixture.loads(),
        2,
        "the local copy expired and Redis had nothing"
    );
}

#[tokio::test]
async fn the_local_tier_is_filled_from_redis_hits() {
    let fixture = Fixture::start(Duration::from_secs(60), Some(Duration::from_secs(60))).await;
    // Another replica cached the value in Redis; this one has never seen it.
    let other_replica = Cache::new(
        fixture.redis.clone(),
        CacheConfig {
            namespace: fixture.namespace.clone(),
            redis_ttl: Duration::from_secs(60),
            local_ttl: None,
        },
    );
    other_replica
        .get_or_load("7", || async { Ok::<_, Infallible>(Some(sprocket())) })
        .await
        .unwrap();

    assert_eq!(
        fixture.read("7", None).await,
        Some(sprocket()),
        "a Redis hit"
    );
    fixture.raw_del("7").await;
    assert_eq!(
        fixture.read("7", None).await,
        Some(sprocket()),
        "now a local hit"
    );
    assert_eq!(fixture.loads(), 0);
}

#[tokio::test]
async fn loader_errors_are_returned_and_nothing_is_cached() {
    let fixture = Fixture::start(Duration::from_secs(60), Some(Duration::from_secs(60))).await;
    let outcome = fixture
        .cache
        .get_or_load::<Widget, _, _, _>("7", || async { Err("database unavailable") })
        .await;
    assert_eq!(outcome, Err("database unavailable"));
    assert_eq!(fixture.raw_get("7").await, None);
    assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
    assert_eq!(fixture.loads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_still_succeed_through_the_loader_when_redis_is_down() {
    let mut fixture = Fixture::start(Duration::from_secs(60), None).await;
    fixture.read("7", Some(sprocket())).await;
    assert_eq!(fixture.loads(), 1);

    drop(fixture.server.take());
    let started = Instant::now();
    for expected_loads in 2..=6 {
        assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
        assert_eq!(fixture.loads(), expected_loads);
    }
    fixture.cache.invalidate("7").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "an outage costs little per read; five reads took {:?}",
        started.elapsed()
    );
    assert!(
        counter_value("cache_errors_total", &[("namespace", &fixture.namespace)]) >= 1,
        "the failure is counted"
    );
}

#[tokio::test]
async fn a_cached_value_of_an_older_shape_is_replaced_by_a_fresh_load() {
    let fixture = Fixture::start(Duration::from_secs(60), None).await;
    let mut redis = fixture.redis.clone();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{}:7", fixture.namespace))
        .arg(r#"{"id":7}"#)
        .query_async(&mut redis)
        .await
        .unwrap();

    assert_eq!(fixture.read("7", Some(sprocket())).await, Some(sprocket()));
    assert_eq!(fixture.loads(), 1);
    assert_eq!(
        fixture.read("7", None).await,
        Some(sprocket()),
        "the new shape was stored"
    );
}

/// A TCP proxy in front of a Redis server that a test can cut (every connection dropped, new
/// ones refused at once) and restore, while the server keeps its data: a network partition.
struct CuttableProxy {
    port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    _accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(target_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let accept = {
            let open = open.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection closed
                    }
                    connections.lock().unwrap().spawn(async move {
                        if let Ok(mut outbound) =
                            tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Self {
            port,
            open,
            connections,
            _accept: accept,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.connections.lock().unwrap().abort_all();
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_redis_was_cut_off_is_not_served_stale_when_it_is_back() {
    let fixture = Fixture::start(Duration::from_secs(60), None).await;
    let server_port = fixture.server.as_ref().unwrap().port();
    let proxy = CuttableProxy::start(server_port).await;
    // This replica reaches Redis through the proxy; the fixture's own connection does not.
    let through_proxy = db::redis::connect(&proxy.url()).await.unwrap();
    let cache = Cache::new(
        through_proxy,
        CacheConfig {
            namespace: fixture.namespace.clone(),
            redis_ttl: Duration::from_secs(60),
            local_ttl: None,
        },
    );
    let load = |widget: Widget| move || async move { Ok::<_, Infallible>(Some(widget)) };
    cache.get_or_load("7", load(sprocket())).await.unwrap();
    assert!(fixture.raw_get("7").await.is_some(), "cached in Redis");

    proxy.cut();
    let renamed = Widget {
        name: "renamed sprocket".to_owned(),
        ..sprocket()
    };
    // The write happens, and its invalidation cannot reach Redis, which keeps the old value.
    cache.invalidate("7").await;
    assert!(
        fixture.raw_get("7").await.is_some(),
        "Redis still holds the old value"
    );
    proxy.restore();
    // Past the pause after a failure, reads use Redis again.
    tokio::time::sleep(db::cache::REDIS_PAUSE_AFTER_ERROR + Duration::from_millis(200)).await;

    let read = cache.get_or_load("7", load(renamed.clone())).await.unwrap();
    assert_eq!(
        read,
        Some(renamed),
        "the change, not the stale cached value"
    );
    let stored: Widget = serde_json::from_str(&fixture.raw_get("7").await.unwrap()).unwrap();
    assert_eq!(
        stored.name, "renamed sprocket",
        "Redis holds the change now"
    );
}
