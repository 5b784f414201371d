//! A started service, until it is told to stop.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A service that serves: registered on NATS, admin port bound, consumers and background
/// tasks running. [`Serving::run_until`] stops it in order.
#[must_use = "dropping Serving leaves the service serving without an orderly shutdown"]
pub struct Serving {
    pub(crate) name: &'static str,
    pub(crate) nats: async_nats::Client,
    pub(crate) service: rpc::RunningService,
    pub(crate) admin: JoinHandle<anyhow::Result<()>>,
    pub(crate) admin_addr: SocketAddr,
    /// Consumers and background tasks, by name.
    pub(crate) tasks: Vec<(String, JoinHandle<()>)>,
    pub(crate) on_shutdown: Vec<BoxFuture<'static, ()>>,
    pub(crate) stop: CancellationToken,
}

impl Serving {
    /// The service's name: `product`.
    pub fn name(&self) -> &'static str {
        self.name
    }

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
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, task = %name, "a task ended abnormally");
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
