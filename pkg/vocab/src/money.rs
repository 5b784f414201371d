//! Money: an integer of minor units and an ISO 4217 currency, never a float.
//!
//! Arithmetic is checked: amounts in different currencies never add up (there is no exchange
//! rate here, and a silent sum of dollars and yen is a wrong total), and a result that does not
//! fit in an `i64` of minor units is an error rather than a wrapped or saturated number. Every
//! operation returns a `Result` so a caller cannot forget either case.

use std::borrow::Borrow;
use std::fmt;

use crate::{Currency, Problem};

/// An amount of money: integer minor units (cents for USD, yen for JPY, fils for KWD) of one
/// currency. Any `i64` is a valid amount (refunds and adjustments are negative); how large or
/// whether negative a particular amount may be (a price, a discount) is the owning service's
/// rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

/// Why an arithmetic operation on [`Money`] has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amounts are in different currencies.
    #[error("cannot combine an amount in {found} with one in {expected}")]
    CurrencyMismatch { expected: Currency, found: Currency },
    /// The result does not fit in 64 bits of minor units.
    #[error("the amount does not fit in 64-bit minor units")]
    Overflow,
}

impl Money {
    pub const fn new(minor_units: i64, currency: Currency) -> Self {
        Money {
            minor_units,
            currency,
        }
    }

    /// Nothing, in `currency`: where a sum starts.
    pub const fn zero(currency: Currency) -> Self {
        Money::new(0, currency)
    }

    pub const fn minor_units(self) -> i64 {
        self.minor_units
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// `self + other`, both in the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor_units
            .checked_add(other.minor_units)
            .map(|minor_units| Money::new(minor_units, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`, both in the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor_units
            .checked_sub(other.minor_units)
            .map(|minor_units| Money::new(minor_units, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `quantity` times this amount: a line total from a unit price.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        self.minor_units
            .checked_mul(quantity)
            .map(|minor_units| Money::new(minor_units, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// The total of `amounts`, every one of which must be in `currency`. The currency is given
    /// rather than taken from the first amount so that an empty sum has one (zero of it), and
    /// so that a total of the wrong currency is caught even when every amount agrees.
    pub fn sum<I>(currency: Currency, amounts: I) -> Result<Money, MoneyError>
    where
        I: IntoIterator,
        I::Item: Borrow<Money>,
    {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |total, amount| {
                total.checked_add(*amount.borrow())
            })
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                expected: self.currency,
                found: other.currency,
            })
        }
    }
}

/// The amount in its currency's major unit, with exactly the currency's minor-unit digits and
/// the code after it: "12.34 USD", "1234 JPY", "1.234 KWD", "-0.05 EUR". For logs, messages and
/// tests; never parse it back (the wire form is [`api::common::Money`]).
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor_units < 0 { "-" } else { "" };
        // `unsigned_abs`, because `i64::MIN` has no positive `i64` counterpart.
        let magnitude = self.minor_units.unsigned_abs();
        let digits = u32::from(self.currency.minor_unit_digits());
        let code = self.currency.code();
        if digits == 0 {
            return write!(f, "{sign}{magnitude} {code}");
        }
        let scale = 10_u64.pow(digits);
        let (major, minor) = (magnitude / scale, magnitude % scale);
        write!(
            f,
            "{sign}{major}.{minor:0width$} {code}",
            width = digits as usize
        )
    }
}

impl From<Money> for api::common::Money {
    fn from(money: Money) -> Self {
        api::common::Money {
            minor_units: money.minor_units,
            currency: money.currency.code().to_owned(),
        }
    }
}

/// Reads the contracts' money. Only the currency can be wrong (any `i64` is an amount); the
/// error is its problem, as [`Currency::parse`] words it. Request parsers that must name the
/// field use [`Fields::money`](crate::Fields::money) instead.
impl TryFrom<&api::common::Money> for Money {
    type Error = Problem;

    fn try_from(money: &api::common::Money) -> Result<Self, Self::Error> {
        Ok(Money::new(
            money.minor_units,
            Currency::parse(&money.currency)?,
        ))
    }
}

impl TryFrom<api::common::Money> for Money {
    type Error = Problem;

    fn try_from(money: api::common::Money) -> Result<Self, Self::Error> {
        Money::try_from(&money)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor_units: i64, code: &str) -> Money {
        Money::new(minor_units, Currency::parse(code).unwrap())
    }

    #[test]
    fn amounts_in_one_currency_add_subtract_and_multiply() {
        let price = money(1250, "USD");
        assert_eq!(price.checked_add(money(99, "USD")), Ok(money(1349, "USD")));
        assert_eq!(price.checked_sub(money(1300, "USD")), Ok(money(-50, "USD")));
        assert_eq!(price.checked_mul(3), Ok(money(3750, "USD")));
        assert_eq!(price.checked_mul(0), Ok(Money::zero(Currency::USD)));
    }

    #[test]
    fn currencies_never_mix() {
        let dollars = money(100, "USD");
        let euros = money(100, "EUR");
        let mismatch = MoneyError::CurrencyMismatch {
            expected: Currency::USD,
            found: Currency::parse("EUR").unwrap(),
        };
        assert_eq!(dollars.checked_add(euros), Err(mismatch));
        assert_eq!(dollars.checked_sub(euros), Err(mismatch));
        assert_eq!(
            Money::sum(Currency::USD, [dollars, euros, dollars]),
            Err(mismatch)
        );
        assert_eq!(
            mismatch.to_string(),
            "cannot combine an amount in EUR with one in USD"
        );
    }

    #[test]
    fn overflow_at_the_i64_bounds_is_an_error_not_a_wrap() {
        let max = money(i64::MAX, "USD");
        let min = money(i64::MIN, "USD");
        let one = money(1, "USD");
        assert_eq!(max.checked_add(one), Err(MoneyError::Overflow));
        assert_eq!(min.checked_sub(one), Err(MoneyError::Overflow));
        assert_eq!(max.checked_sub(money(-1, "USD")), Err(MoneyError::Overflow));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(min.checked_mul(-1), Err(MoneyError::Overflow));
        assert_eq!(
            Money::sum(Currency::USD, [max, one]),
            Err(MoneyError::Overflow)
        );
        // Right at the bounds is still fine.
        assert_eq!(max.checked_mul(1), Ok(max));
        assert_eq!(money(i64::MAX - 1, "USD").checked_add(one), Ok(max));
        assert_eq!(min.checked_add(max), Ok(money(-1, "USD")));
    }

    #[test]
    fn a_sum_is_in_its_currency_even_when_empty() {
        let usd = Currency::USD;
        assert_eq!(Money::sum(usd, Vec::<Money>::new()), Ok(Money::zero(usd)));
        let lines = [money(2999, "USD"), money(1, "USD"), money(-500, "USD")];
        assert_eq!(Money::sum(usd, lines.iter()), Ok(money(2500, "USD")));
        // An order in euros cannot total dollar lines, even if they agree among themselves.
        assert!(matches!(
            Money::sum(Currency::parse("EUR").unwrap(), lines),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn amounts_print_in_their_currency_s_minor_units() {
        assert_eq!(money(1234, "USD").to_string(), "12.34 USD");
        assert_eq!(money(1234, "JPY").to_string(), "1234 JPY");
        assert_eq!(money(1234, "KWD").to_string(), "1.234 KWD");
        assert_eq!(money(12345, "CLF").to_string(), "1.2345 CLF");
        assert_eq!(money(5, "USD").to_string(), "0.05 USD");
        assert_eq!(money(0, "USD").to_string(), "0.00 USD");
        assert_eq!(money(-5, "EUR").to_string(), "-0.05 EUR");
        assert_eq!(money(-1234, "USD").to_string(), "-12.34 USD");
        assert_eq!(money(-1234, "JPY").to_string(), "-1234 JPY");
        assert_eq!(
            money(i64::MIN, "USD").to_string(),
            "-92233720368547758.08 USD"
        );
        assert_eq!(
            money(i64::MAX, "KWD").to_string(),
            "9223372036854775.807 KWD"
        );
    }

    #[test]
    fn contract_money_converts_both_ways() {
        let wire = api::common::Money {
            minor_units: -1234,
            currency: "KWD".into(),
        };
        let money = Money::try_from(&wire).unwrap();
        assert_eq!(money.to_string(), "-1.234 KWD");
        assert_eq!(api::common::Money::from(money), wire);
        assert_eq!(Money::try_from(wire.clone()), Ok(money));

        let bad = api::common::Money {
            minor_units: 1,
            currency: "usd".into(),
        };
        assert_eq!(
            Money::try_from(&bad).unwrap_err(),
            "is not an ISO 4217 currency code (upper case, like \"USD\")"
        );
        let missing = api::common::Money {
            minor_units: 1,
            currency: String::new(),
        };
        assert_eq!(Money::try_from(missing).unwrap_err(), "is required");
    }
}
