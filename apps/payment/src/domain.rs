//! The rules of payments: what a valid card, request and transition look like. Pure functions,
//! no I/O; each parser returns a type that can only hold a valid value and names every bad
//! field at once, and one function per operation decides whether a payment in its present
//! state may undergo it.
//!
//! The state machine:
//!
//! ```text
//! (authorisation) ──approved──► authorized ──capture──► captured ──refund──► partially_refunded
//!        │                          │                      │                    │  refund
//!        └──declined──► failed      └──void──► voided      └──refund (all)──────┴──► refunded
//! ```

use api::payment::{
    AuthorizePaymentRequest, CapturePaymentRequest, CreatePaymentMethodRequest,
    ListPaymentsRequest, RefundPaymentRequest, VoidPaymentRequest,
};
use chrono::{DateTime, Datelike, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Fields, Money, Problem};

use crate::error::Error;

/// The id of a stored payment: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(pub Uuid);

impl PaymentId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the request field `field`, or says why it is not an id.
    pub fn parse(field: &str, value: &str) -> Result<Self, rpc::Error> {
        uuid(value)
            .map(Self)
            .map_err(|problem| rpc::Error::invalid_field(field, problem))
    }
}

impl Default for PaymentId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for PaymentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Listings are newest first by id, so the last id of a page is where the next one starts.
impl Keyset for PaymentId {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.0.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

pub fn uuid(value: &str) -> Result<Uuid, Problem> {
    Uuid::try_parse(value).map_err(|_| "must be a UUID".into())
}

/// A new payment method's id: "pm_" and a UUID v7.
pub fn new_payment_method_id() -> String {
    format!("pm_{}", Uuid::now_v7())
}

// ---------------------------------------------------------------------------------------------
// Cards
// ---------------------------------------------------------------------------------------------

/// A card number that passed the Luhn check: its digits alone. It never leaves the request
/// that carried it: `Debug` shows the last four digits only, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    pub const MIN_DIGITS: usize = 12;
    pub const MAX_DIGITS: usize = 19;

    /// Digits with any spaces and hyphens between them ("4242 4242 4242 4242").
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let digits: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err("may contain only digits, spaces and hyphens".into());
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(format!(
                "must have {} to {} digits",
                Self::MIN_DIGITS,
                Self::MAX_DIGITS
            )
            .into());
        }
        if !luhn(&digits) {
            return Err("is not a valid card number (it fails the Luhn check)".into());
        }
        Ok(Self(digits))
    }

    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// The card's brand, from the number's prefix.
    pub fn brand(&self) -> &'static str {
        let prefix = |n: usize| self.0[..n].parse::<u32>().unwrap_or(0);
        match (prefix(1), prefix(2), prefix(3), prefix(4)) {
            (4, ..) => "visa",
            (_, 51..=55, ..) | (.., 2221..=2720) => "mastercard",
            (_, 34 | 37, ..) => "amex",
            (.., 6011) | (_, 65, ..) | (_, _, 644..=649, _) => "discover",
            _ => "unknown",
        }
    }
}

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber(**** {})", self.last4())
    }
}

/// Whether `digits` (ASCII digits only) pass the Luhn check.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A card to turn into a payment method: a valid number and an expiry that has not passed.
/// The CVC is checked by the contract's field rules and then dropped: nothing keeps it.
#[derive(Debug)]
pub struct NewPaymentMethod {
    pub card: CardNumber,
    pub exp_month: i32,
    pub exp_year: i32,
}

impl NewPaymentMethod {
    /// A card is good through the last day of its expiry month.
    pub fn parse(
        request: &CreatePaymentMethodRequest,
        now: DateTime<Utc>,
    ) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let card = fields.parse("card_number", CardNumber::parse(&request.card_number));
        let (month, year) = (request.exp_month, request.exp_year);
        let (this_month, this_year) = (now.month() as i32, now.year());
        if !(1..=12).contains(&month) {
            fields.add("exp_month", "must be between 1 and 12");
        } else if year < this_year {
            fields.add("exp_year", "has passed: the card has expired");
        } else if year == this_year && month < this_month {
            fields.add("exp_month", "has passed: the card has expired");
        }
        fields.finish(|| {
            Some(Self {
                card: card?,
                exp_month: month,
                exp_year: year,
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Payments
// ---------------------------------------------------------------------------------------------

/// Why a provider declined an authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclineCode {
    CardDeclined,
    InsufficientFunds,
}

impl DeclineCode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineCode::CardDeclined => "card_declined",
            DeclineCode::InsufficientFunds => "insufficient_funds",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "card_declined" => Some(DeclineCode::CardDeclined),
            "insufficient_funds" => Some(DeclineCode::InsufficientFunds),
            _ => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            DeclineCode::CardDeclined => "The card was declined.",
            DeclineCode::InsufficientFunds => "The card has insufficient funds.",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    Authorized,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            PaymentStatus::Authorized,
            PaymentStatus::Captured,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
            PaymentStatus::Voided,
            PaymentStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation on a payment, as the provider, the ledger and the idempotency keys name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Authorize => "authorize",
            Operation::Capture => "capture",
            Operation::Void => "void",
            Operation::Refund => "refund",
        }
    }
}

/// The SHA-256 (hex) of an operation and the request fields that decide what it does: two
/// requests with one key and the same fingerprint are the same request. Each part is written
/// with its length, so no two lists of parts hash the same text.
pub fn fingerprint(operation: Operation, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in std::iter::once(operation.as_str()).chain(parts.iter().copied()) {
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
        hasher.update(b";");
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn positive(minor_units: i64) -> Result<i64, Problem> {
    if minor_units > 0 {
        Ok(minor_units)
    } else {
        Err("must be positive".into())
    }
}

/// An optional money field: `Some(None)` when absent.
fn optional_money(
    fields: &mut Fields,
    field: &str,
    money: Option<&api::common::Money>,
) -> Option<Option<Money>> {
    match money {
        None => Some(None),
        Some(money) => fields.money(field, Some(money), positive).map(Some),
    }
}

fn money_part(amount: Option<Money>) -> String {
    amount
        .map(|money| format!("{} {}", money.minor_units(), money.currency().code()))
        .unwrap_or_default()
}

/// An authorisation request, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub idempotency_key: String,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub payment_method_id: String,
    pub amount: Money,
}

impl Authorization {
    pub fn parse(request: &AuthorizePaymentRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let order_id = fields.parse("order_id", uuid(&request.order_id));
        let user_id = fields.parse("user_id", uuid(&request.user_id));
        let amount = fields.money("amount", request.amount.as_ref(), positive);
        fields.finish(|| {
            Some(Self {
                idempotency_key: request.idempotency_key.clone(),
                order_id: order_id?,
                user_id: user_id?,
                payment_method_id: request.payment_method_id.clone(),
                amount: amount?,
            })
        })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(
            Operation::Authorize,
            &[
                &self.order_id.to_string(),
                &self.user_id.to_string(),
                &self.payment_method_id,
                &money_part(Some(self.amount)),
            ],
        )
    }
}

/// A capture, void or refund request, parsed: `amount` is `None` for "all of it" (and always
/// for a void).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentChange {
    pub operation: Operation,
    pub idempotency_key: String,
    pub payment_id: PaymentId,
    pub amount: Option<Money>,
}

impl PaymentChange {
    pub fn capture(request: &CapturePaymentRequest) -> Result<Self, rpc::Error> {
        Self::parse(
            Operation::Capture,
            &request.idempotency_key,
            &request.payment_id,
            request.amount.as_ref(),
        )
    }

    pub fn void(request: &VoidPaymentRequest) -> Result<Self, rpc::Error> {
        Self::parse(
            Operation::Void,
            &request.idempotency_key,
            &request.payment_id,
            None,
        )
    }

    pub fn refund(request: &RefundPaymentRequest) -> Result<Self, rpc::Error> {
        Self::parse(
            Operation::Refund,
            &request.idempotency_key,
            &request.payment_id,
            request.amount.as_ref(),
        )
    }

    fn parse(
        operation: Operation,
        idempotency_key: &str,
        payment_id: &str,
        amount: Option<&api::common::Money>,
    ) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let payment_id = fields.parse("payment_id", uuid(payment_id));
        let amount = optional_money(&mut fields, "amount", amount);
        fields.finish(|| {
            Some(Self {
                operation,
                idempotency_key: idempotency_key.to_owned(),
                payment_id: PaymentId(payment_id?),
                amount: amount?,
            })
        })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(
            self.operation,
            &[&self.payment_id.to_string(), &money_part(self.amount)],
        )
    }
}

/// What the state machine needs to know of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentState {
    pub id: PaymentId,
    pub status: PaymentStatus,
    pub amount: Money,
    pub captured: Money,
    pub refunded: Money,
}

/// What a capture, void or refund does to a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ask the provider to move `amount`; afterwards the payment is `status` with these totals.
    Proceed {
        amount: Money,
        status: PaymentStatus,
        captured: Money,
        refunded: Money,
    },
    /// Nothing to do: the payment already is where the operation would take it (voiding a
    /// voided or failed payment).
    Unchanged,
}

fn illegal(state: &PaymentState, rule: &str) -> Error {
    Error::IllegalTransition(format!("payment {} is {}; {rule}", state.id, state.status))
}

/// The amount the caller asked for, in the payment's currency, or all of `default`.
fn requested(requested: Option<Money>, default: Money) -> Result<Money, Error> {
    match requested {
        None => Ok(default),
        Some(amount) if amount.currency() != default.currency() => Err(Error::WrongCurrency {
            field: "amount.currency",
            expected: default.currency().code(),
        }),
        Some(amount) => Ok(amount),
    }
}

/// Decides a capture: only of an authorized payment, of at most the authorised amount (all of
/// it when no amount is given).
pub fn decide_capture(state: &PaymentState, amount: Option<Money>) -> Result<Decision, Error> {
    if state.status != PaymentStatus::Authorized {
        return Err(illegal(state, "only an authorized payment can be captured"));
    }
    let amount = requested(amount, state.amount)?;
    if amount.minor_units() > state.amount.minor_units() {
        return Err(Error::AmountTooLarge(format!(
            "cannot capture {amount} of payment {}: only {} is authorized",
            state.id, state.amount
        )));
    }
    Ok(Decision::Proceed {
        amount,
        status: PaymentStatus::Captured,
        captured: amount,
        refunded: state.refunded,
    })
}

/// Decides a void: an authorized payment is voided; a voided or failed one stays as it is;
/// anything captured cannot be voided (it is refunded instead).
pub fn decide_void(state: &PaymentState) -> Result<Decision, Error> {
    match state.status {
        PaymentStatus::Authorized => Ok(Decision::Proceed {
            amount: state.amount,
            status: PaymentStatus::Voided,
            captured: state.captured,
            refunded: state.refunded,
        }),
        PaymentStatus::Voided | PaymentStatus::Failed => Ok(Decision::Unchanged),
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => {
            Err(illegal(
                state,
                "only an authorized payment can be voided (refund a captured one)",
            ))
        }
    }
}

/// Decides a refund: of a captured or partially refunded payment, of at most what was captured
/// and not yet refunded (all of that when no amount is given).
pub fn decide_refund(state: &PaymentState, amount: Option<Money>) -> Result<Decision, Error> {
    if !matches!(
        state.status,
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
    ) {
        return Err(illegal(
            state,
            "only a captured or partially refunded payment can be refunded",
        ));
    }
    let refundable = state
        .captured
        .checked_sub(state.refunded)
        .map_err(|error| Error::Corrupt(error.to_string()))?;
    let amount = requested(amount, refundable)?;
    if amount.minor_units() > refundable.minor_units() {
        return Err(Error::AmountTooLarge(format!(
            "cannot refund {amount} of payment {}: only {refundable} of what was captured is \
             not refunded yet",
            state.id
        )));
    }
    let refunded = state
        .refunded
        .checked_add(amount)
        .map_err(|error| Error::Corrupt(error.to_string()))?;
    let status = if refunded == state.captured {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    };
    Ok(Decision::Proceed {
        amount,
        status,
        captured: state.captured,
        refunded,
    })
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

/// One page of payments, newest first: at most `size`, of one order when `order_id` is set,
/// older than `before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentQuery {
    pub order_id: Option<Uuid>,
    pub size: usize,
    pub before: Option<PaymentId>,
}

impl PaymentQuery {
    pub fn parse(request: &ListPaymentsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let order_id = fields.optional(
            "order_id",
            Some(request.order_id.as_str()).filter(|id| !id.is_empty()),
            uuid,
        );
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let before = fields.parse("cursor", page::parse_token(&request.cursor));
        fields.finish(|| {
            Some(Self {
                order_id: order_id?,
                size: size?.get(),
                before: before?,
            })
        })
    }

    /// The `next_cursor` of a page whose last payment is `last`.
    pub fn cursor_after(last: PaymentId) -> String {
        page::encode_token(&last)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use testkit::bad_fields;
    use vocab::Currency;

    use super::*;

    fn usd(minor_units: i64) -> Money {
        Money::new(minor_units, Currency::USD)
    }

    fn state(status: PaymentStatus, captured: i64, refunded: i64) -> PaymentState {
        PaymentState {
            id: PaymentId::new(),
            status,
            amount: usd(1000),
            captured: usd(captured),
            refunded: usd(refunded),
        }
    }

    fn card(number: &str) -> CreatePaymentMethodRequest {
        CreatePaymentMethodRequest {
            card_number: number.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    fn june_2026() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
    }

    #[test]
    fn card_numbers_pass_the_luhn_check_and_know_their_brand() {
        let card = CardNumber::parse("4242 4242-4242 4242").unwrap();
        assert_eq!(card.digits(), "4242424242424242");
        assert_eq!(card.last4(), "4242");
        assert_eq!(card.brand(), "visa");
        assert!(!format!("{card:?}").contains("42424242"));
        for (number, brand) in [
            ("5555555555554444", "mastercard"),
            ("2223003122003222", "mastercard"),
            ("378282246310005", "amex"),
            ("6011111111111117", "discover"),
            ("3056930009020004", "unknown"),
        ] {
            assert_eq!(
                CardNumber::parse(number).unwrap().brand(),
                brand,
                "{number}"
            );
        }
        assert!(CardNumber::parse("4242424242424241").is_err(), "Luhn");
        assert!(CardNumber::parse("4242").is_err(), "too short");
        assert!(CardNumber::parse("42424242424242a2").is_err());
    }

    #[test]
    fn an_expiry_that_has_passed_names_its_field() {
        let now = june_2026();
        let method = NewPaymentMethod::parse(&card("4242424242424242"), now).unwrap();
        assert_eq!((method.exp_month, method.exp_year), (12, 2030));
        let this_month = CreatePaymentMethodRequest {
            exp_month: 6,
            exp_year: 2026,
            ..card("4242424242424242")
        };
        assert!(NewPaymentMethod::parse(&this_month, now).is_ok());
        let last_month = CreatePaymentMethodRequest {
            exp_month: 5,
            ..this_month.clone()
        };
        let error = NewPaymentMethod::parse(&last_month, now).unwrap_err();
        assert_eq!(bad_fields(&error), ["exp_month"]);
        let last_year = CreatePaymentMethodRequest {
            exp_year: 2025,
            ..card("4242424242424241")
        };
        let error = NewPaymentMethod::parse(&last_year, now).unwrap_err();
        assert_eq!(bad_fields(&error), ["card_number", "exp_year"]);
    }

    #[test]
    fn fingerprints_differ_when_what_matters_differs() {
        let request = AuthorizePaymentRequest {
            idempotency_key: "k".into(),
            order_id: Uuid::now_v7().to_string(),
            user_id: Uuid::now_v7().to_string(),
            payment_method_id: "pm_x".into(),
            amount: Some(usd(500).into()),
        };
        let first = Authorization::parse(&request).unwrap();
        assert_eq!(first.fingerprint(), first.clone().fingerprint());
        assert_eq!(first.fingerprint().len(), 64);
        let more = Authorization {
            amount: usd(501),
            ..first.clone()
        };
        assert_ne!(first.fingerprint(), more.fingerprint());
        let other_method = Authorization {
            payment_method_id: "pm_y".into(),
            ..first.clone()
        };
        assert_ne!(first.fingerprint(), other_method.fingerprint());
        // The key itself is not part of the fingerprint.
        let other_key = Authorization {
            idempotency_key: "other".into(),
            ..first.clone()
        };
        assert_eq!(first.fingerprint(), other_key.fingerprint());
        assert_ne!(
            fingerprint(Operation::Capture, &["ab", "c"]),
            fingerprint(Operation::Capture, &["a", "bc"])
        );
    }

    #[test]
    fn amounts_must_be_positive_and_ids_uuids() {
        let error = Authorization::parse(&AuthorizePaymentRequest {
            idempotency_key: "k".into(),
            order_id: "nope".into(),
            user_id: Uuid::now_v7().to_string(),
            payment_method_id: "pm_x".into(),
            amount: Some(usd(0).into()),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["order_id", "amount.minor_units"]);
        let capture = PaymentChange::capture(&CapturePaymentRequest {
            idempotency_key: "k".into(),
            payment_id: Uuid::now_v7().to_string(),
            amount: None,
        })
        .unwrap();
        assert_eq!(capture.amount, None);
    }

    #[test]
    fn only_an_authorized_payment_is_captured_and_never_more_than_authorized() {
        let authorized = state(PaymentStatus::Authorized, 0, 0);
        assert_eq!(
            decide_capture(&authorized, None).unwrap(),
            Decision::Proceed {
                amount: usd(1000),
                status: PaymentStatus::Captured,
                captured: usd(1000),
                refunded: usd(0),
            }
        );
        assert!(matches!(
            decide_capture(&authorized, Some(usd(400))).unwrap(),
            Decision::Proceed { captured, .. } if captured == usd(400)
        ));
        assert!(matches!(
            decide_capture(&authorized, Some(usd(1001))),
            Err(Error::AmountTooLarge(_))
        ));
        assert!(matches!(
            decide_capture(
                &authorized,
                Some(Money::new(10, Currency::parse("EUR").unwrap()))
            ),
            Err(Error::WrongCurrency { .. })
        ));
        let voided = state(PaymentStatus::Voided, 0, 0);
        let Err(Error::IllegalTransition(message)) = decide_capture(&voided, None) else {
            panic!("a voided payment was captured");
        };
        assert_eq!(
            message,
            format!(
                "payment {} is voided; only an authorized payment can be captured",
                voided.id
            )
        );
    }

    #[test]
    fn voiding_lifts_a_hold_and_changes_nothing_after_one() {
        assert!(matches!(
            decide_void(&state(PaymentStatus::Authorized, 0, 0)).unwrap(),
            Decision::Proceed {
                status: PaymentStatus::Voided,
                ..
            }
        ));
        for status in [PaymentStatus::Voided, PaymentStatus::Failed] {
            assert_eq!(
                decide_void(&state(status, 0, 0)).unwrap(),
                Decision::Unchanged
            );
        }
        assert!(matches!(
            decide_void(&state(PaymentStatus::Captured, 1000, 0)),
            Err(Error::IllegalTransition(_))
        ));
    }

    #[test]
    fn refunds_give_back_at_most_what_is_captured_and_not_refunded() {
        let captured = state(PaymentStatus::Captured, 800, 0);
        let Decision::Proceed {
            amount,
            status,
            refunded,
            ..
        } = decide_refund(&captured, Some(usd(300))).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (amount, status, refunded),
            (usd(300), PaymentStatus::PartiallyRefunded, usd(300))
        );
        let partly = state(PaymentStatus::PartiallyRefunded, 800, 300);
        assert!(matches!(
            decide_refund(&partly, Some(usd(501))),
            Err(Error::AmountTooLarge(_))
        ));
        assert_eq!(
            decide_refund(&partly, None).unwrap(),
            Decision::Proceed {
                amount: usd(500),
                status: PaymentStatus::Refunded,
                captured: usd(800),
                refunded: usd(800),
            }
        );
        for status in [
            PaymentStatus::Authorized,
            PaymentStatus::Refunded,
            PaymentStatus::Voided,
            PaymentStatus::Failed,
        ] {
            assert!(matches!(
                decide_refund(&state(status, 0, 0), None),
                Err(Error::IllegalTransition(_))
            ));
        }
    }

    #[test]
    fn listing_queries_take_an_order_and_a_cursor() {
        let query = PaymentQuery::parse(&ListPaymentsRequest::default()).unwrap();
        assert_eq!(
            query,
            PaymentQuery {
                order_id: None,
                size: 20,
                before: None
            }
        );
        let error = PaymentQuery::parse(&ListPaymentsRequest {
            order_id: "x".into(),
            page_size: 101,
            cursor: "nope".into(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["order_id", "page_size", "cursor"]);
        let last = PaymentId::new();
        let query = PaymentQuery::parse(&ListPaymentsRequest {
            cursor: PaymentQuery::cursor_after(last),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(query.before, Some(last));
    }
}
