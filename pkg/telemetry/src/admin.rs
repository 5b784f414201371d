//! The admin HTTP port of a service: liveness, readiness and the Prometheus scrape.
//!
//! Orchestrators probe `/health/live` (is the process running) and `/health/ready` (can it
//! serve: every dependency check passes); Prometheus scrapes `/metrics`. Nothing else belongs
//! here: requests from clients of the platform go through the gateway.
//!
//! Readiness runs the checks the server was bound with and those parts of the process
//! registered for themselves with [`register_check`] (the rpc runtime's "are my endpoint
//! loops still running").

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

/// Liveness: answers 200 whenever the process can serve HTTP at all.
pub const LIVE_PATH: &str = "/health/live";
/// Readiness: 200 when every check passes, 503 naming the failing checks otherwise.
pub const READY_PATH: &str = "/health/ready";
/// The Prometheus text exposition of the process' metrics.
pub const METRICS_PATH: &str = "/metrics";

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// One dependency a service needs to be ready (NATS, PostgreSQL, Redis ...).
pub trait Check: Send + Sync + 'static {
    /// A short stable name, the key of this check in the readiness answer.
    fn name(&self) -> &str;
    /// `Ok` when the dependency is usable; `Err` says why not (it is shown on the admin port,
    /// so it must not contain secrets).
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Whether the service still serves without this dependency (a cache): when it fails,
    /// readiness stays 200 and says `degraded`.
    fn optional(&self) -> bool {
        false
    }
}

/// `check` as an optional dependency: its failure makes readiness `degraded`, not
/// `unavailable`.
pub fn optional(check: Arc<dyn Check>) -> Arc<dyn Check> {
    Arc::new(Optional(check))
}

struct Optional(Arc<dyn Check>);

impl Check for Optional {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        self.0.check()
    }

    fn optional(&self) -> bool {
        true
    }
}

struct FnCheck<F> {
    name: String,
    check: F,
}

impl<F, Fut> Check for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin((self.check)())
    }
}

/// A check from a name and an async closure.
pub fn check_fn<F, Fut>(name: impl Into<String>, check: F) -> Arc<dyn Check>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(FnCheck {
        name: name.into(),
        check,
    })
}

/// Ready while the NATS client is connected. The client reconnects by itself; while it is
/// disconnected the service cannot receive requests, so it should not be sent traffic.
pub fn nats_check(client: async_nats::Client) -> Arc<dyn Check> {
    check_fn("nats", move || {
        let state = client.connection_state();
        async move {
            match state {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("connection state is {other:?}")),
            }
        }
    })
}

/// Checks that parts of the process registered for themselves ([`register_check`]), by
/// registration id.
static PROCESS_CHECKS: Mutex<Vec<(u64, Arc<dyn Check>)>> = Mutex::new(Vec::new());
static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(0);

/// Adds `check` to the readiness of every admin server of this process, until the returned
/// [`Registration`] is dropped.
///
/// For checks that belong to a part of the process rather than to its wiring: the rpc
/// runtime registers one per running service, failing when one of its endpoint loops has
/// ended while the service was still meant to serve. The one who binds the admin server
/// need not know about them, so the part cannot be forgotten.
pub fn register_check(check: Arc<dyn Check>) -> Registration {
    let id = NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed);
    PROCESS_CHECKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, check));
    Registration { id }
}

/// Keeps a check of [`register_check`] in the readiness answers; dropping it removes the check.
#[must_use = "dropping the registration removes the check at once"]
#[derive(Debug)]
pub struct Registration {
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        PROCESS_CHECKS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.id);
    }
}

/// The checks registered with [`register_check`] that are still registered.
fn process_checks() -> Vec<Arc<dyn Check>> {
    PROCESS_CHECKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(_, check)| check.clone())
        .collect()
}

#[derive(Clone)]
struct AdminState {
    checks: Arc<[Arc<dyn Check>]>,
    metrics: PrometheusHandle,
    last: LastReadiness,
}

/// How often a serving admin server evaluates readiness on its own, so [`LastReadiness`] is
/// never older than this (plus the checks' time).
pub const READINESS_REFRESH: Duration = Duration::from_secs(5);

/// The readiness an admin server last evaluated, for those who report it elsewhere (the rpc
/// runtime puts it in its NATS micro stats, so the gateway's service list shows it): `ok`,
/// `degraded` or `unavailable`, or `None` before the first evaluation.
#[derive(Clone, Debug, Default)]
pub struct LastReadiness(Arc<Mutex<Option<&'static str>>>);

impl LastReadiness {
    pub fn get(&self) -> Option<&'static str> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, label: &'static str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(label);
    }
}

/// The admin HTTP server, bound but not yet serving.
pub struct AdminServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    router: Router,
    state: AdminState,
}

impl AdminServer {
    /// Binds `addr` now (port 0 picks a free port, see [`AdminServer::local_addr`]) and
    /// installs the Prometheus recorder if it is not installed yet.
    pub async fn bind(addr: SocketAddr, checks: Vec<Arc<dyn Check>>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the admin port on {addr}"))?;
        let local_addr = listener
            .local_addr()
            .context("reading the admin port's bound address")?;
        let state = AdminState {
            checks: checks.into(),
            metrics: crate::metrics(),
            last: LastReadiness::default(),
        };
        let router = Router::new()
            .route(LIVE_PATH, get(live))
            .route(READY_PATH, get(ready))
            .route(METRICS_PATH, get(render_metrics))
            .with_state(state.clone());
        Ok(Self {
            listener,
            local_addr,
            router,
            state,
        })
    }

    /// The readiness this server last evaluated (at each probe, and every
    /// [`READINESS_REFRESH`] while it serves).
    pub fn last_readiness(&self) -> LastReadiness {
        self.state.last.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr, "admin server listening");
        let state = self.state.clone();
        let refresher = tokio::spawn(async move {
            loop {
                evaluate(&state, false).await;
                tokio::time::sleep(READINESS_REFRESH).await;
            }
        });
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving the admin port");
        refresher.abort();
        served
    }
}

async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    let (status, label, checks) = evaluate(&state, true).await;
    (status, Json(json!({ "status": label, "checks": checks })))
}

/// Runs every check and records the outcome as the last readiness; `log`s each failure (a
/// probe's evaluation does, the periodic one does not repeat it).
async fn evaluate(
    state: &AdminState,
    log: bool,
) -> (StatusCode, &'static str, BTreeMap<String, String>) {
    let registered = process_checks();
    let checks = state.checks.iter().chain(&registered);
    let results = futures::future::join_all(checks.map(|check| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {} s", CHECK_TIMEOUT.as_secs())),
        };
        (check.name().to_owned(), check.optional(), outcome)
    }))
    .await;

    let (mut all_ok, mut required_ok) = (true, true);
    let mut checks = BTreeMap::new();
    for (name, optional, outcome) in results {
        let shown = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(reason) => {
                all_ok = false;
                required_ok &= optional;
                if log {
                    tracing::warn!(check = %name, %reason, "readiness check failed");
                }
                format!("error: {reason}")
            }
        };
        checks.insert(name, shown);
    }
    let (status, label) = match (required_ok, all_ok) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    state.last.set(label);
    (status, label, checks)
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only this test in the unit-test binary binds an admin server, so the registered checks
    /// it sees are its own.
    #[tokio::test]
    async fn a_registered_check_counts_until_its_registration_is_dropped() {
        let server = AdminServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), Vec::new())
            .await
            .unwrap();
        let url = format!("http://{}{READY_PATH}", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        let ready = || async {
            let response = reqwest::get(&url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        };

        let registration = register_check(check_fn("loops", || async {
            Err("product.get_product ended".to_owned())
        }));
        let (status, body) = ready().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["checks"]["loops"], "error: product.get_product ended");

        drop(registration);
        let (status, body) = ready().await;
        assert_eq!(status, 200, "{body}");
        assert!(body["checks"].get("loops").is_none(), "{body}");

        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}
