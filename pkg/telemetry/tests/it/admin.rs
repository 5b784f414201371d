use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use telemetry::admin::{AdminServer, Check, check_fn, nats_check};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An admin server on a free port, stopped (and checked to stop) by [`RunningAdmin::stop`].
struct RunningAdmin {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

impl RunningAdmin {
    async fn start(checks: Vec<Arc<dyn Check>>) -> Self {
        let server = AdminServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), checks)
            .await
            .expect("bind the admin port");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0, "the real port is reported");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop,
            task,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("the admin server answers")
    }

    async fn ready(&self) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.get(telemetry::admin::READY_PATH).await;
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the admin server stops when asked")
            .expect("the server task did not panic")
            .expect("the server stopped cleanly");
    }
}

fn passing(name: &'static str) -> Arc<dyn Check> {
    check_fn(name, || async { Ok(()) })
}

fn failing(name: &'static str, reason: &'static str) -> Arc<dyn Check> {
    check_fn(name, move || async move { Err(reason.to_owned()) })
}

#[tokio::test]
async fn liveness_is_ok_even_when_a_dependency_is_down() {
    let admin = RunningAdmin::start(vec![failing("postgres", "connection refused")]).await;

    let response = admin.get(telemetry::admin::LIVE_PATH).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ok" }));

    admin.stop().await;
}

#[tokio::test]
async fn readiness_is_ok_when_every_check_passes() {
    let admin = RunningAdmin::start(vec![passing("nats"), passing("postgres")]).await;

    let (status, body) = admin.ready().await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({ "status": "ok", "checks": { "nats": "ok", "postgres": "ok" } })
    );

    admin.stop().await;
}

#[tokio::test]
async fn readiness_is_503_and_names_the_failing_check() {
    let admin = RunningAdmin::start(vec![
        passing("nats"),
        failing("postgres", "connection refused"),
    ])
    .await;

    let (status, body) = admin.ready().await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["nats"], "ok");
    assert_eq!(body["checks"]["postgres"], "error: connection refused");

    admin.stop().await;
}

#[tokio::test]
async fn a_check_that_hangs_fails_after_the_timeout_instead_of_hanging_the_probe() {
    let admin = RunningAdmin::start(vec![
        passing("nats"),
        check_fn("redis", std::future::pending::<Result<(), String>>),
    ])
    .await;

    let started = std::time::Instant::now();
    let (status, body) = admin.ready().await;
    let took = started.elapsed();
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["redis"], "error: timed out after 2 s");
    assert!(took >= telemetry::admin::CHECK_TIMEOUT, "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    admin.stop().await;
}

#[tokio::test]
async fn metrics_exposes_counters_in_the_prometheus_text_format() {
    let admin = RunningAdmin::start(vec![]).await;
    metrics::counter!("telemetry_it_orders_placed_total", "channel" => "web").increment(3);

    let response = admin.get(telemetry::admin::METRICS_PATH).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.lines()
            .any(|line| line == "telemetry_it_orders_placed_total{channel=\"web\"} 3"),
        "counter missing from:\n{body}"
    );

    admin.stop().await;
}

#[tokio::test]
async fn latency_histograms_get_buckets_from_half_a_millisecond_to_ten_seconds() {
    let admin = RunningAdmin::start(vec![]).await;
    metrics::histogram!("telemetry_it_request_duration_seconds").record(0.003);

    let body = admin
        .get(telemetry::admin::METRICS_PATH)
        .await
        .text()
        .await
        .unwrap();
    for line in [
        "telemetry_it_request_duration_seconds_bucket{le=\"0.0005\"} 0",
        "telemetry_it_request_duration_seconds_bucket{le=\"0.005\"} 1",
        "telemetry_it_request_duration_seconds_bucket{le=\"10\"} 1",
        "telemetry_it_request_duration_seconds_count 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from:\n{body}"
        );
    }

    admin.stop().await;
}

#[tokio::test]
async fn metrics_can_be_asked_for_many_times() {
    let first = telemetry::metrics();
    let second = telemetry::metrics();
    metrics::counter!("telemetry_it_handles_share_one_recorder_total").increment(1);
    assert!(
        first
            .render()
            .contains("telemetry_it_handles_share_one_recorder_total 1")
    );
    assert!(
        second
            .render()
            .contains("telemetry_it_handles_share_one_recorder_total 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_check_follows_the_connection() {
    let mut nats = testkit::NatsServer::start()
        .await
        .expect("start nats-server");
    let client = nats.connect().await;
    let check = nats_check(client);
    assert_eq!(check.name(), "nats");
    assert_eq!(check.check().await, Ok(()));

    nats.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match check.check().await {
            Err(reason) => {
                assert!(
                    reason.contains("Disconnected") || reason.contains("Pending"),
                    "{reason}"
                );
                break;
            }
            Ok(()) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(()) => panic!("the check still passes 10 s after NATS stopped"),
        }
    }
}

/// The images' health check binary: 0 for a ready service, 1 for one that is not, or for
/// nothing listening.
#[tokio::test]
async fn the_healthcheck_binary_says_whether_the_service_is_ready() {
    let run = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_healthcheck"))
            .arg(url)
            .status()
            .await
            .expect("running healthcheck")
            .success()
    };
    let ready = RunningAdmin::start(vec![passing("postgres")]).await;
    let unready = RunningAdmin::start(vec![failing("postgres", "connection refused")]).await;
    let path = telemetry::admin::READY_PATH;
    assert!(run(format!("http://{}{path}", ready.addr)).await);
    assert!(!run(format!("http://{}{path}", unready.addr)).await);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap();
    drop(closed);
    assert!(!run(format!("http://{nobody}{path}")).await);
    ready.stop().await;
    unready.stop().await;
}

/// An optional dependency (a cache) that fails leaves the service ready but says so; a
/// required one still makes it unready.
#[tokio::test]
async fn an_optional_dependency_down_is_degraded_not_unavailable() {
    let cache = telemetry::admin::optional(failing("redis", "connection refused"));
    let admin = RunningAdmin::start(vec![passing("postgres"), cache.clone()]).await;
    let (status, body) = admin.ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"], "error: connection refused");
    admin.stop().await;

    let admin = RunningAdmin::start(vec![failing("postgres", "refused"), cache]).await;
    let (status, body) = admin.ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    admin.stop().await;
}
