//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use api::auth::UserRegistered;
use api::auth::events::USER_REGISTERED;
use api::user::{GetMyProfileRequest, Profile, UserClient};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use clap::Parser as _;
use rpc::{Context, Principal, roles};
use sqlx::PgPool;
use testkit::{NatsServer, Running, TestDatabase};
use user_service::{Application, Config};
use uuid::Uuid;

pub use testkit::{bad_fields, expect_error};

pub fn admin() -> Context {
    Context::background().with_principal(Principal {
        user_id: Uuid::now_v7().to_string(),
        roles: vec![roles::ADMIN.into()],
    })
}

/// A signed-in customer with this user id.
pub fn customer(user_id: &str) -> Context {
    Context::background().with_principal(Principal {
        user_id: user_id.to_owned(),
        roles: vec![roles::CUSTOMER.into()],
    })
}

/// A registered account: its id and the context of a request it makes.
pub struct User {
    pub id: String,
    pub ctx: Context,
}

pub struct TestApp {
    pub client: UserClient,
    pub jetstream: jetstream::Context,
    /// The service's own database, for checking what it stored.
    pub db: PgPool,
    /// Dropping it stops the application; the servers below are dropped after it, so they
    /// outlive the application.
    running: Option<Running>,
    _database: TestDatabase,
    _nats_server: NatsServer,
}

impl TestApp {
    pub async fn spawn() -> Self {
        telemetry::init_for_tests();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let database = testkit::fresh_database()
            .await
            .expect("creating a database");
        let mut config = Config::try_parse_from(["user-service"]).expect("default config");
        config.nats.nats_url = nats_server.url().to_owned();
        config.postgres.database_url = Some(database.url().to_owned());
        config.mongo.mongodb_url = None;
        config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let application = Application::build(config)
            .await
            .expect("building the application");
        let running = Running::spawn("user-service", |signal| application.run_until(signal));

        let nats = nats_server.connect().await;
        let jetstream = jetstream::new(nats.clone());
        // What the auth service does at its start-up.
        events::streams::ensure_for_producer(&jetstream, "auth", &Default::default())
            .await
            .expect("declaring the auth service's streams");
        let db = PgPool::connect(database.url())
            .await
            .expect("connecting to the test database");
        Self {
            client: UserClient::new(rpc::Client::new(nats)),
            jetstream,
            db,
            running: Some(running),
            _database: database,
            _nats_server: nats_server,
        }
    }

    /// Stops the service the way SIGTERM does, checks that it shut down cleanly, and that its
    /// consumer left no message undelivered or unacknowledged.
    pub async fn stop(mut self) {
        let running = self.running.take().expect("the application is running");
        running.stop().await;
        let info = self.consumer_info().await;
        assert_eq!(info.num_ack_pending, 0, "unacknowledged messages remain");
        assert_eq!(info.num_pending, 0, "undelivered messages remain");
    }

    /// The durable consumer of `user.registered`, as JetStream sees it.
    pub async fn consumer_info(&self) -> jetstream::consumer::Info {
        let durable =
            events::names::durable_name(api::user::SERVICE_NAME, &USER_REGISTERED).unwrap();
        let mut consumer: jetstream::consumer::Consumer<pull::Config> = self
            .jetstream
            .get_stream(events::names::stream_of(&USER_REGISTERED))
            .await
            .expect("the user event stream")
            .get_consumer(&durable)
            .await
            .expect("the user.registered consumer");
        consumer.info().await.expect("consumer info").clone()
    }

    /// Publishes `event` as the auth service's relay would: on its subject, with the event
    /// headers and `Nats-Msg-Id` = a fresh id. The stream sequence it got.
    pub async fn publish(&self, event: &UserRegistered, event_id: Uuid) -> u64 {
        let subject =
            events::names::subject(&USER_REGISTERED, &event.user_id).expect("an event subject");
        let mut headers = HeaderMap::new();
        headers.insert(events::headers::EVENT_ID, event_id.to_string().as_str());
        headers.insert(events::headers::EVENT_TYPE, USER_REGISTERED.name);
        headers.insert(
            events::headers::EVENT_VERSION,
            USER_REGISTERED.version.to_string().as_str(),
        );
        headers.insert(events::headers::PRODUCER, USER_REGISTERED.producer);
        headers.insert(events::headers::AGGREGATE_ID, event.user_id.as_str());
        headers.insert(events::headers::CONTENT_TYPE, events::headers::JSON);
        headers.insert(events::headers::MSG_ID, Uuid::now_v7().to_string().as_str());
        let payload = serde_json::to_vec(event).expect("encoding the event");
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .expect("publishing")
            .await
            .expect("the stream's ack");
        assert!(!ack.duplicate, "a fresh Nats-Msg-Id is never a duplicate");
        ack.sequence
    }

    /// Waits until the consumer has decided every message up to `sequence`.
    pub async fn handled(&self, sequence: u64) {
        let started = Instant::now();
        loop {
            let info = self.consumer_info().await;
            if info.ack_floor.stream_sequence >= sequence && info.num_ack_pending == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "message {sequence} not handled: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Registers an account with `email` (publishing its event) and waits for its profile.
    pub async fn register(&self, email: &str) -> User {
        let id = Uuid::now_v7().to_string();
        let event = registered(&id, email);
        let sequence = self.publish(&event, Uuid::now_v7()).await;
        self.handled(sequence).await;
        let user = User {
            ctx: customer(&id),
            id,
        };
        self.my_profile(&user).await.expect("the new profile");
        user
    }

    pub async fn my_profile(&self, user: &User) -> Result<Profile, rpc::Error> {
        self.client
            .get_my_profile(&user.ctx, &GetMyProfileRequest {})
            .await
    }

    /// The stored document and update time of `user_id`, exactly as stored.
    pub async fn stored(&self, user_id: &str) -> (String, String) {
        sqlx::query_as(
            "SELECT document::text, updated_at::text FROM profiles WHERE user_id = $1::uuid",
        )
        .bind(user_id)
        .fetch_one(&self.db)
        .await
        .expect("reading a stored profile")
    }

    pub async fn profile_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM profiles")
            .fetch_one(&self.db)
            .await
            .expect("counting profiles")
    }
}

pub fn registered(user_id: &str, email: &str) -> UserRegistered {
    UserRegistered {
        user_id: user_id.to_owned(),
        email: email.to_owned(),
        roles: vec![roles::CUSTOMER.into()],
        registered_at: Some(api::Timestamp {
            seconds: chrono::Utc::now().timestamp(),
            nanos: 0,
        }),
    }
}
