//! The payment provider: what the service asks of a card processor, and the simulated one
//! built in.
//!
//! Every money-moving call carries the caller's idempotency key. A real adapter passes it on
//! to its processor (Stripe's `Idempotency-Key`, Adyen's `idempotencyKey`), so that a call
//! repeated after a crash between the processor's answer and this service's commit is answered
//! from the processor's memory instead of charging again. [`SimulatedProvider`] keeps such a
//! memory itself, in a table of its own.
//!
//! A decline is a result ([`ProviderResult::Declined`]), not an error: the processor answered,
//! and the answer is final for its key. [`ProviderError::Processing`] means the processor did not
//! answer (or answered that it failed): nothing is known to have happened and the key may be
//! tried again.
//!
//! This module must never see a card number after [`PaymentProvider::register_card`]: the
//! service keeps only the token it returns.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;
use vocab::Money;

use crate::domain::{CardNumber, DeclineCode};

/// A provider call in flight.
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A card processor, as the service uses one. Object-safe: the service holds an
/// `Arc<dyn PaymentProvider>`.
pub trait PaymentProvider: Send + Sync + 'static {
    /// Hands the card to the provider and returns its token for it. A card the provider will
    /// not take is [`ProviderError::CardNotAccepted`].
    fn register_card<'a>(&'a self, card: &'a CardNumber) -> ProviderFuture<'a, CardToken>;

    /// Holds `call.amount` on the card.
    fn authorize<'a>(&'a self, call: &'a AuthorizeCall) -> ProviderFuture<'a, ProviderResult>;

    /// Takes `call.amount` (at most what was held) of an authorisation.
    fn capture<'a>(&'a self, call: &'a CaptureCall) -> ProviderFuture<'a, ProviderResult>;

    /// Lifts the hold of an authorisation that was not captured.
    fn void<'a>(&'a self, call: &'a VoidCall) -> ProviderFuture<'a, ProviderResult>;

    /// Gives back `call.amount` of what was captured: all of it or a part.
    fn refund<'a>(&'a self, call: &'a RefundCall) -> ProviderFuture<'a, ProviderResult>;
}

/// The provider's name for a card; what a payment method keeps instead of the number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardToken(pub String);

#[derive(Clone, Debug)]
pub struct AuthorizeCall {
    pub idempotency_key: String,
    pub card_token: String,
    pub amount: Money,
}

#[derive(Clone, Debug)]
pub struct CaptureCall {
    pub idempotency_key: String,
    /// The provider's reference of the authorisation.
    pub authorization: String,
    pub amount: Money,
}

#[derive(Clone, Debug)]
pub struct VoidCall {
    pub idempotency_key: String,
    pub authorization: String,
    /// What was held, for the record.
    pub amount: Money,
}

#[derive(Clone, Debug)]
pub struct RefundCall {
    pub idempotency_key: String,
    pub authorization: String,
    pub amount: Money,
}

/// What the provider answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderResult {
    Succeeded {
        reference: String,
    },
    Declined {
        code: DeclineCode,
        message: String,
        reference: String,
    },
}

/// The provider could not give an answer that counts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider failed to process the call: nothing is known to have happened, and the
    /// same key may be tried again. Callers see `unavailable`.
    #[error("the payment provider failed to process the request: {0}")]
    Processing(String),
    /// The provider will not take this card at all (callers see `failed_precondition`).
    #[error("{0}")]
    CardNotAccepted(String),
}

// ---------------------------------------------------------------------------------------------
// The simulated provider
// ---------------------------------------------------------------------------------------------

/// What a test card does, like a card processor's test mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBehaviour {
    Approve,
    Decline(DeclineCode),
    ProcessingError,
}

impl TestBehaviour {
    pub const TEST_CARDS: [(&'static str, TestBehaviour); 4] = [
        ("4242424242424242", TestBehaviour::Approve),
        (
            "4000000000000002",
            TestBehaviour::Decline(DeclineCode::CardDeclined),
        ),
        (
            "4000000000009995",
            TestBehaviour::Decline(DeclineCode::InsufficientFunds),
        ),
        ("4000000000000119", TestBehaviour::ProcessingError),
    ];

    /// The behaviour of a test card; `None` for any other number.
    pub fn of(card: &CardNumber) -> Option<Self> {
        Self::TEST_CARDS
            .iter()
            .find(|(number, _)| card.digits() == *number)
            .map(|(_, behaviour)| *behaviour)
    }

    fn as_str(self) -> &'static str {
        match self {
            TestBehaviour::Approve => "approve",
            TestBehaviour::Decline(code) => code.as_str(),
            TestBehaviour::ProcessingError => "processing_error",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "approve" => Some(TestBehaviour::Approve),
            "processing_error" => Some(TestBehaviour::ProcessingError),
            other => DeclineCode::parse(other).map(TestBehaviour::Decline),
        }
    }

    /// The simulated token of a card: `sim_card_<behaviour>_<uuid>`. The simulated provider
    /// remembers a card's test behaviour in its token, as it keeps no cards of its own.
    fn token(self) -> CardToken {
        CardToken(format!(
            "sim_card_{}_{}",
            self.as_str(),
            Uuid::now_v7().simple()
        ))
    }

    fn from_token(token: &str) -> Option<Self> {
        let rest = token.strip_prefix("sim_card_")?;
        let (behaviour, _) = rest.rsplit_once('_')?;
        Self::parse(behaviour)
    }
}

/// The built-in provider: a card processor in test mode.
///
/// 4242 4242 4242 4242 approves, 4000 0000 0000 0002 declines (`card_declined`),
/// 4000 0000 0000 9995 declines (`insufficient_funds`), 4000 0000 0000 0119 fails with a
/// processing error every time; any other number is not accepted. Captures, voids and refunds
/// of an approved authorisation succeed. Every call waits `latency` first.
///
/// Fault flags (pkg/settings, settable only on dev and test stacks) add to that: an extra
/// latency on every call (`fault.payment.latency_ms`), and a share of authorisations of the
/// approving card declined as `card_declined` (`fault.payment.failure_percent`), so the
/// checkout's failure paths can be exercised at a chosen rate.
///
/// Like a real processor it is idempotent on the key it is given: what it answered per key is
/// kept in `simulated_provider_operations` (committed before it answers, on a small pool of its
/// own, so it is independent of the caller's transaction, as a remote processor is), and a key
/// it has answered gets the same answer again without doing anything twice.
pub struct SimulatedProvider {
    pool: PgPool,
    latency: Duration,
    settings: settings::Settings,
}

impl SimulatedProvider {
    /// Keeps its memory in the database `service_pool` connects to, through a pool of its own:
    /// a provider call is made while the caller holds a connection of `service_pool`.
    pub fn new(service_pool: &PgPool, latency: Duration) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with((*service_pool.connect_options()).clone());
        Self {
            pool,
            latency,
            settings: settings::Settings::defaults(),
        }
    }

    /// Reads its fault flags from `settings`.
    pub fn with_settings(mut self, settings: settings::Settings) -> Self {
        self.settings = settings;
        self
    }

    async fn wait(&self) {
        let latency = self.latency + self.settings.faults().payment_latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// Whether the payment failure fault flag declines this authorisation.
    fn fault_declines(&self) -> bool {
        settings::Faults::strikes(self.settings.faults().payment_failure_percent())
    }

    /// The answer already given for `key`, or `decide()`'s answer, remembered unless it is a
    /// processing error.
    async fn once(
        &self,
        operation: &str,
        key: &str,
        amount: Money,
        decide: impl FnOnce() -> Result<ProviderResult, ProviderError>,
    ) -> Result<ProviderResult, ProviderError> {
        self.wait().await;
        if let Some(answer) = self.remembered(key).await? {
            return Ok(answer);
        }
        let answer = decide()?;
        let (outcome, reference, code, message) = match &answer {
            ProviderResult::Succeeded { reference } => ("succeeded", reference, "", ""),
            ProviderResult::Declined {
                code,
                message,
                reference,
            } => ("declined", reference, code.as_str(), message.as_str()),
        };
        sqlx::query(
            "INSERT INTO simulated_provider_operations \
                 (idempotency_key, operation, currency, amount_minor_units, outcome, reference, \
                  decline_code, message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(operation)
        .bind(amount.currency().code())
        .bind(amount.minor_units())
        .bind(outcome)
        .bind(reference)
        .bind(code)
        .bind(message)
        .execute(&self.pool)
        .await
        .map_err(unreachable)?;
        // Whoever inserted first decided; answer what is stored.
        self.remembered(key)
            .await?
            .ok_or_else(|| ProviderError::Processing("the simulated provider lost a result".into()))
    }

    async fn remembered(&self, key: &str) -> Result<Option<ProviderResult>, ProviderError> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT outcome, reference, decline_code, message FROM simulated_provider_operations \
             WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(unreachable)?;
        Ok(row.map(|(outcome, reference, code, message)| {
            match (outcome.as_str(), DeclineCode::parse(&code)) {
                ("declined", Some(code)) => ProviderResult::Declined {
                    code,
                    message,
                    reference,
                },
                _ => ProviderResult::Succeeded { reference },
            }
        }))
    }
}

/// The simulated processor's own store failing is the processor failing: retryable.
fn unreachable(error: sqlx::Error) -> ProviderError {
    tracing::warn!(%error, "the simulated provider's store failed");
    ProviderError::Processing("the simulated provider is unreachable".into())
}

fn reference(kind: &str) -> String {
    format!("sim_{kind}_{}", Uuid::now_v7().simple())
}

impl PaymentProvider for SimulatedProvider {
    fn register_card<'a>(&'a self, card: &'a CardNumber) -> ProviderFuture<'a, CardToken> {
        Box::pin(async move {
            self.wait().await;
            match TestBehaviour::of(card) {
                Some(behaviour) => Ok(behaviour.token()),
                None => Err(ProviderError::CardNotAccepted(
                    "card_number is not a test card: the simulated provider takes only \
                     4242424242424242 (approved), 4000000000000002 (declined), \
                     4000000000009995 (insufficient funds) and 4000000000000119 \
                     (processing error)"
                        .into(),
                )),
            }
        })
    }

    fn authorize<'a>(&'a self, call: &'a AuthorizeCall) -> ProviderFuture<'a, ProviderResult> {
        Box::pin(async move {
            let behaviour = match TestBehaviour::from_token(&call.card_token) {
                Some(TestBehaviour::Approve) if self.fault_declines() => {
                    Some(TestBehaviour::Decline(DeclineCode::CardDeclined))
                }
                behaviour => behaviour,
            };
            self.once(
                "authorize",
                &call.idempotency_key,
                call.amount,
                || match behaviour {
                    Some(TestBehaviour::Approve) => Ok(ProviderResult::Succeeded {
                        reference: reference("ch"),
                    }),
                    Some(TestBehaviour::Decline(code)) => Ok(ProviderResult::Declined {
                        code,
                        message: code.message().to_owned(),
                        reference: reference("ch"),
                    }),
                    Some(TestBehaviour::ProcessingError) => Err(ProviderError::Processing(
                        "an error occurred while processing the card".into(),
                    )),
                    None => Err(ProviderError::Processing(format!(
                        "the simulated provider does not know the card token {:?}",
                        call.card_token
                    ))),
                },
            )
            .await
        })
    }

    fn capture<'a>(&'a self, call: &'a CaptureCall) -> ProviderFuture<'a, ProviderResult> {
        Box::pin(
            self.once("capture", &call.idempotency_key, call.amount, || {
                Ok(ProviderResult::Succeeded {
                    reference: reference("cap"),
                })
            }),
        )
    }

    fn void<'a>(&'a self, call: &'a VoidCall) -> ProviderFuture<'a, ProviderResult> {
        Box::pin(self.once("void", &call.idempotency_key, call.amount, || {
            Ok(ProviderResult::Succeeded {
                reference: reference("void"),
            })
        }))
    }

    fn refund<'a>(&'a self, call: &'a RefundCall) -> ProviderFuture<'a, ProviderResult> {
        Box::pin(self.once("refund", &call.idempotency_key, call.amount, || {
            Ok(ProviderResult::Succeeded {
                reference: reference("re"),
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_card_has_its_behaviour_and_a_token_keeps_it() {
        for (number, behaviour) in TestBehaviour::TEST_CARDS {
            let card = CardNumber::parse(number).unwrap();
            assert_eq!(TestBehaviour::of(&card), Some(behaviour));
            let token = behaviour.token();
            assert!(!token.0.contains(number), "the token names the card");
            assert_eq!(TestBehaviour::from_token(&token.0), Some(behaviour));
        }
        let other = CardNumber::parse("5555555555554444").unwrap();
        assert_eq!(TestBehaviour::of(&other), None);
        assert_eq!(TestBehaviour::from_token("tok_visa"), None);
    }
}
