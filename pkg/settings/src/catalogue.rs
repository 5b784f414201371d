//! Every settings key of the platform, in one registry: what it is for, its schema (a
//! validator that names each bad field, and the same schema in words for the admin listing),
//! its default and the scopes it may be set in.
//!
//! Adding a key is adding a row to [`KEYS`] (and, for a typed getter, a method on
//! [`crate::Settings`]). A key is never renamed: its values live on in the bucket and the
//! history under its name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::scope::ScopeKind;

/// What a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An ordinary setting.
    Setting,
    /// A feature flag: a [`FeatureFlag`] value, evaluated in each service.
    FeatureFlag,
    /// A fault flag for resilience tests: off by default and refused by the settings service
    /// unless it runs with `--allow-fault-flags` (dev stack and tests).
    FaultFlag,
}

/// One key of the catalogue.
#[derive(Debug)]
pub struct Key {
    /// "checkout.tax_rates": lowercase words and dots.
    pub name: &'static str,
    pub description: &'static str,
    /// The schema in words, for people.
    pub schema: &'static str,
    pub kind: KeyKind,
    /// The scopes it may be set in.
    pub scopes: &'static [ScopeKind],
    default: fn() -> Value,
    validate: fn(&Value, &mut At<'_>),
}

impl Key {
    /// The value that applies when none is set.
    pub fn default_value(&self) -> Value {
        (self.default)()
    }

    /// Whether `value` follows the schema; otherwise every bad field, as ("value.express.currency",
    /// "must be an ISO 4217 code: three capital letters"), ordered by field: the same order
    /// whichever order the value's object keys came in.
    pub fn validate(&self, value: &Value) -> Result<(), Vec<(String, String)>> {
        let mut problems = Problems::default();
        (self.validate)(value, &mut problems.at("value"));
        if problems.list.is_empty() {
            Ok(())
        } else {
            let mut list = problems.list;
            list.sort_by(|a, b| a.0.cmp(&b.0));
            Err(list)
        }
    }

    pub fn allows_scope(&self, scope: ScopeKind) -> bool {
        self.scopes.contains(&scope)
    }
}

const PLATFORM: &[ScopeKind] = &[ScopeKind::Platform];
const PLATFORM_AND_SHOP: &[ScopeKind] = &[ScopeKind::Platform, ScopeKind::Shop];

pub const SHIPPING_METHODS: &str = "checkout.shipping_methods";
pub const TAX_RATES: &str = "checkout.tax_rates";
pub const RESERVATION_EXPIRY_SECONDS: &str = "checkout.reservation_expiry_seconds";
pub const NOTIFICATION_SENDER: &str = "notification.sender";
pub const FAULT_PAYMENT_FAILURE_PERCENT: &str = "fault.payment.failure_percent";
pub const FAULT_PAYMENT_LATENCY_MS: &str = "fault.payment.latency_ms";
pub const FAULT_PRODUCT_LATENCY_MS: &str = "fault.product.latency_ms";
pub const FAULT_CART_READ_FAILURE_PERCENT: &str = "fault.cart.read_failure_percent";
pub const FAULT_NOTIFICATION_SMTP_FAILURE_PERCENT: &str = "fault.notification.smtp_failure_percent";
/// The prefix of every feature flag's key: flag `new_checkout` is `flag.new_checkout`.
pub const FLAG_PREFIX: &str = "flag.";

/// The shipping method a checkout uses when the customer names none; every shipping table
/// must offer it.
pub const DEFAULT_SHIPPING_METHOD: &str = "standard";
/// The most shipping methods and tax rates a table holds.
pub const MAX_SHIPPING_METHODS: usize = 20;
pub const MAX_TAX_RATES: usize = 300;
/// The longest a fault flag may delay a call, in milliseconds.
pub const MAX_FAULT_LATENCY_MS: i64 = 30_000;

/// Per shipping method, what one sub-order's shipping costs.
pub type ShippingMethods = BTreeMap<String, ShippingRate>;
/// Per destination country (ISO 3166-1 alpha-2), the tax rate in basis points (1900 = 19%).
pub type TaxRates = BTreeMap<String, i64>;

/// One shipping method's rate: minor units of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRate {
    pub amount_minor_units: i64,
    pub currency: String,
}

/// Who notification emails come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSender {
    pub name: String,
    pub address: String,
}

/// A feature flag's value: off, or on for the users it selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureFlag {
    pub enabled: bool,
    /// 0 to 100: the share of users (by a stable hash of flag and user id) it is on for.
    pub rollout_percent: u8,
    /// Users with one of these roles have it whatever the percentage.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The feature flags the platform declares: (name, what it does).
pub const FEATURE_FLAGS: &[(&str, &str)] = &[(
    "new_checkout",
    "The new checkout flow: on for the users it selects.",
)];

macro_rules! flag_key {
    ($name:literal, $description:literal) => {
        Key {
            name: concat!("flag.", $name),
            description: $description,
            schema: FLAG_SCHEMA,
            kind: KeyKind::FeatureFlag,
            scopes: PLATFORM_AND_SHOP,
            default: || json!({"enabled": false, "rollout_percent": 0, "roles": []}),
            validate: validate_flag,
        }
    };
}

const FLAG_SCHEMA: &str = "object { enabled: boolean, rollout_percent: integer 0..100, \
                           roles: up to 20 role names (lowercase letters, digits, _) }";
const PERCENT_SCHEMA: &str = "integer 0..100 (percent)";
const LATENCY_SCHEMA: &str = "integer 0..30000 (milliseconds)";

/// Every key of the platform.
pub static KEYS: &[Key] = &[
    Key {
        name: SHIPPING_METHODS,
        description: "The shipping methods a checkout offers and what one sub-order's shipping \
                      costs with each. \"standard\" is the method used when the customer names none.",
        schema: "object: method name (lowercase letters, digits, _; 1 to 32) -> object { \
                 amount_minor_units: integer 0..1000000, currency: ISO 4217 code }; 1 to 20 \
                 methods, \"standard\" among them",
        kind: KeyKind::Setting,
        scopes: PLATFORM,
        default: || {
            json!({
                "standard": {"amount_minor_units": 499, "currency": "USD"},
                "express": {"amount_minor_units": 1499, "currency": "USD"},
            })
        },
        validate: validate_shipping_methods,
    },
    Key {
        name: TAX_RATES,
        description: "Tax rates by destination country, charged on each sub-order's subtotal \
                      less its discount plus its shipping. A country not listed pays none.",
        schema: "object: ISO 3166-1 alpha-2 country code -> integer 0..10000 (basis points, \
                 1900 = 19%); at most 300 countries",
        kind: KeyKind::Setting,
        scopes: PLATFORM,
        default: || json!({"US": 0, "CA": 500, "GB": 2000, "DE": 1900, "FR": 2000, "NL": 2100, "JP": 1000}),
        validate: validate_tax_rates,
    },
    Key {
        name: RESERVATION_EXPIRY_SECONDS,
        description: "How long a checkout holds stock and voucher uses, in seconds.",
        schema: "integer 60..86400 (seconds)",
        kind: KeyKind::Setting,
        scopes: PLATFORM,
        default: || json!(900),
        validate: |value, problems| integer(value, 60, 86_400, problems),
    },
    Key {
        name: NOTIFICATION_SENDER,
        description: "Who notification emails come from.",
        schema: "object { name: text 1..100, address: email address }",
        kind: KeyKind::Setting,
        scopes: PLATFORM_AND_SHOP,
        default: || json!({"name": "Emporium", "address": "no-reply@emporium.example"}),
        validate: validate_sender,
    },
    flag_key!(
        "new_checkout",
        "Feature flag: the new checkout flow, for the users it selects."
    ),
    Key {
        name: FAULT_PAYMENT_FAILURE_PERCENT,
        description: "Fault flag: the share of authorisations the simulated payment provider \
                      declines.",
        schema: PERCENT_SCHEMA,
        kind: KeyKind::FaultFlag,
        scopes: PLATFORM,
        default: || json!(0),
        validate: |value, problems| integer(value, 0, 100, problems),
    },
    Key {
        name: FAULT_PAYMENT_LATENCY_MS,
        description: "Fault flag: how long the simulated payment provider takes to answer.",
        schema: LATENCY_SCHEMA,
        kind: KeyKind::FaultFlag,
        scopes: PLATFORM,
        default: || json!(0),
        validate: |value, problems| integer(value, 0, MAX_FAULT_LATENCY_MS, problems),
    },
    Key {
        name: FAULT_PRODUCT_LATENCY_MS,
        description: "Fault flag: a delay before the product service answers a read.",
        schema: LATENCY_SCHEMA,
        kind: KeyKind::FaultFlag,
        scopes: PLATFORM,
        default: || json!(0),
        validate: |value, problems| integer(value, 0, MAX_FAULT_LATENCY_MS, problems),
    },
    Key {
        name: FAULT_CART_READ_FAILURE_PERCENT,
        description: "Fault flag: the share of cart reads that fail as unavailable.",
        schema: PERCENT_SCHEMA,
        kind: KeyKind::FaultFlag,
        scopes: PLATFORM,
        default: || json!(0),
        validate: |value, problems| integer(value, 0, 100, problems),
    },
    Key {
        name: FAULT_NOTIFICATION_SMTP_FAILURE_PERCENT,
        description: "Fault flag: the share of SMTP deliveries the notification service fails.",
        schema: PERCENT_SCHEMA,
        kind: KeyKind::FaultFlag,
        scopes: PLATFORM,
        default: || json!(0),
        validate: |value, problems| integer(value, 0, 100, problems),
    },
];

/// The key named `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Problems found in a value, each at a field path.
#[derive(Default)]
struct Problems {
    list: Vec<(String, String)>,
}

impl Problems {
    fn at(&mut self, path: impl Into<String>) -> At<'_> {
        At {
            problems: self,
            path: path.into(),
        }
    }
}

/// A place in the value being checked.
struct At<'a> {
    problems: &'a mut Problems,
    path: String,
}

impl At<'_> {
    fn add(&mut self, problem: impl Into<String>) {
        self.problems.list.push((self.path.clone(), problem.into()));
    }

    fn child(&mut self, name: &str) -> At<'_> {
        At {
            path: format!("{}.{name}", self.path),
            problems: self.problems,
        }
    }
}

fn integer(value: &Value, min: i64, max: i64, at: &mut At<'_>) {
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => {}
        Some(_) => at.add(format!("must be between {min} and {max}")),
        None => at.add(format!("must be a whole number between {min} and {max}")),
    }
}

fn name_token(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn currency(value: &Value, at: &mut At<'_>) {
    match value.as_str() {
        Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) => {}
        _ => at.add("must be an ISO 4217 code: three capital letters"),
    }
}

/// Refuses fields the schema does not name, so a misspelt field is not silently ignored.
fn only_fields(object: &serde_json::Map<String, Value>, allowed: &[&str], at: &mut At<'_>) {
    for name in object.keys() {
        if !allowed.contains(&name.as_str()) {
            at.child(name).add("is not a field of this setting");
        }
    }
}

fn validate_shipping_methods(value: &Value, at: &mut At<'_>) {
    let Some(methods) = value.as_object() else {
        return at.add("must be an object of shipping methods");
    };
    if methods.is_empty() || methods.len() > MAX_SHIPPING_METHODS {
        at.add(format!(
            "must have 1 to {MAX_SHIPPING_METHODS} shipping methods"
        ));
    }
    if !methods.contains_key(DEFAULT_SHIPPING_METHOD) {
        at.add(format!(
            "must offer the default method {DEFAULT_SHIPPING_METHOD:?}"
        ));
    }
    for (method, rate) in methods {
        let mut at = at.child(method);
        if !name_token(method, 32) {
            at.add("a method name is 1 to 32 lowercase letters, digits or _");
        }
        let Some(rate) = rate.as_object() else {
            at.add("must be an object { amount_minor_units, currency }");
            continue;
        };
        only_fields(rate, &["amount_minor_units", "currency"], &mut at);
        integer(
            rate.get("amount_minor_units").unwrap_or(&Value::Null),
            0,
            1_000_000,
            &mut at.child("amount_minor_units"),
        );
        currency(
            rate.get("currency").unwrap_or(&Value::Null),
            &mut at.child("currency"),
        );
    }
}

fn validate_tax_rates(value: &Value, at: &mut At<'_>) {
    let Some(rates) = value.as_object() else {
        return at.add("must be an object of country codes and basis points");
    };
    if rates.len() > MAX_TAX_RATES {
        at.add(format!("must have at most {MAX_TAX_RATES} countries"));
    }
    for (country, rate) in rates {
        let mut at = at.child(country);
        if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
            at.add("a country is an ISO 3166-1 alpha-2 code: two capital letters");
        }
        integer(rate, 0, 10_000, &mut at);
    }
}

fn validate_sender(value: &Value, at: &mut At<'_>) {
    let Some(sender) = value.as_object() else {
        return at.add("must be an object { name, address }");
    };
    only_fields(sender, &["name", "address"], at);
    match sender.get("name").and_then(Value::as_str) {
        Some(name)
            if (1..=100).contains(&name.trim().chars().count())
                && !name.chars().any(char::is_control) => {}
        _ => at
            .child("name")
            .add("must be 1 to 100 characters, without control characters"),
    }
    match sender.get("address").and_then(Value::as_str) {
        Some(address) if email_like(address) => {}
        _ => at.child("address").add("must be an email address"),
    }
}

fn email_like(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

fn validate_flag(value: &Value, at: &mut At<'_>) {
    let Some(flag) = value.as_object() else {
        return at.add("must be an object { enabled, rollout_percent, roles }");
    };
    only_fields(flag, &["enabled", "rollout_percent", "roles"], at);
    if !flag.get("enabled").is_some_and(Value::is_boolean) {
        at.child("enabled").add("must be true or false");
    }
    integer(
        flag.get("rollout_percent").unwrap_or(&Value::Null),
        0,
        100,
        &mut at.child("rollout_percent"),
    );
    match flag.get("roles") {
        None => {}
        Some(Value::Array(roles)) => {
            let mut at = at.child("roles");
            if roles.len() > 20 {
                at.add("must name at most 20 roles");
            }
            for (index, role) in roles.iter().enumerate() {
                if !role.as_str().is_some_and(|r| name_token(r, 32)) {
                    at.child(&index.to_string())
                        .add("a role is 1 to 32 lowercase letters, digits or _");
                }
            }
        }
        Some(_) => at.child("roles").add("must be a list of role names"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<(), Vec<(String, String)>>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    }

    #[test]
    fn every_default_follows_its_own_schema_and_names_are_unique() {
        for key in KEYS {
            assert_eq!(key.validate(&key.default_value()), Ok(()), "{}", key.name);
            assert_eq!(KEYS.iter().filter(|k| k.name == key.name).count(), 1);
            assert!(
                key.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{}",
                key.name
            );
        }
        for (flag, _) in FEATURE_FLAGS {
            let key = key(&format!("{FLAG_PREFIX}{flag}")).expect("a flag has a key");
            assert_eq!(key.kind, KeyKind::FeatureFlag);
        }
    }

    #[test]
    fn a_bad_shipping_table_names_each_bad_field() {
        let key = key(SHIPPING_METHODS).unwrap();
        let bad = json!({
            "express": {"amount_minor_units": -1, "currency": "usd", "colour": "red"},
            "Drone!": {"amount_minor_units": 10, "currency": "USD"},
        });
        assert_eq!(
            fields(key.validate(&bad)),
            [
                "value",
                "value.Drone!",
                "value.express.amount_minor_units",
                "value.express.colour",
                "value.express.currency",
            ]
        );
        assert_eq!(fields(key.validate(&json!("standard=499"))), ["value"]);
    }

    #[test]
    fn tax_rates_flags_and_senders_are_checked_field_by_field() {
        assert_eq!(
            fields(
                key(TAX_RATES)
                    .unwrap()
                    .validate(&json!({"de": 1900, "FR": 10001}))
            ),
            ["value.FR", "value.de"]
        );
        assert_eq!(
            fields(
                key("flag.new_checkout").unwrap().validate(
                    &json!({"enabled": "yes", "rollout_percent": 101, "roles": ["Admin"]})
                )
            ),
            ["value.enabled", "value.roles.0", "value.rollout_percent"]
        );
        assert_eq!(
            fields(
                key(NOTIFICATION_SENDER)
                    .unwrap()
                    .validate(&json!({"name": "", "address": "nobody"}))
            ),
            ["value.address", "value.name"]
        );
        assert_eq!(
            fields(
                key(FAULT_PAYMENT_FAILURE_PERCENT)
                    .unwrap()
                    .validate(&json!(0.5))
            ),
            ["value"]
        );
    }
}
