//! Collecting the problems of every field of a request while parsing it.

use rpc::Violations;

use super::{CurrencyCode, Money, Problem};

/// Collects the problems of every field of a request while parsing it, so that one reply
/// names them all.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) violations: Violations,
}

impl Fields {
    /// The parsed value, or `None` with the problem recorded against `field`.
    pub(super) fn parse<T>(&mut self, field: &str, parsed: Result<T, Problem>) -> Option<T> {
        parsed
            .map_err(|problem| self.violations.add(field, problem))
            .ok()
    }

    /// Parses a field that may be absent: `Some(None)` when absent, `None` when invalid.
    pub(super) fn optional<'a, I: ?Sized, T>(
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

    pub(super) fn money(
        &mut self,
        field: &str,
        money: Option<&api::common::Money>,
    ) -> Option<Money> {
        let Some(money) = money else {
            self.violations.add(field, "is required");
            return None;
        };
        let minor_units = self.parse(
            &format!("{field}.minor_units"),
            Money::check_minor_units(money.minor_units),
        );
        let currency = self.parse(
            &format!("{field}.currency"),
            CurrencyCode::parse(&money.currency),
        );
        // Both parts were checked above, so this cannot fail.
        Money::new(minor_units?, currency?).ok()
    }

    /// One `invalid_argument` naming every bad field, or the value `build` assembles. `build`
    /// returns `None` only if a field failed, and every failure was recorded, so the
    /// `expect` states an invariant of this type rather than a hope.
    pub(super) fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, rpc::Error> {
        self.violations.into_result()?;
        Ok(build().expect("a field failed to parse without recording a violation"))
    }
}

/// The fields an `invalid_argument` error names, in order.
#[cfg(test)]
pub(crate) fn bad_fields(error: rpc::Error) -> Vec<String> {
    assert_eq!(error.code(), rpc::ErrorCode::InvalidArgument, "{error}");
    error.details().iter().map(|d| d.field.clone()).collect()
}
