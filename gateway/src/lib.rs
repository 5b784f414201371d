//! The HTTP API gateway: the one door from HTTP into the platform.
//!
//! Every route comes from the contracts ([`api::ROUTES`]); a request is checked (access rule,
//! rate limit), turned into its method's request message and sent as a NATS request to the
//! method's subject, and the reply's JSON goes back to the client byte for byte. The public
//! port also serves the health probes, the OpenAPI document and, with `--web-dir`, the web
//! app ([`web`]); metrics and the page rendering the document are on the admin port, off the
//! public one.
//!
//! Decisions worth knowing:
//! - The access rule is applied before anything reaches NATS. Principal and deadline headers
//!   on NATS are built by the gateway from the verified token; whatever such headers a client
//!   sends are never forwarded.
//! - Error codes become HTTP statuses in exactly one table ([`error::ApiCode::status`]), which
//!   also writes the error responses of the OpenAPI document ([`openapi`]); every
//!   error body is `{"code", "message", "details"}`. `failed_precondition` is 409; a body over
//!   the limit is 413 `payload_too_large` (not 400); a body with a Content-Type other than
//!   JSON is 415, while a body without one is taken as JSON.
//! - Rate limiting fails open: when Redis is down requests pass (counted in
//!   `rate_limit_decisions_total{decision="fail_open"}`), and readiness only reports Redis as
//!   degraded instead of taking the gateway out of service.
//! - Every mutating route honours `Idempotency-Key` ([`idempotency`]): the first answer (not
//!   a 5xx) is kept in Redis for 24 hours and sent again to a repeat, marked
//!   `Idempotent-Replayed`; the key reused for another body is 422, a repeat while the first
//!   is served 409. Without Redis, routes that require the key answer 503 and others are
//!   served without it.
//! - A request's deadline counts from its arrival ([`edge`]) and reaches services as an
//!   absolute time, so nothing works on a request whose client already had its 504; past
//!   `--max-in-flight` requests the gateway sheds load with 503 instead of queueing.
//! - The routes of the gateway's own contract (`api::gateway`) are answered here, never
//!   forwarded: `GET /api/v1/admin/services` lists every service instance from NATS micro
//!   discovery ([`discovery`]).
//!
//! This crate is the only one that knows HTTP statuses and headers. It must never know a
//! particular service: no subject, route or message type is written here, and it must never
//! decode a reply.

pub mod admin;
pub mod authentication;
pub mod config;
pub mod cookies;
pub mod dead_letters;
pub mod discovery;
pub mod edge;
pub mod error;
pub mod forward;
pub mod idempotency;
pub mod live;
pub mod message;
pub mod observe;
pub mod openapi;
pub mod rate_limit;
pub mod stream;
pub mod web;

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use crate::config::{Config, RateLimit, RateLimits};

use crate::authentication::{Authenticator, KeySettings};
use crate::forward::Forwarder;
use crate::rate_limit::RateLimiter;

/// How long `build` waits for the first NATS connection. Requests are only sent once the
/// server has told us it supports headers, so a request to a subject nobody serves is
/// answered "no responders" in milliseconds instead of waiting for the timeout.
const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The HTTP timeout is this much longer than the deadline services get, so a slow service is
/// normally answered with the service call's own `deadline_exceeded`.
const TIMEOUT_GRACE: Duration = Duration::from_millis(100);

/// A gateway bound to its ports, ready to serve.
pub struct Application {
    listener: live::conn::CuttableListener,
    router: Router,
    local_addr: SocketAddr,
    admin_listener: tokio::net::TcpListener,
    admin_router: Router,
    admin_addr: SocketAddr,
    nats: async_nats::Client,
    background: Vec<JoinHandle<()>>,
    /// Ends the open event streams when shutdown begins, so their connections can close.
    streams_end: stream::Closer,
}

impl Application {
    /// Connects to NATS (and lazily to Redis), loads the token keys, builds the routes and
    /// binds the public and admin ports (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Installs the metrics recorder before the first request is counted.
        let _ = telemetry::metrics();
        discovery::register_metrics();

        let nats = config.nats.connect("gateway", "gateway").await?;
        wait_until_connected(&nats, &config.nats.nats_url).await?;
        let redis = redis_connection(&config.redis.redis_url)?;
        check_redis_at_start(&redis).await;

        let (authenticator, refresh_task) = Authenticator::start(KeySettings {
            jwks_file: config.jwt_jwks_file.clone(),
            jwks_url: config.jwt_jwks_url.clone(),
            jwks_nats: config.jwt_jwks_nats.then(|| nats.clone()),
            jwks_signer: config
                .jwt_jwks_signer_file
                .as_deref()
                .map(authentication::read_signer)
                .transpose()?,
            max_stale: Duration::from_secs(config.jwt_jwks_max_stale_seconds.max(1)),
            refresh_interval: Duration::from_secs(config.jwt_jwks_refresh_seconds.max(1)),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
        .await?;

        let request_timeout = config.request_timeout();
        let streams_end = stream::Closer::new();
        let live = live::Hub::new(config.live_max_connections);
        let mut background: Vec<JoinHandle<()>> = refresh_task.into_iter().collect();
        background.extend(live.start(nats.clone()));
        let forwarder = Arc::new(Forwarder {
            streams_end: streams_end.clone(),
            rpc: rpc::Client::new(nats.clone()).with_default_timeout(request_timeout),
            authenticator,
            rate_limiter: RateLimiter::new(redis.clone(), config.rate_limits.clone()),
            idempotency: idempotency::Idempotency::new(redis.clone()),
            request_timeout,
            body_limit_bytes: config.body_limit_bytes,
            trust_forwarded_for: config.trust_forwarded_for,
            live,
            live_settings: live::Settings {
                queue: config.live_queue,
                heartbeat: Duration::from_secs(config.live_heartbeat_seconds.max(1)),
                max_subscriptions: config.live_max_subscriptions,
            },
        });
        let router = forward::router(api::ROUTES, forwarder.clone())?
            .route(
                live::WS_PATH,
                axum::routing::get(live::ws::upgrade).with_state(forwarder),
            )
            .merge(admin::public_router(nats.clone(), redis.clone()))
            .fallback_service(web::fallback(config.web_dir.as_deref())?)
            .method_not_allowed_fallback(error::method_not_allowed);
        let router = with_middleware(router, &config)?;
        let admin_router = admin::admin_router(nats.clone(), redis)
            .fallback(error::route_not_found)
            .layer(axum::middleware::from_fn_with_state(
                // Operators reach the admin port directly, over plain HTTP.
                edge::SecurityHeaders {
                    public_tls: false,
                    trust_forwarded_proto: false,
                },
                edge::security_headers,
            ))
            .layer(CatchPanicLayer::custom(error::panic_response));

        let listener = tokio::net::TcpListener::bind((config.bind, config.port))
            .await
            .map_err(|e| anyhow::anyhow!("binding {}:{}: {e}", config.bind, config.port))?;
        let local_addr = listener.local_addr()?;
        // Live clients too slow to read are disconnected through their connection.
        let listener = live::conn::CuttableListener(listener);
        let admin_listener = tokio::net::TcpListener::bind(config.admin_addr())
            .await
            .map_err(|e| anyhow::anyhow!("binding the admin port {}: {e}", config.admin_addr()))?;
        let admin_addr = admin_listener.local_addr()?;
        tracing::info!(%local_addr, %admin_addr, routes = api::ROUTES.len(), "gateway ready");
        Ok(Self {
            listener,
            router,
            local_addr,
            admin_listener,
            admin_router,
            admin_addr,
            nats,
            background,
            streams_end,
        })
    }

    /// The public port's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin port's address (metrics, docs, health).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<live::conn::Peer>();
        let streams_end = self.streams_end;
        let (stopping, _) = tokio::sync::watch::channel(false);
        let stopped = |mut watch: tokio::sync::watch::Receiver<bool>| async move {
            let _ = watch.wait_for(|stopping| *stopping).await;
        };
        let public_stopped = stopped(stopping.subscribe());
        let admin_stopped = stopped(stopping.subscribe());
        let signal = async move {
            shutdown.await;
            stopping.send_replace(true);
        };
        let public_shutdown = async move {
            public_stopped.await;
            // A live stream never finishes on its own; graceful shutdown would wait for it.
            streams_end.close();
        };
        tracing::info!(addr = %self.admin_addr, "admin server listening");
        let admin = axum::serve(self.admin_listener, self.admin_router)
            .with_graceful_shutdown(admin_stopped)
            .into_future();
        let public = axum::serve(self.listener, service)
            .with_graceful_shutdown(public_shutdown)
            .into_future();
        let ((), served, admin_served) = tokio::join!(signal, public, admin);
        if let Err(e) = admin_served {
            tracing::warn!(error = %e, "serving the admin port");
        }
        for task in self.background {
            task.abort();
        }
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(error = %e, "flushing NATS at shutdown");
        }
        served.map_err(|e| anyhow::anyhow!("serving HTTP: {e}"))?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// The tower-http stack around every route, outermost first.
fn with_middleware(router: Router, config: &Config) -> anyhow::Result<Router> {
    let x_request_id = HeaderName::from_static("x-request-id");
    let middleware = ServiceBuilder::new()
        .layer(axum::middleware::from_fn(edge::stamp_arrival))
        .layer(axum::middleware::from_fn_with_state(
            edge::SecurityHeaders {
                public_tls: config.public_tls,
                trust_forwarded_proto: config.trust_forwarded_for,
            },
            edge::security_headers,
        ))
        .layer(axum::middleware::from_fn(edge::sanitize_request_id))
        .layer(SetRequestIdLayer::new(
            x_request_id.clone(),
            observe::MakeRequestUuidV7,
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observe::make_span)
                .on_response(observe::on_response)
                // Failures are logged once, with their cause, where they happen.
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn(observe::record_metrics))
        .layer(cors(&config.cors_allowed_origins)?)
        .layer(axum::middleware::from_fn_with_state(
            edge::InFlight::new(config.max_in_flight),
            edge::shed_load,
        ))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            config.request_timeout() + TIMEOUT_GRACE,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        // The body limit above is the only one: axum's default 2 MiB must not cap it.
        .layer(DefaultBodyLimit::disable());
    Ok(router.layer(middleware))
}

/// CORS for browsers on the configured origins; "*" allows any origin. Credentials are never
/// allowed across origins: access tokens travel in the Authorization header, and the refresh
/// token's cookie (SameSite=Strict, asked for with a header CORS does not allow) is for the
/// web app the gateway serves on its own origin.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    // Headers the contracts fill request fields from (X-Cart-Token) are a browser's to send.
    let mut allowed_headers = vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        idempotency::IDEMPOTENCY_KEY.clone(),
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("traceparent"),
        HeaderName::from_static("tracestate"),
    ];
    for field in api::ROUTES.iter().flat_map(|route| route.header_fields()) {
        let name = HeaderName::from_bytes(
            field
                .header
                .expect("header fields have a header")
                .to_ascii_lowercase()
                .as_bytes(),
        )?;
        if !allowed_headers.contains(&name) {
            allowed_headers.push(name);
        }
    }
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(allowed_headers)
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            rate_limit::X_RATELIMIT_LIMIT.clone(),
            rate_limit::X_RATELIMIT_REMAINING.clone(),
            rate_limit::X_RATELIMIT_RESET.clone(),
            header::RETRY_AFTER,
            idempotency::IDEMPOTENT_REPLAYED.clone(),
        ])
        .max_age(Duration::from_secs(600));
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.contains(&"*") {
        tracing::warn!("CORS allows every origin: use this for development only");
        return Ok(layer.allow_origin(Any));
    }
    let origins = origins
        .into_iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|e| anyhow::anyhow!("CORS origin {o:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(layer.allow_origin(AllowOrigin::list(origins)))
}

/// Waits for the first connection to complete; `connect` returns before it does.
async fn wait_until_connected(nats: &async_nats::Client, url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while nats.connection_state() != async_nats::connection::State::Connected {
        if started.elapsed() > NATS_CONNECT_TIMEOUT {
            anyhow::bail!(
                "no connection to NATS at {url} after {} s",
                NATS_CONNECT_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A Redis connection made on first use and remade in the background, so the gateway starts
/// and serves while Redis is down.
fn redis_connection(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("Redis URL: {e}"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| anyhow::anyhow!("Redis connection: {e}"))
}

async fn check_redis_at_start(redis: &ConnectionManager) {
    let mut redis = redis.clone();
    match tokio::time::timeout(
        Duration::from_secs(2),
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Redis is not answering: rate limiting fails open until it does")
        }
        Err(_) => tracing::warn!("Redis is not answering: rate limiting fails open until it does"),
    }
}
