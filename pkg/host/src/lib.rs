//! The lifecycle every service shares, written once: a [`Host`] owns the admin port (health
//! and metrics), the rpc service on NATS, the service's background tasks, and the order in
//! which all of them stop.
//!
//! A service builds its own state (pools, caches, handlers), then hands the host what must run
//! and what must be released:
//!
//! ```no_run
//! # async fn example(nats: async_nats::Client) -> anyhow::Result<()> {
//! let running = host::Host::new("example", nats)
//!     .check(telemetry::admin::check_fn("cache", || async { Ok(()) }))
//!     .background("sweeper", |cancel| {
//!         tokio::spawn(async move { cancel.cancelled().await })
//!     })
//!     .on_shutdown(async { /* pool.close().await */ })
//!     .start(rpc::Service::new("example", "0.1.0"), "127.0.0.1:0".parse()?)
//!     .await?;
//! running.run_until(telemetry::shutdown_signal()).await
//! # }
//! ```
//!
//! Shutdown runs in one order, always: stop taking requests and answer those in flight, cancel
//! the background tasks and wait for them, stop the admin server, flush NATS (the last replies
//! may still sit in the client's buffer), then run the `on_shutdown` hooks in the order they
//! were added (closing pools comes last, after nothing can use them any more).
//!
//! It must never know about a particular service, a store, or a contract: it takes checks,
//! tasks and hooks as values. It never reads configuration or the environment either; the
//! service passes the addresses it was configured with.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::future::BoxFuture;
use telemetry::admin::{AdminServer, Check};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The request limits a service was configured with: `--max-in-flight` per endpoint and
/// `--request-timeout-ms` for requests that come without a deadline.
pub fn limits(args: &config::ServiceArgs) -> rpc::Limits {
    rpc::Limits {
        max_in_flight_per_endpoint: args.max_in_flight,
        default_timeout: args.request_timeout(),
        ..rpc::Limits::default()
    }
}

type Starter = Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>;

/// What a service runs, collected before it starts. See the crate docs for the order of
/// start-up and shutdown.
#[must_use = "a Host does nothing until `start` is called"]
pub struct Host {
    name: String,
    nats: async_nats::Client,
    checks: Vec<Arc<dyn Check>>,
    background: Vec<(String, Starter)>,
    on_shutdown: Vec<BoxFuture<'static, ()>>,
}

impl Host {
    /// A host for the service `name` (used in logs) on the NATS connection `nats`, which
    /// serves the rpc endpoints and is the readiness check "nats".
    ///
    /// It installs the Prometheus recorder, so create it before the service records metrics.
    pub fn new(name: impl Into<String>, nats: async_nats::Client) -> Self {
        telemetry::metrics();
        Self {
            name: name.into(),
            checks: vec![telemetry::admin::nats_check(nats.clone())],
            nats,
            background: Vec::new(),
            on_shutdown: Vec::new(),
        }
    }

    /// Adds a readiness check to `/health/ready` (PostgreSQL, Redis ...).
    pub fn check(mut self, check: Arc<dyn Check>) -> Self {
        self.checks.push(check);
        self
    }

    /// A task that runs while the service serves. `start` calls `spawn` once the rpc service
    /// is registered; it must start the task (`tokio::spawn`) and return its handle. The task
    /// must end soon after its token is cancelled, which happens once requests are drained.
    pub fn background(
        mut self,
        name: impl Into<String>,
        spawn: impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static,
    ) -> Self {
        self.background.push((name.into(), Box::new(spawn)));
        self
    }

    /// Work for the very end of shutdown, after requests, background tasks and the admin
    /// server have stopped and NATS is flushed: closing a pool, flushing a buffer.
    pub fn on_shutdown(mut self, hook: impl Future<Output = ()> + Send + 'static) -> Self {
        self.on_shutdown.push(Box::pin(hook));
        self
    }

    /// Binds the admin port on `admin_addr` (port 0 picks a free one), registers `service` on
    /// NATS and starts the background tasks. Requests are served once this returns.
    pub async fn start(
        self,
        service: rpc::Service,
        admin_addr: SocketAddr,
    ) -> anyhow::Result<Running> {
        let admin = AdminServer::bind(admin_addr, self.checks).await?;
        let admin_addr = admin.local_addr();
        let service = service
            .start(self.nats.clone())
            .await
            .with_context(|| format!("starting the {} service", self.name))?;
        let stop = CancellationToken::new();
        let admin = tokio::spawn(admin.run_until(stop.clone().cancelled_owned()));
        let background = self
            .background
            .into_iter()
            .map(|(name, spawn)| (name, spawn(stop.child_token())))
            .collect();
        Ok(Running {
            name: self.name,
            nats: self.nats,
            service,
            admin,
            admin_addr,
            background,
            on_shutdown: self.on_shutdown,
            stop,
        })
    }
}

/// A started service: registered on NATS, admin port bound, background tasks running.
#[must_use = "dropping Running leaves the service serving without an orderly shutdown"]
pub struct Running {
    name: String,
    nats: async_nats::Client,
    service: rpc::RunningService,
    admin: JoinHandle<anyhow::Result<()>>,
    admin_addr: SocketAddr,
    background: Vec<(String, JoinHandle<()>)>,
    on_shutdown: Vec<BoxFuture<'static, ()>>,
    stop: CancellationToken,
}

impl Running {
    /// Where the admin server (health and metrics) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` completes, then stops in the order the crate docs give. A task
    /// that panicked is logged, not returned: the requests were answered, and the remaining
    /// steps must still run.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let served = self.service.run_until(shutdown).await;
        self.stop.cancel();
        for (name, task) in self.background {
            if let Err(error) = task.await {
                tracing::warn!(%error, task = %name, "a background task ended abnormally");
            }
        }
        let admin = self
            .admin
            .await
            .context("the admin server ended abnormally")
            .and_then(|result| result);
        // The last replies may still sit in the client's write buffer.
        if let Err(error) = self.nats.flush().await {
            tracing::warn!(%error, "flushing NATS at shutdown");
        }
        for hook in self.on_shutdown {
            hook.await;
        }
        served?;
        admin?;
        tracing::info!(service = %self.name, "stopped");
        Ok(())
    }
}
