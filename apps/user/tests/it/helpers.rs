//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use std::time::{Duration, Instant};

use api::auth::UserRegistered;
use api::auth::events::USER_REGISTERED;
use api::user::{GetMyProfileRequest, Profile, UserClient};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use rpc::{Context, roles};
use testkit::Harness;
use user_service::Config;
use uuid::Uuid;

pub use testkit::{bad_fields, expect_error};

pub use testkit::callers::{admin, customer};

/// A registered account: its id and the context of a request it makes.
pub struct User {
    pub id: String,
    pub ctx: Context,
}

testkit::test_app!(TestApp, Config, UserClient);

impl TestApp {
    /// The service with its profiles in PostgreSQL (no `--mongodb-url`).
    pub async fn spawn() -> Self {
        let harness = Harness::start(user_service::start, |config: &mut Config| {
            config.mongo.mongodb_url = None;
        })
        .await;
        // What the auth service does at its start-up.
        events::streams::ensure_for_producer(&harness.jetstream, "auth", &Default::default())
            .await
            .expect("declaring the auth service's streams");
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does, checks that it shut down cleanly, and that its
    /// consumer left no message undelivered or unacknowledged.
    pub async fn stop(mut self) {
        self.harness.stop_service().await;
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
        .fetch_one(self.db())
        .await
        .expect("reading a stored profile")
    }

    pub async fn profile_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM profiles")
            .fetch_one(self.db())
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
