//! Field problems, and the collector that parses a whole request with them.
//!
//! A parser of one value (a name, an id, a currency) returns `Result<T, Problem>`: it says what
//! is wrong but not where, because the same parser serves "currency", "price.currency" and
//! "items[2].currency". [`Fields`] puts each problem next to the request's own field name, goes
//! on parsing the other fields, and at the end answers with one `invalid_argument` that names
//! every bad field, so a caller fixes a request in one round trip instead of one per field.

use std::borrow::Cow;

use crate::{Currency, Money};

/// What is wrong with one field, in words a caller can act on: "must be a UUID", "must have at
/// most 200 characters". Never the field's name, which the caller of the parser knows.
///
/// Mostly a `&'static str`; a `Cow` so that a limit can be spelled into the words
/// (`format!("must be at most {max}")`) without making every problem allocate.
pub type Problem = Cow<'static, str>;

/// Collects the problems of every field of a request while parsing it, so that one reply
/// names them all, in the order the fields were parsed.
///
/// The pattern: parse each field with [`Fields::parse`] (or [`Fields::optional`],
/// [`Fields::money`]) into an `Option`, then [`Fields::finish`] with a closure that assembles
/// the value from those options with `?`.
///
/// ```
/// use vocab::{Fields, Problem};
///
/// fn quantity(value: i64) -> Result<i64, Problem> {
///     if value > 0 { Ok(value) } else { Err("must be positive".into()) }
/// }
///
/// let mut fields = Fields::new();
/// let first = fields.parse("first", quantity(2));
/// let second = fields.parse("second", quantity(0));
/// let error = fields.finish(|| Some((first?, second?))).unwrap_err();
/// assert_eq!(error.details()[0].field, "second");
/// assert_eq!(error.details()[0].problem, "must be positive");
/// ```
#[derive(Debug, Default)]
pub struct Fields {
    violations: rpc::Violations,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// The parsed value, or `None` with the problem recorded against `field`.
    pub fn parse<T>(&mut self, field: &str, parsed: Result<T, Problem>) -> Option<T> {
        parsed.map_err(|problem| self.add(field, problem)).ok()
    }

    /// Parses a field that may be absent: `Some(None)` when absent, `Some(Some(value))` when
    /// valid, `None` (with the problem recorded) when invalid.
    pub fn optional<'a, I: ?Sized, T>(
        &mut self,
        field: &str,
        value: Option<&'a I>,
        parse: impl FnOnce(&'a I) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match value {
            None => Some(None),
            Some(value) => self.parse(field, parse(value)).map(Some),
        }
    }

    /// Records a problem no single-field parser can see, such as one field contradicting
    /// another ("must not be less than min_price_minor_units").
    pub fn add(&mut self, field: &str, problem: impl Into<Problem>) {
        self.violations.add(field, problem.into());
    }

    /// Reads a required `api::common::Money` field: "is required" against `field` when it is
    /// absent, otherwise the minor units (checked by `minor_units`, the caller's own rule, such
    /// as a price ceiling) under `<field>.minor_units` and the currency under
    /// `<field>.currency`, both reported when both are wrong.
    pub fn money(
        &mut self,
        field: &str,
        money: Option<&api::common::Money>,
        minor_units: impl FnOnce(i64) -> Result<i64, Problem>,
    ) -> Option<Money> {
        let Some(money) = money else {
            self.add(field, "is required");
            return None;
        };
        let minor_units = self.parse(
            &format!("{field}.minor_units"),
            minor_units(money.minor_units),
        );
        let currency = self.parse(
            &format!("{field}.currency"),
            Currency::parse(&money.currency),
        );
        Some(Money::new(minor_units?, currency?))
    }

    /// One `invalid_argument` naming every bad field, or the value `build` assembles.
    ///
    /// `build` is only called when no problem was recorded, and every parsing method records a
    /// problem whenever it returns `None`, so `build` returning `None` is a bug in the caller
    /// (a `None` that did not come from this collector): the `expect` states that invariant
    /// rather than hoping for it.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, rpc::Error> {
        self.violations.into_result()?;
        Ok(build().expect("a field failed to parse without recording a violation"))
    }
}

#[cfg(test)]
mod tests {
    use api::common::Money as ApiMoney;
    use rpc::ErrorCode;

    use super::*;

    fn positive(value: i64) -> Result<i64, Problem> {
        if value > 0 {
            Ok(value)
        } else {
            Err("must be positive".into())
        }
    }

    fn any_amount(value: i64) -> Result<i64, Problem> {
        Ok(value)
    }

    /// `(field, problem)` of every violation, in order.
    fn violations(error: rpc::Error) -> Vec<(String, String)> {
        assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
        error
            .details()
            .iter()
            .map(|d| (d.field.clone(), d.problem.clone()))
            .collect()
    }

    #[test]
    fn a_request_with_valid_fields_builds_its_value() {
        let mut fields = Fields::new();
        let a = fields.parse("a", positive(1));
        let b = fields.optional("b", None::<&str>, |_| positive(0));
        let c = fields.optional("c", Some(&5), |v: &i64| positive(*v));
        assert_eq!(
            fields.finish(|| Some((a?, b?, c?))).unwrap(),
            (1, None, Some(5))
        );
    }

    #[test]
    fn every_bad_field_is_named_once_in_the_order_parsed() {
        let mut fields = Fields::new();
        let a = fields.parse("a", positive(0));
        let b = fields.parse("b", positive(3));
        let c = fields.optional("c", Some("x"), |_| positive(-1));
        fields.add("b", "must not be less than a");
        let error = fields.finish(|| Some((a?, b?, c?))).unwrap_err();
        assert_eq!(
            violations(error),
            [
                ("a".to_owned(), "must be positive".to_owned()),
                ("c".to_owned(), "must be positive".to_owned()),
                ("b".to_owned(), "must not be less than a".to_owned()),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "without recording a violation")]
    fn a_none_that_no_field_recorded_is_a_bug() {
        let _ = Fields::new().finish(|| None::<()>);
    }

    #[test]
    fn money_reads_both_parts_and_names_each_bad_one() {
        let mut fields = Fields::new();
        let price = fields.money(
            "price",
            Some(&ApiMoney {
                minor_units: 1234,
                currency: "KWD".into(),
            }),
            any_amount,
        );
        let price = fields.finish(|| price).unwrap();
        assert_eq!(price.minor_units(), 1234);
        assert_eq!(price.currency().code(), "KWD");

        let mut fields = Fields::new();
        let price = fields.money(
            "price",
            Some(&ApiMoney {
                minor_units: -1,
                currency: "usd".into(),
            }),
            positive,
        );
        let missing = fields.money("shipping", None, positive);
        let error = fields.finish(|| Some((price?, missing?))).unwrap_err();
        assert_eq!(
            violations(error),
            [
                (
                    "price.minor_units".to_owned(),
                    "must be positive".to_owned()
                ),
                (
                    "price.currency".to_owned(),
                    "is not an ISO 4217 currency code (upper case, like \"USD\")".to_owned()
                ),
                ("shipping".to_owned(), "is required".to_owned()),
            ]
        );
    }
}
