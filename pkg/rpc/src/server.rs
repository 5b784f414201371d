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
//!
//! Nothing one request does ends an endpoint's loop: a panic while reading the request,
//! running the layers or replying is caught and logged, the request is still answered (by the
//! guard), and a reply that cannot be sent (too large for the server) is replaced by a small
//! `internal` one. Should a loop end anyway while the service is meant to serve (its
//! subscription closed under it), the service's readiness check, registered on the admin
//! port through [`telemetry::admin::register_check`], fails and names the endpoint.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::service::ServiceExt;
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt};
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

    /// Binds `handler` to a method no contract declares as a type: one the host serves for
    /// every service of a kind, under each service's own subject (the dead-letter redrive).
    /// Decoding, the access check and the field rules are those of [`Endpoint::bind`].
    pub fn with_descriptor<Req, Resp, F, Fut>(method: &'static MethodDescriptor, handler: F) -> Self
    where
        Req: Message + Validate,
        Resp: Message,
        F: Fn(Context, Req) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
    {
        Self::unary(method, handler)
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
    /// The deadline of a request that arrives without one, and the most time any request
    /// gets: a caller's deadline further out is held to it.
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
    readiness: Option<telemetry::admin::LastReadiness>,
}

impl Service {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            endpoints: Vec::new(),
            limits: Limits::default(),
            readiness: None,
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

    /// Reports the process' readiness (its admin server's last evaluation) with each
    /// endpoint's stats, as `"readiness"`, so that NATS micro discovery (and the gateway's
    /// service list) shows an instance that answers but cannot serve.
    pub fn readiness(mut self, readiness: telemetry::admin::LastReadiness) -> Self {
        self.readiness = Some(readiness);
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
        let readiness = self.readiness.clone();
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
                match readiness.as_ref().and_then(|r| r.get()) {
                    Some(readiness) => {
                        serde_json::json!({ "errors": count, "readiness": readiness })
                    }
                    None => serde_json::json!({ "errors": count }),
                }
            })
            .start(&self.name, &self.version)
            .await
            .map_err(|e| anyhow::anyhow!("registering service {}: {e}", self.name))?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let tracker = TaskTracker::new();
        let loops = TaskTracker::new();
        let health = Arc::new(LoopHealth::default());
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
            let service = BoxCloneSyncService::new(service);
            loops.spawn(serve_endpoint(EndpointLoop {
                subscription,
                method,
                fresh: service.clone(),
                service,
                stop: stop_rx.clone(),
                in_flight: tracker.clone(),
                errors: errors.clone(),
                error_index: index,
                _alive: LoopAlive {
                    method,
                    health: health.clone(),
                },
            }));
        }
        nats.flush().await.context("flushing subscriptions")?;
        let readiness = Readiness {
            _registration: telemetry::admin::register_check(health.check(&self.name)),
            health: health.clone(),
        };
        tracing::info!(service = %self.name, version = %self.version, "service started");
        Ok(RunningService {
            name: self.name,
            nats,
            micro,
            stop: stop_tx,
            loops,
            in_flight: tracker,
            drain_timeout: self.limits.drain_timeout,
            health,
            _readiness: readiness,
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
    health: Arc<LoopHealth>,
    /// Keeps the endpoint loops' readiness check on the admin port while the service runs.
    _readiness: Readiness,
}

/// The registration of a service's readiness check. Dropped with its service, so the loops
/// that go on serving without their `RunningService` (it was dropped without a shutdown) end
/// quietly with the runtime.
struct Readiness {
    _registration: telemetry::admin::Registration,
    health: Arc<LoopHealth>,
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.health.stopping.store(true, Ordering::SeqCst);
    }
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
        // Loops that end from here on are meant to.
        self.health.stopping.store(true, Ordering::SeqCst);
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

/// Which endpoint loops of a service ended while it was meant to serve.
#[derive(Debug, Default)]
struct LoopHealth {
    /// Set when shutdown begins: loops end on purpose from then on.
    stopping: AtomicBool,
    /// The subjects of the loops that ended unexpectedly.
    ended: Mutex<Vec<&'static str>>,
}

/// The readiness check's name: `rpc.<service>`.
const CHECK_PREFIX: &str = "rpc.";

/// Loops that ended while their service was meant to serve.
pub const LOOPS_ENDED_TOTAL: &str = "rpc_server_endpoint_loops_ended_total";

impl LoopHealth {
    /// Fails while any endpoint loop has ended unexpectedly: the replica no longer answers
    /// that method, so it should be replaced.
    fn check(self: &Arc<Self>, service: &str) -> Arc<dyn telemetry::admin::Check> {
        let health = self.clone();
        telemetry::admin::check_fn(format!("{CHECK_PREFIX}{service}"), move || {
            let verdict = health.verdict();
            async move { verdict }
        })
    }

    fn verdict(&self) -> Result<(), String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        if ended.is_empty() {
            Ok(())
        } else {
            Err(format!("endpoint loops ended: {}", ended.join(", ")))
        }
    }
}

/// Held by an endpoint's loop; when it is dropped (the loop returned or panicked) while the
/// service is not stopping, the endpoint is recorded as ended.
struct LoopAlive {
    method: &'static MethodDescriptor,
    health: Arc<LoopHealth>,
}

impl Drop for LoopAlive {
    fn drop(&mut self) {
        if self.health.stopping.load(Ordering::SeqCst) {
            return;
        }
        tracing::error!(
            subject = self.method.subject,
            "an endpoint stopped serving while its service runs: readiness fails until the replica is replaced"
        );
        metrics::counter!(
            LOOPS_ENDED_TOTAL,
            "service" => self.method.service,
            "method" => self.method.method
        )
        .increment(1);
        self.health
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.method.subject);
    }
}

struct EndpointLoop {
    subscription: async_nats::service::endpoint::Endpoint,
    method: &'static MethodDescriptor,
    service: BoxService,
    /// A clone of the stack as it was built, to start over from should `service` fail.
    fresh: BoxService,
    stop: watch::Receiver<bool>,
    in_flight: TaskTracker,
    errors: Arc<Vec<(String, AtomicU64)>>,
    error_index: usize,
    /// Records the loop as ended when dropped (see [`LoopAlive`]).
    _alive: LoopAlive,
}

async fn serve_endpoint(mut this: EndpointLoop) {
    loop {
        // Wait for capacity before taking the next request: a saturated endpoint stops pulling,
        // and the backlog waits in NATS instead of piling up as spawned tasks.
        this.wait_for_capacity().await;
        let request = tokio::select! {
            biased;
            _ = this.stop.wait_for(|stop| *stop) => break,
            request = this.subscription.next() => match request {
                Some(request) => request,
                // The subscription is gone (the connection was closed or drained): `_alive`
                // records it unless the service is stopping.
                None => return,
            },
        };
        this.dispatch_guarded(request).await;
    }
    // Unsubscribe, then answer everything that was already delivered to us.
    if let Err(error) = this.subscription.stop().await {
        tracing::warn!(subject = this.method.subject, %error, "unsubscribing");
    }
    while let Some(request) = this.subscription.next().await {
        this.wait_for_capacity().await;
        this.dispatch_guarded(request).await;
    }
}

impl EndpointLoop {
    /// Waits until the stack can take a request. A stack that fails (or panics) instead is
    /// replaced by a fresh clone of the one that was built, after a pause so that a stack that
    /// keeps failing does not spin: no error of one request's layers ends the loop.
    async fn wait_for_capacity(&mut self) {
        loop {
            let ready = AssertUnwindSafe(self.service.ready()).catch_unwind().await;
            match ready {
                Ok(Ok(_)) => return,
                Ok(Err(error)) => {
                    tracing::error!(subject = self.method.subject, %error, "the endpoint's layers failed; starting over");
                }
                Err(_) => {
                    tracing::error!(
                        subject = self.method.subject,
                        "the endpoint's layers panicked; starting over"
                    );
                }
            }
            self.service = self.fresh.clone();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Dispatches one request; a panic anywhere in it is logged and the loop goes on. The
    /// request is still answered: its guard replies `internal` when it is dropped unanswered.
    async fn dispatch_guarded(&mut self, request: async_nats::service::Request) {
        let subject = self.method.subject;
        if AssertUnwindSafe(self.dispatch(request))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!(
                subject,
                "serving a request panicked outside the handler; the endpoint goes on"
            );
        }
    }

    async fn dispatch(&mut self, request: async_nats::service::Request) {
        let headers = request.message.headers.clone();
        let payload = request.message.payload.clone();
        // The guard owns the request from the start, so that whatever happens below it is
        // answered.
        let guard = ReplyGuard {
            request: Some(request),
            errors: self.errors.clone(),
            error_index: self.error_index,
        };
        let headers = headers.as_ref();
        let ctx = Context::from_headers(headers);
        let content_type = headers
            .and_then(|h| h.get(headers::CONTENT_TYPE))
            .map(|v| v.as_str());
        let codec = match Codec::from_content_type(content_type) {
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
        // the layers around it.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            future
                .as_mut()
                .poll(&mut TaskContext::from_waker(Waker::noop()))
        }));
        match polled {
            Ok(Poll::Ready(result)) => guard.send(result).await,
            Ok(Poll::Pending) => {
                let subject = self.method.subject;
                self.in_flight.spawn(async move {
                    let result = match AssertUnwindSafe(future).catch_unwind().await {
                        Ok(result) => result,
                        Err(_) => Err(Error::internal(anyhow::anyhow!(
                            "the layers around {subject} panicked"
                        ))),
                    };
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
        let Some(request) = self.request.as_ref() else {
            return;
        };
        let (headers, payload) = match result {
            Ok(reply) => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    headers::CONTENT_TYPE,
                    headers::value(reply.codec.content_type()),
                );
                (headers, reply.payload)
            }
            Err(error) => {
                self.count_error();
                error_reply(&error)
            }
        };
        if let Err(error) = respond(request, headers, payload).await {
            // Most likely too large for the server: a small answer still tells the caller,
            // where silence would leave it waiting for its timeout.
            tracing::error!(%error, "sending a reply failed; answering internal instead");
            self.count_error();
            let (headers, payload) = error_reply(&Error::internal(anyhow::anyhow!(
                "the reply could not be sent: {error}"
            )));
            if let Err(error) = respond(request, headers, payload).await {
                tracing::warn!(%error, "sending an error reply");
            }
        }
        // Answered (or tried twice): nothing left for `Drop` to do.
        self.request = None;
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
        runtime.spawn(async move {
            if let Err(error) = respond(&request, headers, payload).await {
                tracing::warn!(%error, "sending a reply");
            }
        });
    }
}

async fn respond(
    request: &async_nats::service::Request,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<(), async_nats::PublishError> {
    if request.message.reply.is_none() {
        // A publish, not a request: nobody is waiting for an answer.
        return Ok(());
    }
    request.respond_with_headers(Ok(payload), headers).await
}

/// The headers and JSON body of an error reply. The message may quote what a client sent
/// (an unknown field's name): the header gets it through [`headers::value`], and the body
/// keeps it as it is, cut to [`MAX_ERROR_MESSAGE_CHARS`] so a reply never outgrows the server.
pub(crate) fn error_reply(error: &Error) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(headers::NATS_SERVICE_ERROR, headers::value(error.message()));
    headers.insert(
        headers::NATS_SERVICE_ERROR_CODE,
        headers::value(&error.code().number().to_string()),
    );
    headers.insert(headers::CONTENT_TYPE, headers::value(headers::JSON));
    let mut body = error.to_body();
    if body.message.chars().count() > MAX_ERROR_MESSAGE_CHARS {
        body.message = body.message.chars().take(MAX_ERROR_MESSAGE_CHARS).collect();
        body.message.push('…');
    }
    let body = serde_json::to_vec(&body).unwrap_or_default();
    (headers, Bytes::from(body))
}

/// The longest error message sent, in characters.
const MAX_ERROR_MESSAGE_CHARS: usize = 2048;
