//! An application (a service, the gateway) running on a task until the test tells it to stop.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`AppTask::stop`] waits for the application to shut down.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// An application's `run_until(signal)` on a task of its own.
///
/// [`AppTask::stop`] fires the signal and checks the application shut down cleanly. Dropping a
/// `AppTask` without stopping it (a test that panicked) fires the signal too, so the application
/// winds down in the background instead of outliving its test.
pub struct AppTask {
    name: &'static str,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl AppTask {
    /// Spawns `run(signal)`, where `signal` completes when the application is to stop:
    /// `AppTask::spawn("product", |signal| application.run_until(signal))`. `name` is the
    /// application's name in failure messages.
    pub fn spawn<F>(name: &'static str, run: impl FnOnce(StopSignal) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (shutdown, stop) = oneshot::channel();
        Self {
            name,
            shutdown,
            task: tokio::spawn(run(StopSignal(stop))),
        }
    }

    /// Stops the application the way SIGTERM does and panics, naming it, unless it shut down
    /// cleanly within [`STOP_TIMEOUT`].
    pub async fn stop(self) {
        let Self {
            name,
            shutdown,
            task,
        } = self;
        let _ = shutdown.send(());
        tokio::time::timeout(STOP_TIMEOUT, task)
            .await
            .unwrap_or_else(|_| panic!("{name} did not stop within {STOP_TIMEOUT:?}"))
            .unwrap_or_else(|error| panic!("{name} panicked: {error}"))
            .unwrap_or_else(|error| panic!("{name} shut down with an error: {error:#}"));
    }
}

/// Completes when the application it was given to is to stop: when [`AppTask::stop`] is called
/// or the [`AppTask`] is dropped.
pub struct StopSignal(oneshot::Receiver<()>);

impl Future for StopSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender means the same as a sent stop.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_fires_the_signal_and_waits_for_a_clean_end() {
        let running = AppTask::spawn("app", |signal| async move {
            signal.await;
            Ok(())
        });
        running.stop().await;
    }

    #[tokio::test]
    async fn dropping_it_fires_the_signal() {
        let (stopped, was_stopped) = oneshot::channel();
        let running = AppTask::spawn("app", |signal| async move {
            signal.await;
            let _ = stopped.send(());
            Ok(())
        });
        drop(running);
        tokio::time::timeout(Duration::from_secs(5), was_stopped)
            .await
            .expect("the application was signalled")
            .expect("the application saw its signal");
    }

    #[tokio::test]
    #[should_panic(expected = "app shut down with an error: it broke")]
    async fn stop_names_the_application_that_failed() {
        let running = AppTask::spawn("app", |signal| async move {
            signal.await;
            anyhow::bail!("it broke")
        });
        running.stop().await;
    }

    #[tokio::test]
    #[should_panic(expected = "app panicked")]
    async fn stop_reports_a_panic() {
        let running = AppTask::spawn("app", |signal| async move {
            signal.await;
            panic!("boom");
        });
        running.stop().await;
    }
}
