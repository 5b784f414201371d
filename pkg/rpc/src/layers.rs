//! The cross-cutting concerns around every handler, as tower layers.
//!
//! Order (outermost first): trace, metrics, concurrency limit, deadline, catch-panic. Tracing
//! and metrics therefore see the final outcome of every request, timeouts and panics included.

use std::panic::AssertUnwindSafe;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::{Error, ErrorCode};
use crate::server::{Reply, Request};

/// Outcome label of a request: `ok` or the error code.
fn outcome(result: &Result<Reply, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.code().as_str(),
    }
}

/// A span per request, parented to the caller's trace, with the outcome recorded at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Service<Request> for Trace<S>
where
    S: Service<Request, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Reply, Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let span = tracing::info_span!(
            "rpc.server",
            otel.name = request.method.subject,
            otel.kind = "server",
            rpc.system = "nats",
            rpc.service = request.method.service,
            rpc.method = request.method.method,
            request_id = %request.ctx.request_id(),
            trace_id = request.ctx.trace().trace_id().unwrap_or(""),
            user_id = request.ctx.principal().map(|p| p.user_id.as_str()).unwrap_or(""),
            rpc.code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        telemetry::propagation::set_parent(&span, request.ctx.trace());
        let future = self.inner.call(request);
        let record = span.clone();
        async move {
            let started = Instant::now();
            let result = future.await;
            let code = outcome(&result);
            record.record("rpc.code", code);
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            match &result {
                Ok(_) => tracing::debug!(elapsed_ms, "request served"),
                Err(error) if error.code() == ErrorCode::Internal => {
                    record.record("otel.status_code", "ERROR");
                    tracing::error!(elapsed_ms, error = ?error, "request failed");
                }
                Err(error) => tracing::info!(elapsed_ms, %error, "request refused"),
            }
            result
        }
        .instrument(span)
        .boxed()
    }
}

/// Prometheus metrics per endpoint: requests by outcome, latency histogram, in-flight gauge.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Metrics { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Metrics<S> {
    inner: S,
}

pub const REQUESTS_TOTAL: &str = "rpc_server_requests_total";
pub const REQUEST_DURATION: &str = "rpc_server_request_duration_seconds";
pub const IN_FLIGHT: &str = "rpc_server_requests_in_flight";

impl<S> Service<Request> for Metrics<S>
where
    S: Service<Request, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Reply, Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let service = request.method.service;
        let method = request.method.method;
        let in_flight = metrics::gauge!(IN_FLIGHT, "service" => service, "method" => method);
        in_flight.increment(1.0);
        let future = self.inner.call(request);
        async move {
            // Decrements even when the future is dropped before completing.
            struct InFlight(metrics::Gauge);
            impl Drop for InFlight {
                fn drop(&mut self) {
                    self.0.decrement(1.0);
                }
            }
            let _in_flight = InFlight(in_flight);
            let started = Instant::now();
            let result = future.await;
            let code = outcome(&result);
            metrics::counter!(REQUESTS_TOTAL, "service" => service, "method" => method, "code" => code)
                .increment(1);
            metrics::histogram!(REQUEST_DURATION, "service" => service, "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        }
        .boxed()
    }
}

/// Ends a request with `deadline_exceeded` at its deadline: the caller's, or the service's
/// default when the caller sent none.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    default_timeout: Duration,
}

impl DeadlineLayer {
    pub fn new(default_timeout: Duration) -> Self {
        Self { default_timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            default_timeout: self.default_timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    default_timeout: Duration,
}

impl<S> Service<Request> for Deadline<S>
where
    S: Service<Request, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Reply, Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let own = Instant::now() + self.default_timeout;
        let deadline = request.ctx.deadline().map_or(own, |d| d.min(own));
        let future = self.inner.call(request);
        async move {
            match tokio::time::timeout_at(deadline.into(), future).await {
                Ok(result) => result,
                Err(_) => Err(Error::deadline_exceeded(
                    "the request's deadline passed before it was served",
                )),
            }
        }
        .boxed()
    }
}

/// Turns a panicking handler into an `internal` error instead of a request that never ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

#[derive(Clone, Debug)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S> Service<Request> for CatchPanic<S>
where
    S: Service<Request, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Reply, Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let subject = request.method.subject;
        // A panic while building the future counts as much as one while polling it.
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => future,
            Err(panic) => return futures::future::ready(Err(panicked(subject, panic))).boxed(),
        };
        async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result,
                Err(panic) => Err(panicked(subject, panic)),
            }
        }
        .boxed()
    }
}

fn panicked(subject: &str, panic: Box<dyn std::any::Any + Send>) -> Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Error::internal(anyhow::anyhow!("handler for {subject} panicked: {message}"))
}
