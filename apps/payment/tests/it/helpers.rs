//! `TestApp`: the service on private servers, and helpers that read like what a checkout or a
//! customer does.

use api::common::Money;
use api::payment::{
    AuthorizePaymentRequest, CapturePaymentRequest, CreatePaymentMethodRequest, GetPaymentRequest,
    Payment, PaymentClient, PaymentMethod, RefundPaymentRequest, VoidPaymentRequest,
};
use chrono::Datelike;
use payment_service::Config;
use rpc::Context;
use testkit::Harness;
use uuid::Uuid;

pub use testkit::callers::{admin, anonymous};
pub use testkit::{bad_fields, expect_error};

pub const APPROVED: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";
pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
pub const PROCESSING_ERROR: &str = "4000000000000119";

pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// A signed-in customer with this user id.
pub fn customer(user_id: &str) -> Context {
    testkit::callers::customer(user_id)
}

pub fn usd(minor_units: i64) -> Option<Money> {
    money(minor_units, "USD")
}

pub fn money(minor_units: i64, currency: &str) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: currency.into(),
    })
}

/// A card valid until December of next year.
pub fn card(number: &str) -> CreatePaymentMethodRequest {
    CreatePaymentMethodRequest {
        card_number: number.into(),
        exp_month: 12,
        exp_year: chrono::Utc::now().year() + 1,
        cvc: "987".into(),
    }
}

testkit::test_app!(TestApp, Config, PaymentClient);

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(payment_service::start, configure).await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
    }

    /// `user_id` turns the test card `number` into a payment method.
    pub async fn add_card(&self, user_id: &str, number: &str) -> PaymentMethod {
        self.client
            .create_payment_method(&customer(user_id), &card(number))
            .await
            .expect("creating a payment method")
    }

    /// A new user with a payment method of the test card `number`: `(user_id, method id)`.
    pub async fn user_with_card(&self, number: &str) -> (String, String) {
        let user_id = new_id();
        let method = self.add_card(&user_id, number).await;
        (user_id, method.id)
    }

    /// The checkout authorises `amount` USD cents for a new order.
    pub async fn authorize(
        &self,
        key: &str,
        user_id: &str,
        payment_method_id: &str,
        amount: i64,
    ) -> Result<Payment, rpc::Error> {
        self.authorize_request(&AuthorizePaymentRequest {
            idempotency_key: key.into(),
            order_id: new_id(),
            user_id: user_id.into(),
            payment_method_id: payment_method_id.into(),
            amount: usd(amount),
        })
        .await
    }

    pub async fn authorize_request(
        &self,
        request: &AuthorizePaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        self.client.authorize_payment(&anonymous(), request).await
    }

    /// An approved authorisation of `amount` with a fresh user, card and key.
    pub async fn authorized(&self, amount: i64) -> Payment {
        let (user, method) = self.user_with_card(APPROVED).await;
        let payment = self
            .authorize(&new_id(), &user, &method, amount)
            .await
            .expect("authorising");
        assert_eq!(payment.status, "authorized");
        payment
    }

    pub async fn capture(
        &self,
        key: &str,
        payment_id: &str,
        amount: Option<Money>,
    ) -> Result<Payment, rpc::Error> {
        let request = CapturePaymentRequest {
            idempotency_key: key.into(),
            payment_id: payment_id.into(),
            amount,
        };
        self.client.capture_payment(&anonymous(), &request).await
    }

    pub async fn void(&self, key: &str, payment_id: &str) -> Result<Payment, rpc::Error> {
        let request = VoidPaymentRequest {
            idempotency_key: key.into(),
            payment_id: payment_id.into(),
        };
        self.client.void_payment(&anonymous(), &request).await
    }

    pub async fn refund(
        &self,
        key: &str,
        payment_id: &str,
        amount: Option<Money>,
    ) -> Result<Payment, rpc::Error> {
        let request = RefundPaymentRequest {
            idempotency_key: key.into(),
            payment_id: payment_id.into(),
            amount,
        };
        self.client.refund_payment(&anonymous(), &request).await
    }

    /// The payment as an admin sees it, with its ledger.
    pub async fn get(&self, id: &str) -> Payment {
        self.client
            .get_payment(&admin(), &GetPaymentRequest { id: id.into() })
            .await
            .expect("reading a payment")
    }

    /// `SELECT count(*)` of `sql`.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db())
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// How many calls reached the simulated provider's memory with `key`.
    pub async fn provider_calls_with(&self, key: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM simulated_provider_operations WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_one(self.db())
        .await
        .unwrap()
    }

    /// The ledger's entries with `key`: `(operation, outcome)`, oldest first.
    pub async fn ledger_with(&self, key: &str) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT operation, outcome FROM payment_ledger WHERE idempotency_key = $1 \
             ORDER BY at, id",
        )
        .bind(key)
        .fetch_all(self.db())
        .await
        .unwrap()
    }

    /// The event types published for payment `id`, in stream order, once there are `count`.
    pub async fn events_for(&self, id: &str, count: usize) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            let stream = self
                .jetstream
                .get_stream(events::names::stream_of(
                    &api::payment::events::PAYMENT_AUTHORIZED,
                ))
                .await
                .expect("the payment stream exists");
            let last = stream.get_info().await.unwrap().state.last_sequence;
            let mut types = Vec::new();
            for sequence in 1..=last {
                let message = stream.get_raw_message(sequence).await.unwrap();
                let aggregate = message.headers.get(events::headers::AGGREGATE_ID);
                if aggregate.map(|v| v.as_str()) == Some(id) {
                    let event_type = message.headers.get(events::headers::EVENT_TYPE).unwrap();
                    types.push(event_type.as_str().to_owned());
                }
            }
            if types.len() >= count {
                return types;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{} of {count} events of payment {id} published: {types:?}",
                types.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
