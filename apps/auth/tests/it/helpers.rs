//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::net::SocketAddr;
use std::time::Duration;

use api::auth::{
    AuthClient, GetJwksRequest, LoginRequest, RefreshRequest, RegisterRequest, RegisterResponse,
    TokenPair,
};
use auth_service::{Application, Config};
use clap::Parser as _;
use rpc::{Context, Principal, roles};
use sqlx::PgPool;
use testkit::{NatsServer, RedisServer, Running, TestDatabase};

pub use testkit::{bad_fields, expect_error};

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

pub struct TestApp {
    pub client: AuthClient,
    pub nats: async_nats::Client,
    /// The service's own database, for checking what it stored.
    pub db: PgPool,
    pub config: Config,
    /// Dropping it stops the application; the servers below are dropped after it, so they
    /// outlive the application.
    running: Running,
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
        config.outbox.outbox_poll_interval_ms = 100;
        // Tests that are not about limits must not trip them.
        config.login_failures_per_account = 1_000;
        config.login_attempts_per_client = 1_000;
        configure(&mut config);

        let running = start(config.clone()).await;
        let nats = nats_server.connect().await;
        let db = PgPool::connect(database.url())
            .await
            .expect("connecting to the test database");
        Self {
            client: AuthClient::new(rpc::Client::new(nats.clone())),
            nats,
            db,
            config,
            running,
            _database: database,
            _redis: redis,
            _nats_server: nats_server,
        }
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.running.stop().await;
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

/// Builds the application and runs it on a task until stopped.
pub async fn start(config: Config) -> Running {
    let application = Application::build(config)
        .await
        .expect("building the application");
    Running::spawn("auth-service", |signal| application.run_until(signal))
}
