//! `TestApp`: the service on private servers with an SMTP server beside it, and helpers that
//! read like what happens on the platform (an account registers, an order is paid).

use std::time::{Duration, Instant};

use api::EventDescriptor;
use api::auth::UserRegistered;
use api::auth::events::USER_REGISTERED;
use api::common::Money;
use api::notification::NotificationClient;
use api::order::{Order, OrderLine, OrderPaid, SubOrder};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use notification_service::Config;
use rpc::{Context, roles};
use testkit::{Harness, ReceivedMail, SmtpServer};
use uuid::Uuid;

pub use testkit::callers::customer;
pub use testkit::{bad_fields, expect_error};

/// How long a test waits for something the service does in the background.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Every event the service consumes, for the end-of-test check that all were decided.
const CONSUMED: [EventDescriptor; 8] = [
    USER_REGISTERED,
    api::auth::events::USER_EMAIL_VERIFICATION_REQUESTED,
    api::auth::events::USER_PASSWORD_RESET_REQUESTED,
    api::order::events::ORDER_PAID,
    api::order::events::ORDER_FAILED,
    api::order::events::ORDER_CANCELLED,
    api::order::events::ORDER_REFUNDED,
    api::order::events::SUBORDER_SHIPPED,
];

/// A registered account: its id, email and the context of a request it makes.
pub struct User {
    pub id: String,
    pub email: String,
    pub ctx: Context,
}

/// The service, its servers, the client the tests call it with, and the SMTP server it sends
/// to.
pub struct TestApp {
    pub client: NotificationClient,
    pub harness: Harness<Config>,
    pub smtp: SmtpServer,
}

impl std::ops::Deref for TestApp {
    type Target = Harness<Config>;

    fn deref(&self) -> &Self::Target {
        &self.harness
    }
}

impl TestApp {
    /// The service with a running SMTP server.
    pub async fn spawn() -> Self {
        let smtp = SmtpServer::start().await.expect("starting the SMTP server");
        Self::spawn_with(smtp).await
    }

    /// The service sending to `smtp`, which may not be running yet. Retries are quick here, so
    /// a test sees several of them in little time.
    pub async fn spawn_with(smtp: SmtpServer) -> Self {
        Self::spawn_configured(smtp, |_| {}).await
    }

    /// Like [`TestApp::spawn_with`], with `configure` adjusting the configuration last.
    pub async fn spawn_configured(
        smtp: SmtpServer,
        configure: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Self {
        let url = smtp.url();
        let harness = Harness::start(notification_service::start, move |config: &mut Config| {
            config.mail.smtp_url = url.parse().expect("the SMTP server's URL");
            config.mail.public_base_url = "https://shop.example/".parse().unwrap();
            config.mail.email_retry_base_ms = 50;
            config.mail.email_retry_max_ms = 400;
            config.mail.email_poll_ms = 50;
            config.mail.smtp_timeout_ms = 2_000;
            configure(config);
        })
        .await;
        // What the producers do at their start-up.
        for producer in ["auth", "order"] {
            events::streams::ensure_for_producer(&harness.jetstream, producer, &Default::default())
                .await
                .expect("declaring a producer's streams");
        }
        Self {
            client: NotificationClient::new(rpc::Client::new(harness.nats.clone())),
            harness,
            smtp,
        }
    }

    /// Stops the service the way SIGTERM does, checks that it shut down cleanly and that its
    /// consumers left no message undelivered or unacknowledged.
    pub async fn stop(mut self) {
        self.harness.stop_service().await;
        for event in &CONSUMED {
            let info = self.consumer_info(event).await;
            assert_eq!(
                info.num_ack_pending, 0,
                "{}: unacknowledged messages remain",
                event.name
            );
            assert_eq!(
                info.num_pending, 0,
                "{}: undelivered messages remain",
                event.name
            );
        }
        self.harness.stop().await;
    }

    /// The service's durable consumer of `event`, as JetStream sees it.
    pub async fn consumer_info(&self, event: &EventDescriptor) -> jetstream::consumer::Info {
        let durable = events::names::durable_name(api::notification::SERVICE_NAME, event).unwrap();
        let mut consumer: jetstream::consumer::Consumer<pull::Config> = self
            .jetstream
            .get_stream(events::names::stream_of(event))
            .await
            .expect("the event stream")
            .get_consumer(&durable)
            .await
            .expect("the service's durable consumer");
        consumer.info().await.expect("consumer info").clone()
    }

    /// Publishes `payload` as its producer's relay would: on its subject, with the event
    /// headers, event id `event_id` and a fresh `Nats-Msg-Id` (so the stream keeps a second
    /// copy of the same event: to the consumer it is a redelivery). The stream sequence.
    pub async fn publish<E: serde::Serialize>(
        &self,
        event: &EventDescriptor,
        aggregate_id: &str,
        payload: &E,
        event_id: Uuid,
    ) -> u64 {
        let subject = events::names::subject(event, aggregate_id).expect("an event subject");
        let mut headers = HeaderMap::new();
        headers.insert(events::headers::EVENT_ID, event_id.to_string().as_str());
        headers.insert(events::headers::EVENT_TYPE, event.name);
        headers.insert(
            events::headers::EVENT_VERSION,
            event.version.to_string().as_str(),
        );
        headers.insert(events::headers::PRODUCER, event.producer);
        headers.insert(events::headers::AGGREGATE_ID, aggregate_id);
        headers.insert(events::headers::CONTENT_TYPE, events::headers::JSON);
        headers.insert(events::headers::MSG_ID, Uuid::now_v7().to_string().as_str());
        let body = serde_json::to_vec(payload).expect("encoding the event");
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .expect("publishing")
            .await
            .expect("the stream's ack");
        ack.sequence
    }

    /// Waits until the consumer of `event` has decided every message up to `sequence`.
    pub async fn handled(&self, event: &EventDescriptor, sequence: u64) {
        let started = Instant::now();
        loop {
            let info = self.consumer_info(event).await;
            if info.ack_floor.stream_sequence >= sequence && info.num_ack_pending == 0 {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{} message {sequence} not handled: {info:?}",
                event.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes an event and waits until it was handled.
    pub async fn deliver<E: serde::Serialize>(
        &self,
        event: &EventDescriptor,
        aggregate_id: &str,
        payload: &E,
        event_id: Uuid,
    ) {
        let sequence = self.publish(event, aggregate_id, payload, event_id).await;
        self.handled(event, sequence).await;
    }

    /// An account registers (its `user.registered` is handled).
    pub async fn register(&self, email: &str) -> User {
        self.register_as(&Uuid::now_v7().to_string(), email).await
    }

    /// The account `id` registers.
    pub async fn register_as(&self, id: &str, email: &str) -> User {
        let id = id.to_owned();
        let event = UserRegistered {
            user_id: id.clone(),
            email: email.to_owned(),
            roles: vec![roles::CUSTOMER.into()],
            registered_at: Some(now()),
        };
        self.deliver(&USER_REGISTERED, &id, &event, Uuid::now_v7())
            .await;
        User {
            ctx: customer(&id),
            email: email.to_owned(),
            id,
        }
    }

    /// `user` pays an order (its `order.paid` is handled); the order.
    pub async fn pay_order(&self, user: &User) -> Order {
        let order = paid_order(&user.id);
        let event = OrderPaid {
            order: Some(order.clone()),
        };
        self.deliver(
            &api::order::events::ORDER_PAID,
            &order.id,
            &event,
            Uuid::now_v7(),
        )
        .await;
        order
    }

    /// Waits until no email is pending (every one sent or failed), then returns what the SMTP
    /// server received.
    pub async fn settled_mail(&self) -> Vec<ReceivedMail> {
        let started = Instant::now();
        loop {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'pending'",
            )
            .fetch_one(self.db())
            .await
            .unwrap();
            if pending == 0 {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{pending} emails still pending"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.smtp.messages()
    }

    /// The service's `/metrics`, from its admin port.
    pub async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.admin_addr())
            .await
            .unwrap();
        let request = "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }

    /// The email rows as (kind, status, attempts), oldest first.
    pub async fn email_rows(&self) -> Vec<(String, String, i32)> {
        sqlx::query_as(
            "SELECT kind, status, attempts FROM notifications WHERE channel = 'email' ORDER BY id",
        )
        .fetch_all(self.db())
        .await
        .unwrap()
    }
}

/// The messages among `mail` whose subject contains `words`.
pub fn with_subject<'a>(mail: &'a [ReceivedMail], words: &str) -> Vec<&'a ReceivedMail> {
    mail.iter()
        .filter(|message| message.header("subject").is_some_and(|s| s.contains(words)))
        .collect()
}

pub fn now() -> api::Timestamp {
    api::Timestamp {
        seconds: chrono::Utc::now().timestamp(),
        nanos: 0,
    }
}

pub fn usd(minor_units: i64) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: "USD".into(),
    })
}

/// A paid order of `user_id` with two lines in one sub-order: 2 x 12.50 and 1 x 18.99,
/// a 5.00 discount, 4.99 shipping and 3.52 tax, 47.50 in all.
pub fn paid_order(user_id: &str) -> Order {
    let id = Uuid::now_v7().to_string();
    let lines = vec![
        OrderLine {
            product_id: Uuid::now_v7().to_string(),
            name: "Espresso cup".into(),
            unit_price: usd(1250),
            quantity: 2,
            line_total: usd(2500),
        },
        OrderLine {
            product_id: Uuid::now_v7().to_string(),
            name: "Coffee beans <1kg> & more".into(),
            unit_price: usd(1899),
            quantity: 1,
            line_total: usd(1899),
        },
    ];
    Order {
        id: id.clone(),
        user_id: user_id.to_owned(),
        status: "paid".into(),
        currency: "USD".into(),
        subtotal: usd(4399),
        discount: usd(500),
        shipping: usd(499),
        tax: usd(352),
        total: usd(4750),
        sub_orders: vec![SubOrder {
            id: Uuid::now_v7().to_string(),
            order_id: id,
            shop_id: Uuid::now_v7().to_string(),
            status: "paid".into(),
            lines,
            total: usd(4750),
            ..Default::default()
        }],
        ..Default::default()
    }
}
