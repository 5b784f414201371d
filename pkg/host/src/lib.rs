//! The host every service runs in: it owns a service's wiring, so a service's `lib.rs` is the
//! list of what the service has and nothing else.
//!
//! ```no_run
//! # async fn example(
//! #     service: config::ServiceArgs,
//! #     postgres: config::PostgresArgs,
//! #     outbox: config::OutboxArgs,
//! #     migrator: &'static sqlx::migrate::Migrator,
//! #     contract: &'static rpc::ServiceDescriptor,
//! # ) -> anyhow::Result<()> {
//! let mut host = host::Host::connect(contract, &service).await?;
//! let pool = host.postgres(&postgres, migrator).await?;
//! host.outbox(&pool, &outbox).await?;
//! host.background("sweeper", |cancel| tokio::spawn(async move { cancel.cancelled().await }));
//! let serving = host.serve(Vec::new()).await?;
//! serving.run_until(telemetry::shutdown_signal()).await
//! # }
//! ```
//!
//! Start-up runs in one order: connect to NATS (as `<service>-service`), then each store as the
//! service asks for it (a PostgreSQL pool is migrated, and its readiness check and close hook
//! are registered with it), then, in [`Host::serve`], bind the admin port, create every
//! consumer's durable, register the rpc service and start the background tasks (the outbox
//! relay among them). When `serve` returns, requests are served and events consumed.
//!
//! Shutdown runs in one order too ([`Serving::run_until`]): stop taking requests and answer
//! those in flight, cancel the consumers and background tasks and wait for them (a consumer's
//! handlers in flight decide their messages), stop the admin server, flush NATS (the last
//! replies may still sit in the client's buffer), then run the shutdown hooks in the order
//! they were added (closing pools comes last, after nothing can use them any more).
//!
//! It must never know about a particular service or contract: those come in as descriptors,
//! endpoints, consumers and tasks. It reads no environment: the service passes the argument
//! groups it was configured with.

mod serving;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use telemetry::admin::{AdminServer, Check};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use serving::Serving;

type Starter = Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>;

/// A service being put together: its NATS connection, its stores, consumers and tasks.
/// [`Host::serve`] starts it.
#[must_use = "a Host does nothing until `serve` is called"]
pub struct Host {
    contract: &'static rpc::ServiceDescriptor,
    nats: async_nats::Client,
    limits: rpc::Limits,
    admin_addr: SocketAddr,
    checks: Vec<Arc<dyn Check>>,
    consumers: Vec<events::Consumer>,
    background: Vec<(String, Starter)>,
    on_shutdown: Vec<BoxFuture<'static, ()>>,
    settings: Option<settings::Settings>,
}

impl Host {
    /// Connects to NATS (`args.nats`) for the service `contract` describes (the client is
    /// named `<service>-service` in `nats server report connections`), with the admin address
    /// and request limits of `args`.
    ///
    /// It installs the Prometheus recorder, so the service's metrics are recorded from here on.
    pub async fn connect(
        contract: &'static rpc::ServiceDescriptor,
        args: &config::ServiceArgs,
    ) -> anyhow::Result<Self> {
        telemetry::metrics();
        let client = args
            .nats
            .connect(contract.name, &format!("{}-service", contract.name))
            .await?;
        Ok(Self::with_connection(contract, client, args))
    }

    /// Like [`Host::connect`], on a NATS connection the caller made.
    pub fn with_connection(
        contract: &'static rpc::ServiceDescriptor,
        nats: async_nats::Client,
        args: &config::ServiceArgs,
    ) -> Self {
        telemetry::metrics();
        Self {
            contract,
            checks: vec![telemetry::admin::nats_check(nats.clone())],
            nats,
            limits: limits(args),
            admin_addr: args.admin_addr(),
            consumers: Vec::new(),
            background: Vec::new(),
            on_shutdown: Vec::new(),
            settings: None,
        }
    }

    /// The service's name: `product`.
    pub fn name(&self) -> &'static str {
        self.contract.name
    }

    /// The NATS connection, for clients of other services.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// JetStream on the service's connection.
    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.nats.clone())
    }

    /// The platform's settings (pkg/settings): the `settings` bucket loaded (waiting a few
    /// seconds at most; the defaults apply until it answers) and watched until shutdown, so a
    /// change takes effect within a second. Every call answers the same live copy.
    pub async fn settings(&mut self) -> settings::Settings {
        if let Some(settings) = &self.settings {
            return settings.clone();
        }
        let stop = CancellationToken::new();
        let (settings, watcher) = settings::Settings::start(self.nats.clone(), stop.clone()).await;
        // Dropped unrun (a start that failed later), the guard still stops the watcher.
        let stop = stop.drop_guard();
        self.on_shutdown.push(Box::pin(async move {
            drop(stop);
            let _ = watcher.await;
        }));
        self.settings = Some(settings.clone());
        settings
    }

    /// The service's PostgreSQL database (`args`' URL, or the database named like the service
    /// on the dev stack's server), created if missing and migrated by `migrator`, its
    /// connections running with `args`' statement timeout. Its readiness check is added, and
    /// the pool is closed at the very end of shutdown.
    pub async fn postgres(
        &mut self,
        args: &config::PostgresArgs,
        migrator: &'static sqlx::migrate::Migrator,
    ) -> anyhow::Result<sqlx::PgPool> {
        let settings = db::postgres::PoolSettings {
            max_connections: args.max_connections,
            statement_timeout: args.statement_timeout(),
        };
        let pool = db::postgres::connect_with(
            &args.url_or_default(self.contract.name),
            &settings,
            migrator,
        )
        .await
        .context("connecting to PostgreSQL")?;
        self.checks.push(db::postgres::check(pool.clone()));
        let closing = pool.clone();
        self.on_shutdown
            .push(Box::pin(async move { closing.close().await }));
        Ok(pool)
    }

    /// Redis at `args`' URL, for a service that cannot be correct without it (sessions,
    /// limits). The service starts while Redis is down, connecting in the background, but is
    /// not ready (its `redis` check fails, `/health/ready` answers 503) until Redis answers.
    /// Only a URL or TLS setting that cannot work fails the start.
    pub async fn redis(
        &mut self,
        args: &config::RedisArgs,
    ) -> anyhow::Result<redis::aio::ConnectionManager> {
        let redis = redis_in_background(args)?;
        self.checks.push(db::redis::check(redis.clone()));
        Ok(redis)
    }

    /// Redis at `args`' URL, for a service that serves without it: a cache (product serves
    /// from its database through `db::cache::Cache`), or state only some methods need (auth's
    /// sessions: sign-in answers `unavailable` while keys, registration and accounts work).
    /// The service starts and stays ready while Redis is down, connecting in the background;
    /// readiness answers 200 with `"status": "degraded"` and the reason, so it stays in
    /// rotation while saying so. Only a URL or TLS setting that cannot work fails the start.
    pub fn redis_optional(
        &mut self,
        args: &config::RedisArgs,
    ) -> anyhow::Result<redis::aio::ConnectionManager> {
        let redis = redis_in_background(args)?;
        self.checks
            .push(telemetry::admin::optional(db::redis::check(redis.clone())));
        Ok(redis)
    }

    /// The MongoDB database at `url` (the one the URL names, or one named like the service),
    /// with its readiness check; the client shuts down at the end of shutdown.
    #[cfg(feature = "mongo")]
    pub async fn mongo(&mut self, url: &str) -> anyhow::Result<mongodb::Database> {
        let client = db::mongo::connect(url).await?;
        let database = client
            .default_database()
            .unwrap_or_else(|| client.database(self.contract.name));
        self.checks.push(db::mongo::check(client.clone()));
        self.on_shutdown
            .push(Box::pin(async move { client.shutdown().await }));
        Ok(database)
    }

    /// Makes the service a producer of the events its contract declares: the outbox tables in
    /// `pool`'s database and the event streams now, and the relay that publishes the outbox
    /// while the service runs. Events still in the outbox at shutdown are published by the
    /// next relay to run.
    pub async fn outbox(
        &mut self,
        pool: &sqlx::PgPool,
        args: &config::OutboxArgs,
    ) -> anyhow::Result<()> {
        let jetstream = self.jetstream();
        events::prepare_producer(pool, &jetstream, self.contract.name).await?;
        let config = events::RelayConfig::configured(self.contract.name, args);
        let pool = pool.clone();
        self.background("outbox relay", move |cancel| {
            events::Relay::spawn(pool, jetstream, config, cancel)
        });
        Ok(())
    }

    /// An event consumer. Its durable is created when the service starts (a failure stops the
    /// start), and it stops after requests are drained.
    pub fn consumer(&mut self, consumer: events::Consumer) {
        self.consumers.push(consumer);
    }

    /// A task that runs while the service serves. [`Host::serve`] calls `spawn` once the rpc
    /// service is registered; it must start the task (`tokio::spawn`) and return its handle.
    /// The task must end soon after its token is cancelled, which happens once requests are
    /// drained.
    pub fn background(
        &mut self,
        name: impl Into<String>,
        spawn: impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static,
    ) {
        self.background.push((name.into(), Box::new(spawn)));
    }

    /// A periodic job (a sweeper): `tick` runs every `interval`, the first time at once, while
    /// the service serves, and answers how much it did (what expired, what it deleted). A
    /// count above zero is logged with `what` ("expired reservations"); a failed tick is
    /// logged and tried again at the next one, so the job itself must leave nothing half done.
    pub fn every<F, Fut, E>(
        &mut self,
        name: &'static str,
        interval: Duration,
        what: &'static str,
        mut tick: F,
    ) where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<u64, E>> + Send,
        E: std::fmt::Debug,
    {
        self.background(name, move |stop| {
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = ticker.tick() => {}
                    }
                    match tick().await {
                        Ok(0) => {}
                        Ok(count) => tracing::info!(job = name, count, "{what}"),
                        Err(error) => tracing::warn!(job = name, error = ?error, "{name} failed; trying again at the next tick"),
                    }
                }
                tracing::debug!(job = name, "stopped");
            })
        });
    }

    /// Adds a readiness check to `/health/ready`, beside those of the stores.
    pub fn check(&mut self, check: Arc<dyn Check>) {
        self.checks.push(check);
    }

    /// Work for the very end of shutdown, after requests, consumers, background tasks and the
    /// admin server have stopped and NATS is flushed.
    pub fn on_shutdown(&mut self, hook: impl Future<Output = ()> + Send + 'static) {
        self.on_shutdown.push(Box::pin(hook));
    }

    /// Binds the admin port, starts the consumers, registers the contract's service with
    /// `endpoints` on NATS and starts the background tasks. Requests are served once this
    /// returns; if any step fails, what was started is stopped again.
    pub async fn serve(self, endpoints: Vec<rpc::Endpoint>) -> anyhow::Result<Serving> {
        let name = self.contract.name;
        let jetstream = self.jetstream();
        let admin = AdminServer::bind(self.admin_addr, self.checks).await?;
        let admin_addr = admin.local_addr();
        let stop = CancellationToken::new();
        // Stops whatever started if a later step fails.
        let stop_on_failure = stop.clone().drop_guard();

        let mut tasks = Vec::new();
        // A service with consumers serves the redrive of their dead letters.
        let durables: Vec<String> = self
            .consumers
            .iter()
            .filter_map(|c| c.durable().map(str::to_owned))
            .collect();
        let mut endpoints = endpoints;
        if !durables.is_empty() {
            endpoints.push(events::dead_letter::redrive_endpoint(
                jetstream.clone(),
                name,
                durables,
            ));
        }
        for consumer in self.consumers {
            let consumer_name = consumer.name().to_owned();
            let task = consumer
                .start(jetstream.clone(), stop.child_token())
                .await
                .with_context(|| format!("starting the {consumer_name}"))?;
            tasks.push((consumer_name, task));
        }
        let service = rpc::Service::of(self.contract)
            .endpoints(endpoints)
            .limits(self.limits)
            .readiness(admin.last_readiness())
            .start(self.nats.clone())
            .await
            .with_context(|| format!("starting the {name} service"))?;
        let admin = tokio::spawn(admin.run_until(stop.clone().cancelled_owned()));
        tasks.extend(
            self.background
                .into_iter()
                .map(|(task_name, spawn)| (task_name, spawn(stop.child_token()))),
        );
        stop_on_failure.disarm();
        tracing::info!(service = name, %admin_addr, "serving");
        Ok(Serving {
            name,
            nats: self.nats,
            service,
            admin,
            admin_addr,
            tasks,
            on_shutdown: self.on_shutdown,
            stop,
        })
    }
}

/// A Redis connection made, and remade after outages, in the background.
fn redis_in_background(args: &config::RedisArgs) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = db::redis::client(&args.redis_url, args.redis_tls_ca_file.as_deref())
        .context("configuring Redis")?;
    db::redis::connect_in_background(client).context("configuring Redis")
}

/// The request limits a service was configured with: `--max-in-flight` per endpoint and
/// `--request-timeout-ms` for requests that come without a deadline.
fn limits(args: &config::ServiceArgs) -> rpc::Limits {
    rpc::Limits {
        max_in_flight_per_endpoint: args.max_in_flight,
        default_timeout: args.request_timeout(),
        ..rpc::Limits::default()
    }
}
