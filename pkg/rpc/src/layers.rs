//! The cross-cutting concerns around every handler, as tower layers.
//!
//! Order (outermost first): trace, metrics, concurrency limit, deadline, catch-panic. Tracing
//! and metrics therefore see the final outcome of every request, timeouts and panics included.
//!
//! Both run on every request, so they are kept cheap (see the logging policy of the
//! `telemetry` crate): the `rpc.server` span and the "request served" line are DEBUG under
//! [`telemetry::REQUEST_TARGET`], so at the usual `info` filter nothing is formatted unless a
//! trace exporter wants the span; failures and slow requests are logged at ERROR, WARN or INFO
//! with the request id in the line itself. The metric handles of an endpoint are looked up once
//! (per outcome, on first use), not per request.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::{Error, ErrorCode};
use crate::method::MethodDescriptor;
use crate::request::{Reply, Request};

/// A request that takes at least this long is logged at INFO even when it succeeds.
pub const SLOW_REQUEST: Duration = Duration::from_secs(1);

/// Outcome label of a request: `ok` or the error code.
fn outcome(result: &Result<Reply, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.code().as_str(),
    }
}

/// Whether a request that ended with `code` failed on the serving side (an error status on
/// its spans) rather than being refused as the caller's mistake.
pub(crate) fn is_server_fault(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::DeadlineExceeded
    )
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
        // DEBUG: built only when the log filter or the trace exporter wants it.
        // `process <subject>`, kind server: the naming scheme is in docs/ARCHITECTURE.md.
        let span = tracing::debug_span!(
            target: telemetry::REQUEST_TARGET,
            "rpc.server",
            otel.name = %format_args!("process {}", request.method.subject),
            otel.kind = "server",
            messaging.system = "nats",
            messaging.destination.name = request.method.subject,
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            rpc.system = "nats",
            rpc.service = request.method.service,
            rpc.method = request.method.method,
            request_id = %request.ctx.request_id(),
            trace_id = request.ctx.trace().trace_id().unwrap_or(""),
            user_id = request.ctx.principal().map(|p| p.user_id.as_str()).unwrap_or(""),
            rpc.code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        telemetry::propagation::set_parent(&span, request.ctx.trace());
        // The failure lines carry the request id themselves: the span is usually not logged.
        let subject = request.method.subject;
        let request_id = request.ctx.request_id().to_owned();
        let future = self.inner.call(request);
        let record = span.clone();
        async move {
            let started = Instant::now();
            let result = future.await;
            let elapsed = started.elapsed();
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            record.record("rpc.code", outcome(&result));
            if let Err(error) = &result
                && is_server_fault(error.code())
            {
                record.record("error.type", error.code().as_str());
                record.record("otel.status_code", "ERROR");
            }
            match &result {
                Ok(_) if elapsed >= SLOW_REQUEST => {
                    tracing::info!(subject, request_id, elapsed_ms, "slow request");
                }
                Ok(_) => {
                    tracing::debug!(target: telemetry::REQUEST_TARGET, elapsed_ms, "request served");
                }
                Err(error) if error.code() == ErrorCode::Internal => {
                    tracing::error!(subject, request_id, elapsed_ms, error = ?error, "request failed");
                }
                Err(error)
                    if matches!(
                        error.code(),
                        ErrorCode::Unavailable | ErrorCode::DeadlineExceeded
                    ) =>
                {
                    tracing::warn!(subject, request_id, elapsed_ms, %error, "request failed");
                }
                // The caller's mistake (not found, invalid argument, ...): routine, not logged
                // unless asked for.
                Err(error) => {
                    tracing::debug!(target: telemetry::REQUEST_TARGET, elapsed_ms, %error, "request refused");
                }
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
        Metrics {
            inner,
            endpoint: Arc::default(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Metrics<S> {
    inner: S,
    /// The handles of the endpoint this stack serves, made on its first request.
    endpoint: Arc<OnceLock<Arc<EndpointMetrics>>>,
}

pub const REQUESTS_TOTAL: &str = "rpc_server_requests_total";
pub const REQUEST_DURATION: &str = "rpc_server_request_duration_seconds";
pub const IN_FLIGHT: &str = "rpc_server_requests_in_flight";

/// The metric handles of one endpoint. A label lookup in the recorder (hashing the labels,
/// a map lookup under a lock) per request cost more than the rest of the layer; a handle is
/// an `Arc` to the series itself. The request counters are made on first use, so that an
/// outcome that never happened has no series (as with labels looked up per request).
struct EndpointMetrics {
    method: &'static MethodDescriptor,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
    /// `ok`, then one per error code, in the order of [`ErrorCode::ALL`].
    requests: [OnceLock<metrics::Counter>; 1 + ErrorCode::ALL.len()],
}

impl std::fmt::Debug for EndpointMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointMetrics")
            .field("subject", &self.method.subject)
            .finish_non_exhaustive()
    }
}

impl EndpointMetrics {
    fn new(method: &'static MethodDescriptor) -> Self {
        let (service, method_name) = (method.service, method.method);
        // At zero, so dashboards read 0 rather than no data until a request expires.
        metrics::counter!(EXPIRED_TOTAL, "service" => service, "method" => method_name)
            .increment(0);
        Self {
            method,
            in_flight: metrics::gauge!(IN_FLIGHT, "service" => service, "method" => method_name),
            duration: metrics::histogram!(REQUEST_DURATION, "service" => service, "method" => method_name),
            requests: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn record(&self, result: &Result<Reply, Error>, elapsed: Duration) {
        let index = match result {
            Ok(_) => 0,
            Err(error) => 1 + error.code() as usize,
        };
        let code = outcome(result);
        self.requests[index]
            .get_or_init(|| {
                metrics::counter!(
                    REQUESTS_TOTAL,
                    "service" => self.method.service,
                    "method" => self.method.method,
                    "code" => code
                )
            })
            .increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

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
        let cached = self
            .endpoint
            .get_or_init(|| Arc::new(EndpointMetrics::new(request.method)));
        // A stack serves one endpoint; should it ever see another, that one is not cached.
        let endpoint = if std::ptr::eq(cached.method, request.method) {
            cached.clone()
        } else {
            Arc::new(EndpointMetrics::new(request.method))
        };
        endpoint.in_flight.increment(1.0);
        let future = self.inner.call(request);
        async move {
            // Decrements even when the future is dropped before completing.
            struct InFlight(Arc<EndpointMetrics>);
            impl Drop for InFlight {
                fn drop(&mut self) {
                    self.0.in_flight.decrement(1.0);
                }
            }
            let endpoint = InFlight(endpoint);
            let started = Instant::now();
            let result = future.await;
            endpoint.0.record(&result, started.elapsed());
            result
        }
        .boxed()
    }
}

/// Ends a request with `deadline_exceeded` at its deadline: the caller's, held to the
/// service's maximum, or that maximum when the caller sent none. The handler's context gets
/// that deadline, so `ctx.remaining()` is what the handler has left.
///
/// A request whose deadline has already passed when it is taken from NATS (it waited in a
/// queue while its caller gave up) is answered at once without running the handler, and
/// counted in [`EXPIRED_TOTAL`].
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    max_timeout: Duration,
}

impl DeadlineLayer {
    /// `max_timeout`: the most time any request gets, and the deadline of one that came
    /// without.
    pub fn new(max_timeout: Duration) -> Self {
        Self { max_timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            max_timeout: self.max_timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    max_timeout: Duration,
}

/// Requests answered `deadline_exceeded` without running their handler, because their
/// deadline had passed when they were taken from NATS.
pub const EXPIRED_TOTAL: &str = "rpc_server_requests_expired_total";

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

    fn call(&mut self, mut request: Request) -> Self::Future {
        let now = Instant::now();
        let deadline = request.ctx.hold_deadline_to(now, self.max_timeout);
        if deadline <= now {
            metrics::counter!(
                EXPIRED_TOTAL,
                "service" => request.method.service,
                "method" => request.method.method
            )
            .increment(1);
            return futures::future::ready(Err(Error::deadline_exceeded(
                "the request's deadline had passed when it was taken from the queue",
            )))
            .boxed();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_index_the_request_counters_in_the_order_of_all() {
        for (index, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, index, "{code:?}");
        }
    }
}
