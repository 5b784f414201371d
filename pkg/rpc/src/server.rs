//! The serve loop: one NATS micro service, one task per endpoint, one reply per request.
//!
//! Every request gets exactly one reply by construction. The handler's result, whatever it
//! is, goes through [`ReplyGuard::send`]; a handler that panics is turned into `internal` by
//! the catch-panic layer, one that overruns its deadline into `deadline_exceeded` by the
//! deadline layer, and a task that is cancelled before it replied answers `internal` from the
//! guard's `Drop`.
//!
//! A request is first polled once in the endpoint's loop. One that completes right away (a
//! cache hit, a refusal) is answered from there, without a task of its own: a spawn and a
//! wake-up on another thread per request cost more than such a handler. One that has to wait
//! (a database, another service) moves to a task of its own and the loop takes the next
//! request, so slow handlers of one endpoint still run concurrently, on every core. (Running
//! every handler inside the loop, a `FuturesUnordered` per endpoint, would confine an
//! endpoint's CPU work to one thread at a time.) The concurrency limit counts both kinds.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::service::ServiceExt;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::util::BoxCloneSyncService;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

use crate::codec::{Codec, Message};
use crate::context::Context;
use crate::error::{Error, Violations};
use crate::headers;
use crate::layers::{CatchPanicLayer, DeadlineLayer, MetricsLayer, TraceLayer};
use crate::method::{Access, Method, MethodDescriptor};
use crate::request::{Reply, Request};
use crate::rules::Validate;

/// A handler with its layers, as a tower service.
pub type BoxService = BoxCloneSyncService<Request, Reply, Error>;

/// One method bound to its handler.
pub struct Endpoint {
    method: &'static MethodDescriptor,
    handler: BoxService,
}

impl Endpoint {
    /// Binds `handler` to the method `M`: decodes the request in the codec the caller used,
    /// checks the method's access level and the request's declared field rules, runs the
    /// handler and encodes its reply. The handler's
    /// types are the method's own, so binding a handler of another method does not compile.
    pub fn bind<M, F, Fut>(handler: F) -> Self
    where
        M: Method,
        F: Fn(Context, M::Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Response, Error>> + Send + 'static,
    {
        Self::unary(M::DESCRIPTOR, handler)
    }

    fn unary<Req, Resp, F, Fut>(method: &'static MethodDescriptor, handler: F) -> Self
    where
        Req: Message + Validate,
        Resp: Message,
        F: Fn(Context, Req) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
    {
        let service = tower::service_fn(move |request: Request| {
            let handler = handler.clone();
            async move {
                authorize(&request.ctx, request.method.access)?;
                let message: Req = request.codec.decode(&request.payload)?;
                let mut violations = Violations::new();
                message.validate("", &mut violations);
                violations.into_result()?;
                let response = handler(request.ctx, message).await?;
                Ok(Reply {
                    codec: request.codec,
                    payload: request.codec.encode(&response)?,
                })
            }
        });
        Self {
            method,
            handler: BoxCloneSyncService::new(service),
        }
    }

    pub fn method(&self) -> &'static MethodDescriptor {
        self.method
    }
}

fn authorize(ctx: &Context, access: Access) -> Result<(), Error> {
    match access {
        Access::Public | Access::Internal => Ok(()),
        Access::User => ctx.require_principal().map(drop),
        Access::Admin => ctx.require_role(crate::context::roles::ADMIN).map(drop),
    }
}

/// Bounds and timings of a service.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests one endpoint of one replica handles at once; past it the endpoint stops taking
    /// requests from NATS until one finishes.
    pub max_in_flight_per_endpoint: usize,
    /// The deadline of a request that arrives without one.
    pub default_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight_per_endpoint: 256,
            default_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(25),
        }
    }
}

/// A service definition: name, semver version, endpoints and limits.
pub struct Service {
    name: String,
    version: String,
    description: String,
    endpoints: Vec<Endpoint>,
    limits: Limits,
}

impl Service {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            endpoints: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// The service a contract describes: its name, version and description.
    pub fn of(contract: &crate::method::ServiceDescriptor) -> Self {
        Self::new(contract.name, contract.version).description(contract.description)
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.endpoints.extend(endpoints);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Registers the service and its endpoints with NATS and starts serving. When this
    /// returns, the subscriptions are known to the server, so requests will be delivered.
    pub async fn start(self, nats: async_nats::Client) -> anyhow::Result<RunningService> {
        let errors: Arc<Vec<(String, AtomicU64)>> = Arc::new(
            self.endpoints
                .iter()
                .map(|e| (e.method.method.to_owned(), AtomicU64::new(0)))
                .collect(),
        );
        let stats_errors = errors.clone();
        let micro = nats
            .service_builder()
            .description(&self.description)
            .stats_handler(move |endpoint, _stats| {
                // The micro stats only count errors sent through `respond(Err)`, which cannot
                // carry a body; ours carry one, so the count is reported here.
                let count = stats_errors
                    .iter()
                    .find(|(name, _)| *name == endpoint)
                    .map(|(_, n)| n.load(Ordering::Relaxed))
                    .unwrap_or(0);
                serde_json::json!({ "errors": count })
            })
            .start(&self.name, &self.version)
            .await
            .map_err(|e| anyhow::anyhow!("registering service {}: {e}", self.name))?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let tracker = TaskTracker::new();
        let loops = TaskTracker::new();
        for (index, endpoint) in self.endpoints.into_iter().enumerate() {
            let method = endpoint.method;
            let subscription = micro
                .endpoint_builder()
                .name(method.method)
                .add(method.subject)
                .await
                .map_err(|e| anyhow::anyhow!("adding endpoint {}: {e}", method.subject))?;
            let service = ServiceBuilder::new()
                .layer(TraceLayer)
                .layer(MetricsLayer)
                .concurrency_limit(self.limits.max_in_flight_per_endpoint)
                .layer(DeadlineLayer::new(self.limits.default_timeout))
                .layer(CatchPanicLayer)
                .service(endpoint.handler);
            loops.spawn(serve_endpoint(EndpointLoop {
                subscription,
                method,
                service: BoxCloneSyncService::new(service),
                stop: stop_rx.clone(),
                in_flight: tracker.clone(),
                errors: errors.clone(),
                error_index: index,
            }));
        }
        nats.flush().await.context("flushing subscriptions")?;
        tracing::info!(service = %self.name, version = %self.version, "service started");
        Ok(RunningService {
            name: self.name,
            nats,
            micro,
            stop: stop_tx,
            loops,
            in_flight: tracker,
            drain_timeout: self.limits.drain_timeout,
        })
    }
}

/// A started service. Dropping it without [`RunningService::shutdown`] leaves it serving
/// until the process exits.
pub struct RunningService {
    name: String,
    nats: async_nats::Client,
    micro: async_nats::service::Service,
    stop: watch::Sender<bool>,
    loops: TaskTracker,
    in_flight: TaskTracker,
    drain_timeout: Duration,
}

impl RunningService {
    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.shutdown().await
    }

    /// Stops taking requests, answers the ones already received and waits for in-flight
    /// handlers (up to the drain timeout), then deregisters from NATS micro.
    ///
    /// Known gap: `async_nats::service` endpoints can unsubscribe but not drain, so a request
    /// the server routed to this replica in the last round trip before it processed the
    /// unsubscribe is dropped by the client (its caller times out). Closing that window needs
    /// an endpoint-level drain in async-nats (`Subscriber::drain` exists but the endpoint's
    /// subscriber is private).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!(service = %self.name, "draining");
        let _ = self.stop.send(true);
        self.loops.close();
        let drained = tokio::time::timeout(self.drain_timeout, async {
            self.loops.wait().await;
            // A round trip makes sure the server has processed every unsubscribe, so once this
            // returns no request is routed to this replica any more.
            if let Err(error) = self.nats.flush().await {
                tracing::warn!(%error, "flushing unsubscribes");
            }
            self.in_flight.close();
            self.in_flight.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(service = %self.name, "drain timed out; in-flight requests abandoned");
        }
        self.micro
            .stop()
            .await
            .map_err(|e| anyhow::anyhow!("stopping service {}: {e}", self.name))?;
        tracing::info!(service = %self.name, "stopped");
        Ok(())
    }
}

struct EndpointLoop {
    subscription: async_nats::service::endpoint::Endpoint,
    method: &'static MethodDescriptor,
    service: BoxService,
    stop: watch::Receiver<bool>,
    in_flight: TaskTracker,
    errors: Arc<Vec<(String, AtomicU64)>>,
    error_index: usize,
}

async fn serve_endpoint(mut this: EndpointLoop) {
    loop {
        // Wait for capacity before taking the next request: a saturated endpoint stops pulling,
        // and the backlog waits in NATS instead of piling up as spawned tasks.
        if this.service.ready().await.is_err() {
            break;
        }
        let request = tokio::select! {
            biased;
            _ = this.stop.wait_for(|stop| *stop) => break,
            request = this.subscription.next() => match request {
                Some(request) => request,
                None => return,
            },
        };
        this.dispatch(request).await;
    }
    // Unsubscribe, then answer everything that was already delivered to us.
    if let Err(error) = this.subscription.stop().await {
        tracing::warn!(subject = this.method.subject, %error, "unsubscribing");
    }
    while let Some(request) = this.subscription.next().await {
        if this.service.ready().await.is_err() {
            break;
        }
        this.dispatch(request).await;
    }
}

impl EndpointLoop {
    async fn dispatch(&mut self, request: async_nats::service::Request) {
        let headers = request.message.headers.as_ref();
        let ctx = Context::from_headers(headers);
        let content_type = headers
            .and_then(|h| h.get(headers::CONTENT_TYPE))
            .map(|v| v.as_str());
        let codec = Codec::from_content_type(content_type);
        let payload = request.message.payload.clone();
        let guard = ReplyGuard {
            request: Some(request),
            errors: self.errors.clone(),
            error_index: self.error_index,
        };
        let codec = match codec {
            Ok(codec) => codec,
            Err(error) => return guard.send(Err(error)).await,
        };
        let mut future = self.service.call(Request {
            ctx,
            method: self.method,
            codec,
            payload,
        });
        // One poll here, with a waker that does nothing: a future that is not ready registers
        // the waker of its own task when that task polls it again, as the `Future` contract
        // requires of it. The catch-panic layer is inside the stack; this catches a panic in
        // the layers around it, which would otherwise end the endpoint's loop.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            future
                .as_mut()
                .poll(&mut TaskContext::from_waker(Waker::noop()))
        }));
        match polled {
            Ok(Poll::Ready(result)) => guard.send(result).await,
            Ok(Poll::Pending) => {
                self.in_flight.spawn(async move {
                    let result = future.await;
                    guard.send(result).await;
                });
            }
            Err(_) => {
                drop(future);
                let error = anyhow::anyhow!("the layers around {} panicked", self.method.subject);
                guard.send(Err(Error::internal(error))).await;
            }
        }
    }
}

/// Owns a request until it is answered; answers `internal` if dropped unanswered (a task
/// cancelled at shutdown, say).
struct ReplyGuard {
    request: Option<async_nats::service::Request>,
    errors: Arc<Vec<(String, AtomicU64)>>,
    error_index: usize,
}

impl ReplyGuard {
    async fn send(mut self, result: Result<Reply, Error>) {
        let Some(request) = self.request.take() else {
            return;
        };
        let (headers, payload) = match result {
            Ok(reply) => {
                let mut headers = HeaderMap::new();
                headers.insert(headers::CONTENT_TYPE, reply.codec.content_type());
                (headers, reply.payload)
            }
            Err(error) => {
                self.count_error();
                error_reply(&error)
            }
        };
        respond(request, headers, payload).await;
    }

    fn count_error(&self) {
        self.errors[self.error_index]
            .1
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        let Some(request) = self.request.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.count_error();
        let (headers, payload) = error_reply(&Error::internal(anyhow::anyhow!(
            "request abandoned before a reply was sent"
        )));
        runtime.spawn(respond(request, headers, payload));
    }
}

async fn respond(request: async_nats::service::Request, headers: HeaderMap, payload: Bytes) {
    if request.message.reply.is_none() {
        // A publish, not a request: nobody is waiting for an answer.
        return;
    }
    if let Err(error) = request.respond_with_headers(Ok(payload), headers).await {
        tracing::warn!(%error, "sending a reply");
    }
}

/// `text` as a header value: a message may quote what a client sent (an unknown field's name),
/// and a line break in a header value would make the reply unsendable (async-nats panics on
/// it), so control characters become spaces. The JSON body keeps the message as it is.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The headers and JSON body of an error reply.
pub(crate) fn error_reply(error: &Error) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(
        headers::NATS_SERVICE_ERROR,
        header_text(error.message()).as_str(),
    );
    headers.insert(
        headers::NATS_SERVICE_ERROR_CODE,
        error.code().number().to_string().as_str(),
    );
    headers.insert(headers::CONTENT_TYPE, headers::JSON);
    let body = serde_json::to_vec(&error.to_body()).unwrap_or_default();
    (headers, Bytes::from(body))
}
