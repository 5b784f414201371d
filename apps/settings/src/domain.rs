//! The rules of a settings request: which key, which scope, whether a value follows the key's
//! schema. Pure functions, no I/O; the schemas themselves are pkg/settings' catalogue, which
//! every reader shares.

use serde_json::Value;
use settings::Scope;
use settings::catalogue::{self, Key, KeyKind};

/// The most history rows one read returns, and how many when the caller names no number.
pub const HISTORY_MAX: i32 = 100;
pub const HISTORY_DEFAULT: i32 = 20;

/// The request field that carries a value; schema problems are named under it
/// ("value_json.express.currency").
const VALUE_FIELD: &str = "value_json";

/// A key of the catalogue in a scope it may be set in.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub key: &'static Key,
    pub scope: Scope,
}

impl Target {
    /// The key (not found when the catalogue has no such key) in the scope ("platform" when
    /// empty; refused when the key cannot be set there).
    pub fn parse(key: &str, scope: &str) -> Result<Self, rpc::Error> {
        let key = catalogue::key(key.trim()).ok_or_else(|| {
            rpc::Error::not_found(format!("there is no setting {:?}", key.trim()))
        })?;
        let scope = parse_scope(scope)?;
        if !key.allows_scope(scope.kind()) {
            let allowed: Vec<&str> = key.scopes.iter().map(|s| s.name()).collect();
            return Err(rpc::Error::invalid_field(
                "scope",
                format!("{} can be set only in: {}", key.name, allowed.join(", ")),
            ));
        }
        Ok(Self { key, scope })
    }

    pub fn scope_text(&self) -> String {
        self.scope.to_string()
    }

    /// Whether changing this key needs the service to run with `--allow-fault-flags`.
    pub fn is_fault_flag(&self) -> bool {
        self.key.kind == KeyKind::FaultFlag
    }
}

pub fn parse_scope(scope: &str) -> Result<Scope, rpc::Error> {
    Scope::parse(scope).map_err(|problem| rpc::Error::invalid_field("scope", problem))
}

/// Parses `json` and checks it against `key`'s schema, naming every bad field.
pub fn parse_value(key: &Key, json: &str) -> Result<Value, rpc::Error> {
    let value: Value = serde_json::from_str(json.trim()).map_err(|error| {
        rpc::Error::invalid_field(VALUE_FIELD, format!("is not valid JSON: {error}"))
    })?;
    check_value(key, &value)?;
    Ok(value)
}

/// Checks `value` against `key`'s schema.
pub fn check_value(key: &Key, value: &Value) -> Result<(), rpc::Error> {
    key.validate(value).map_err(|problems| {
        let details = problems
            .into_iter()
            .map(|(field, problem)| rpc::FieldViolation {
                field: match field.strip_prefix("value") {
                    Some(rest) => format!("{VALUE_FIELD}{rest}"),
                    None => field,
                },
                problem,
            })
            .collect();
        rpc::Error::invalid_argument(format!(
            "the value does not follow the schema of {}: {}",
            key.name, key.schema
        ))
        .with_details(details)
    })
}

/// The number of history rows to return.
pub fn history_size(requested: i32) -> usize {
    match requested {
        n if n <= 0 => HISTORY_DEFAULT as usize,
        n => n.min(HISTORY_MAX) as usize,
    }
}

/// A reason, trimmed; the contract requires one.
pub fn reason(text: &str) -> Result<String, rpc::Error> {
    match text.trim() {
        "" => Err(rpc::Error::invalid_field("reason", "is required")),
        reason => Ok(reason.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: &rpc::Error) -> Vec<&str> {
        error.details().iter().map(|d| d.field.as_str()).collect()
    }

    #[test]
    fn a_value_is_checked_against_its_key_and_bad_fields_are_named() {
        let key = catalogue::key(catalogue::SHIPPING_METHODS).unwrap();
        let error = parse_value(
            key,
            r#"{"standard": {"amount_minor_units": 499, "currency": "USD"},
                "express": {"amount_minor_units": "fast", "currency": "USD"}}"#,
        )
        .unwrap_err();
        assert_eq!(error.code(), rpc::ErrorCode::InvalidArgument);
        assert_eq!(fields(&error), ["value_json.express.amount_minor_units"]);
        let error = parse_value(key, "{not json").unwrap_err();
        assert_eq!(fields(&error), ["value_json"]);
    }

    #[test]
    fn keys_and_scopes_are_checked() {
        assert_eq!(
            Target::parse("checkout.nothing", "").unwrap_err().code(),
            rpc::ErrorCode::NotFound
        );
        let shop = format!("shop:{}", uuid::Uuid::now_v7());
        let error = Target::parse(catalogue::TAX_RATES, &shop).unwrap_err();
        assert_eq!(fields(&error), ["scope"]);
        assert!(Target::parse(catalogue::NOTIFICATION_SENDER, &shop).is_ok());
        assert_eq!(
            fields(&Target::parse(catalogue::TAX_RATES, "everywhere").unwrap_err()),
            ["scope"]
        );
        assert!(
            Target::parse(catalogue::FAULT_PAYMENT_FAILURE_PERCENT, "")
                .unwrap()
                .is_fault_flag()
        );
    }
}
