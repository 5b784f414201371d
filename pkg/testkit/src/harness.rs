//! A service under test: its servers started, its configuration filled in, the service itself
//! running on a task, and what a test reads back (its database, its events).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::StreamMessage};
use futures::future::LocalBoxFuture;
use sqlx::PgPool;

use crate::{AppTask, NatsServer, RedisServer, TestDatabase};

/// How a service starts: its crate's `start(config)`. The future is awaited where it is made,
/// so it need not be `Send` (an `async fn` holding a sqlx connection across an await often
/// cannot prove it is for every lifetime).
type Start<C> =
    Box<dyn Fn(C) -> LocalBoxFuture<'static, anyhow::Result<host::Serving>> + Send + Sync>;

/// The private servers a service's configuration asks for: always a nats-server with
/// JetStream; a fresh PostgreSQL database when it takes `--database-url`; a Redis server when
/// it takes `--redis-url`. MongoDB is never started (document services fall back to
/// PostgreSQL JSONB without `--mongodb-url`).
pub struct Servers {
    pub nats: NatsServer,
    pub database: Option<TestDatabase>,
    pub redis: Option<RedisServer>,
}

impl Servers {
    /// Starts the servers `C`'s flags name.
    pub async fn for_config<C: clap::CommandFactory>() -> Self {
        let command = C::command();
        let takes = |flag: &str| command.get_arguments().any(|a| a.get_long() == Some(flag));
        let nats = NatsServer::start().await.expect("starting nats-server");
        let database = match takes("database-url") {
            true => Some(
                crate::fresh_database()
                    .await
                    .expect("creating a test database"),
            ),
            false => None,
        };
        let redis = match takes("redis-url") {
            true => Some(RedisServer::start().await.expect("starting redis-server")),
            false => None,
        };
        Self {
            nats,
            database,
            redis,
        }
    }

    /// `C` with its defaults, these servers' addresses, and a free admin port.
    pub fn config<C: clap::Parser>(&self) -> C {
        config_on::<C>(&self.nats, self.database.as_ref(), self.redis.as_ref())
    }
}

/// `C` with its defaults, the given servers' addresses, its own NATS identity and a free
/// admin port.
fn config_on<C: clap::Parser>(
    nats: &NatsServer,
    database: Option<&TestDatabase>,
    redis: Option<&RedisServer>,
) -> C {
    let command = C::command();
    let program = command.get_name().to_owned();
    let mut args = vec![
        program.clone(),
        "--nats-url".to_owned(),
        nats.url().to_owned(),
        "--admin-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let identity = identity_of(&program);
    if let Some(seed) = nats.credentials().seed_file(&identity) {
        args.push("--nats-nkey-file".to_owned());
        args.push(seed.display().to_string());
    }
    if let Some(database) = database {
        args.extend(["--database-url".to_owned(), database.url().to_owned()]);
    }
    if let Some(redis) = redis {
        args.extend(["--redis-url".to_owned(), redis.url().to_owned()]);
    }
    C::try_parse_from(args).expect("the service's configuration for the test servers")
}

/// The NATS identity and contract name of a service program: `gift-card-service` connects
/// as `gift_card`.
fn identity_of(program: &str) -> String {
    program
        .strip_suffix("-service")
        .unwrap_or(program)
        .replace('-', "_")
}

/// Waits until `service`'s methods have a responder on NATS: a service's `start` returns
/// once its subscriptions are sent, which is not yet once the server routes to them, and a
/// test's first request could otherwise find nobody answering. It probes the method the
/// service subscribes to last (the server takes one connection's subscriptions in order), with
/// a payload no method decodes, answered `invalid_argument` before any handler runs.
pub async fn wait_until_answering(nats: &async_nats::Client, service: &str) {
    let Some(method) = api::contract(service).and_then(|c| c.methods.last()) else {
        return;
    };
    let started = Instant::now();
    {
        loop {
            match nats
                .request(method.subject, b"\x00probe".to_vec().into())
                .await
            {
                Err(error)
                    if error.kind() == async_nats::client::RequestErrorKind::NoResponders =>
                {
                    assert!(
                        started.elapsed() < Duration::from_secs(10),
                        "nobody answers on {} after 10 s",
                        method.subject
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => break,
            }
        }
    }
}

/// Another service running beside the one under test (one it calls, or one that calls it):
/// on the same nats-server under its own identity, with its own fresh database and Redis
/// when its configuration takes them. Stops with [`Companion::stop`], or when dropped.
pub struct Companion {
    task: Option<ServiceTask>,
    _database: Option<TestDatabase>,
    _redis: Option<RedisServer>,
}

impl Companion {
    /// Starts the service `start` starts (its crate's `start(config)`) on `nats`, after
    /// `configure` adjusts its configuration.
    pub async fn start<C, Fut>(
        nats: &NatsServer,
        start: impl FnOnce(C) -> Fut,
        configure: impl FnOnce(&mut C),
    ) -> Self
    where
        C: clap::Parser,
        Fut: Future<Output = anyhow::Result<host::Serving>>,
    {
        let command = C::command();
        let takes = |flag: &str| command.get_arguments().any(|a| a.get_long() == Some(flag));
        let database = match takes("database-url") {
            true => Some(
                crate::fresh_database()
                    .await
                    .expect("creating a test database"),
            ),
            false => None,
        };
        let redis = match takes("redis-url") {
            true => Some(RedisServer::start().await.expect("starting redis-server")),
            false => None,
        };
        let mut config = config_on::<C>(nats, database.as_ref(), redis.as_ref());
        configure(&mut config);
        let task = ServiceTask::start(start(config)).await;
        wait_until_answering(&nats.connect().await, &identity_of(command.get_name())).await;
        Self {
            task: Some(task),
            _database: database,
            _redis: redis,
        }
    }

    /// Where its admin server (health, metrics) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.task
            .as_ref()
            .expect("the companion is running")
            .admin_addr()
    }

    /// Stops the service the way SIGTERM does; panics unless it shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.stop().await;
        }
    }
}

/// A started service on a task of its own, and the admin address it bound.
pub struct ServiceTask {
    task: AppTask,
    admin_addr: SocketAddr,
}

impl ServiceTask {
    /// Awaits `started` (a service's `start(config)`) and runs the service until stopped.
    pub async fn start(started: impl Future<Output = anyhow::Result<host::Serving>>) -> Self {
        let serving = started.await.expect("starting the service");
        let admin_addr = serving.admin_addr();
        let name = serving.name();
        Self {
            task: AppTask::spawn(name, |signal| serving.run_until(signal)),
            admin_addr,
        }
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Stops the service the way SIGTERM does; panics unless it shut down cleanly.
    pub async fn stop(self) {
        self.task.stop().await;
    }
}

/// A service under test. Build it with [`Harness::start`], use it through the fields and
/// helpers, and end the test with [`Harness::stop`], which checks the service stopped
/// cleanly. Dropped without it (a failed test), the service and its servers go away too.
pub struct Harness<C> {
    /// The configuration the service was started with.
    pub config: C,
    /// A client connection of the test's own.
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    db: Option<PgPool>,
    start: Start<C>,
    /// Dropped before the servers, so they outlive the service.
    service: Option<ServiceTask>,
    pub servers: Servers,
}

impl<C: clap::Parser + Clone + Send + 'static> Harness<C> {
    /// Starts the servers `C` asks for, fills them into `C`'s defaults, lets `configure`
    /// adjust the result, and starts the service with `start` (the service crate's
    /// `start(config)`).
    pub async fn start<F, Fut>(start: F, configure: impl FnOnce(&mut C)) -> Self
    where
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<host::Serving>> + 'static,
    {
        telemetry::init_for_tests();
        let servers = Servers::for_config::<C>().await;
        let mut config = servers.config::<C>();
        configure(&mut config);
        let start: Start<C> = Box::new(move |config| Box::pin(start(config)));
        let service = ServiceTask::start(start(config.clone())).await;
        let nats = servers.nats.connect().await;
        wait_until_answering(&nats, &identity_of(C::command().get_name())).await;
        let db = match &servers.database {
            Some(database) => Some(
                PgPool::connect(database.url())
                    .await
                    .expect("connecting to the test database"),
            ),
            None => None,
        };
        Self {
            config,
            jetstream: jetstream::new(nats.clone()),
            nats,
            db,
            start,
            service: Some(service),
            servers,
        }
    }

    /// The service's own database, for checking what it stored.
    pub fn db(&self) -> &PgPool {
        self.db
            .as_ref()
            .expect("the service has no PostgreSQL database")
    }

    /// Where the service's admin server (health, metrics) listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.service
            .as_ref()
            .expect("the service is running")
            .admin_addr()
    }

    /// Another service beside this one, on the same nats-server (see [`Companion`]).
    pub async fn companion<D, Fut>(
        &self,
        start: impl FnOnce(D) -> Fut,
        configure: impl FnOnce(&mut D),
    ) -> Companion
    where
        D: clap::Parser,
        Fut: Future<Output = anyhow::Result<host::Serving>>,
    {
        Companion::start(&self.servers.nats, start, configure).await
    }

    /// Another replica of the service, on the same servers and configuration.
    pub async fn start_replica(&self) -> ServiceTask {
        ServiceTask::start((self.start)(self.config.clone())).await
    }

    /// Stops the service the way SIGTERM does and checks it shut down cleanly; the servers
    /// keep running.
    pub async fn stop_service(&mut self) {
        let service = self.service.take().expect("the service is running");
        service.stop().await;
    }

    /// Stops the service (see [`Harness::stop_service`]) unless a test stopped it already,
    /// then the servers; panics if NATS refused the service anything it did (a permission its
    /// contract does not give it).
    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.stop().await;
        }
        let violations = self.servers.nats.violations();
        assert!(
            violations.is_empty(),
            "NATS refused the service (pkg/trust makes its permissions from its contract):\n{}",
            violations.join("\n")
        );
    }

    /// Every message of `event`'s type in its stream now, oldest first.
    pub async fn events_of(&self, event: &api::EventDescriptor) -> Vec<StreamMessage> {
        let stream = self
            .jetstream
            .get_stream(events::names::stream_of(event))
            .await
            .expect("the event stream exists");
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut messages = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let event_type = message.headers.get(events::headers::EVENT_TYPE);
            if event_type.map(|v| v.as_str()) == Some(event.name) {
                messages.push(message);
            }
        }
        messages
    }

    /// The messages of `event`'s type in its stream, once `count` of them have arrived (the
    /// relay publishes shortly after the commit); fails after ten seconds.
    pub async fn published(
        &self,
        event: &api::EventDescriptor,
        count: usize,
    ) -> Vec<StreamMessage> {
        let started = Instant::now();
        loop {
            let messages = self.events_of(event).await;
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} of {count} {} events published",
                messages.len(),
                event.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Declares a crate's `TestApp`: the service's typed client beside its [`Harness`], usable as
/// the harness itself (`app.db()`, `app.nats`, `app.published(..)`, through `Deref`).
/// `TestApp::new(harness)` makes the client on the harness's connection.
///
/// ```ignore
/// testkit::test_app!(TestApp, product_service::Config, api::product::ProductClient);
/// ```
#[macro_export]
macro_rules! test_app {
    ($app:ident, $config:ty, $client:ty) => {
        /// The service on private servers, and the client the tests call it with.
        pub struct $app {
            pub client: $client,
            harness: $crate::Harness<$config>,
        }

        impl $app {
            fn new(harness: $crate::Harness<$config>) -> Self {
                Self {
                    client: <$client>::new(::rpc::Client::new(harness.nats.clone())),
                    harness,
                }
            }
        }

        impl ::std::ops::Deref for $app {
            type Target = $crate::Harness<$config>;

            fn deref(&self) -> &Self::Target {
                &self.harness
            }
        }

        impl ::std::ops::DerefMut for $app {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.harness
            }
        }
    };
}
