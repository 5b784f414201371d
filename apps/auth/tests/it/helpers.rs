//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::net::SocketAddr;
use std::time::Duration;

use api::auth::{
    AuthClient, GetJwksRequest, LoginRequest, RefreshRequest, RegisterRequest, RegisterResponse,
    TokenPair,
};
use auth_service::{Application, Config};
use clap::Parser as _;
use rpc::{Context, ErrorCode, Principal, roles};
use sqlx::PgPool;
use testkit::{NatsServer, RedisServer, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A password that meets the policy.
pub const PASSWORD: &str = "correct horse battery";

pub fn admin() -> Context {
    Context::background().with_principal(Principal {
        user_id: "admin-1".into(),
        roles: vec![roles::ADMIN.into()],
    })
}

pub fn customer() -> Context {
    Context::background().with_principal(Principal {
        user_id: "customer-1".into(),
        roles: vec![roles::CUSTOMER.into()],
    })
}

pub fn anonymous() -> Context {
    Context::background()
}

/// A request as the gateway forwards it from the HTTP client at `ip`.
pub fn from_client(ip: &str) -> Context {
    Context::background().with_client_ip(ip)
}

/// Asserts `result` failed with `code`, and returns the error.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, rpc::Error>,
    code: ErrorCode,
) -> rpc::Error {
    match result {
        Ok(value) => panic!("expected {code}, got {value:?}"),
        Err(error) => {
            assert_eq!(error.code(), code, "{error}");
            error
        }
    }
}

/// The fields an `invalid_argument` error names, in order.
pub fn bad_fields(error: &rpc::Error) -> Vec<&str> {
    assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
    error.details().iter().map(|d| d.field.as_str()).collect()
}

pub struct TestApp {
    pub client: AuthClient,
    pub nats: async_nats::Client,
    /// The service's own database, for checking what it stored.
    pub db: PgPool,
    pub config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the servers outlive the application.
    _database: TestDatabase,
    _redis: RedisServer,
    _nats_server: NatsServer,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        telemetry::init_for_tests();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let redis = RedisServer::start().await.expect("starting redis");
        let database = testkit::fresh_database()
            .await
            .expect("creating a database");
        let mut config = Config::try_parse_from(["auth-service"]).expect("default config");
        config.nats.nats_url = nats_server.url().to_owned();
        config.redis.redis_url = redis.url().to_owned();
        config.postgres.database_url = Some(database.url().to_owned());
        config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.outbox_poll_interval_ms = 100;
        // Tests that are not about limits must not trip them.
        config.login_failures_per_account = 1_000;
        config.login_attempts_per_client = 1_000;
        configure(&mut config);

        let (shutdown, running) = start(config.clone()).await;
        let nats = nats_server.connect().await;
        let db = PgPool::connect(database.url())
            .await
            .expect("connecting to the test database");
        Self {
            client: AuthClient::new(rpc::Client::new(nats.clone())),
            nats,
            db,
            config,
            shutdown: Some(shutdown),
            running: Some(running),
            _database: database,
            _redis: redis,
            _nats_server: nats_server,
        }
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let running = self.running.take().expect("the application is running");
        running
            .await
            .expect("the application task panicked")
            .expect("the application shut down with an error");
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
    ) -> Result<RegisterResponse, rpc::Error> {
        self.client
            .register(
                &anonymous(),
                &RegisterRequest {
                    email: email.into(),
                    password: password.into(),
                },
            )
            .await
    }

    pub async fn login_from(
        &self,
        ctx: &Context,
        email: &str,
        password: &str,
    ) -> Result<TokenPair, rpc::Error> {
        self.client
            .login(
                ctx,
                &LoginRequest {
                    email: email.into(),
                    password: password.into(),
                },
            )
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair, rpc::Error> {
        self.login_from(&anonymous(), email, password).await
    }

    /// Registers `email` with [`PASSWORD`] and logs in.
    pub async fn signed_up(&self, email: &str) -> TokenPair {
        self.register(email, PASSWORD).await.expect("registering");
        self.login(email, PASSWORD).await.expect("logging in")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, rpc::Error> {
        self.client
            .refresh(
                &anonymous(),
                &RefreshRequest {
                    refresh_token: refresh_token.into(),
                },
            )
            .await
    }

    /// A verifier built from the key set the service publishes, as the gateway builds it.
    pub async fn verifier(&self) -> auth::Verifier {
        let set = self
            .client
            .get_jwks(&anonymous(), &GetJwksRequest {})
            .await
            .expect("reading the key set");
        let jwks = auth::Jwks::from_json(&serde_json::to_vec(&set).unwrap()).unwrap();
        auth::Verifier::new(&jwks, auth::DEFAULT_ISSUER, auth::DEFAULT_AUDIENCE).unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db).await.unwrap()
    }

    /// The messages of `event`'s type in its stream, oldest first, once `count` of them have
    /// arrived (the relay publishes shortly after the commit); fails after a few seconds.
    pub async fn published(
        &self,
        event: &api::EventDescriptor,
        count: usize,
    ) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let started = std::time::Instant::now();
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

    /// Every message of `event`'s type in its stream now.
    pub async fn events_of(
        &self,
        event: &api::EventDescriptor,
    ) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let jetstream = async_nats::jetstream::new(self.nats.clone());
        let stream = jetstream
            .get_stream(events::names::stream_of(event))
            .await
            .expect("the event stream exists");
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut messages = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let event_type = message
                .headers
                .get(events::headers::EVENT_TYPE)
                .map(|v| v.as_str().to_owned());
            if event_type.as_deref() == Some(event.name) {
                messages.push(message);
            }
        }
        messages
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Builds the application and runs it on a task until the returned sender fires.
pub async fn start(config: Config) -> (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let application = Application::build(config)
        .await
        .expect("building the application");
    let (shutdown, signal) = oneshot::channel::<()>();
    let running = tokio::spawn(application.run_until(async {
        let _ = signal.await;
    }));
    (shutdown, running)
}
