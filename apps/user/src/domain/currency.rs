//! The currencies a customer may choose to see prices in.
//!
//! Not the whole of ISO 4217 (`vocab::Currency` is that): the ~45 currencies of the markets the
//! shop sells to or is likely to soon (the world's most traded ones and the major regional
//! ones). A preference for a currency the shop cannot show would be a silent lie, so the list
//! is kept to what makes sense; add a code here when a market opens. It is only a list of
//! codes: what a currency is, and whether a code is one, is `vocab::Currency`'s to say.

use std::fmt;

use vocab::{Currency, Problem};

/// The codes a preference may name, each a code of `vocab::Currency`'s table (a test checks).
const SUPPORTED: &[&str] = &[
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP",
    "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KES", "KRW", "MAD", "MXN",
    "MYR", "NGN", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "SAR", "SEK", "SGD",
    "THB", "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
];

/// A currency the shop supports for a customer's preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PreferredCurrency(Currency);

impl PreferredCurrency {
    /// The default preference.
    pub const USD: PreferredCurrency = PreferredCurrency(Currency::USD);

    /// The supported currency with this exact (upper-case) code.
    pub fn parse(code: &str) -> Result<Self, Problem> {
        if code.is_empty() {
            return Err("is required".into());
        }
        Currency::find(code)
            .filter(|currency| SUPPORTED.contains(&currency.code()))
            .map(PreferredCurrency)
            .ok_or_else(|| {
                "must be the upper-case ISO 4217 code of a currency the shop supports, like \"USD\""
                    .into()
            })
    }

    pub fn currency(self) -> Currency {
        self.0
    }

    pub fn as_str(self) -> &'static str {
        self.0.code()
    }
}

impl fmt::Display for PreferredCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_code_is_an_iso_4217_currency_listed_once() {
        for (index, code) in SUPPORTED.iter().enumerate() {
            assert!(Currency::find(code).is_some(), "{code} is not in ISO 4217");
            assert!(!SUPPORTED[..index].contains(code), "{code} is listed twice");
        }
    }

    #[test]
    fn supported_codes_parse() {
        for code in ["USD", "EUR", "GBP", "JPY", "AED", "ZAR"] {
            assert_eq!(PreferredCurrency::parse(code).unwrap().as_str(), code);
        }
        assert_eq!(PreferredCurrency::USD.as_str(), "USD");
        assert_eq!(PreferredCurrency::USD.currency(), Currency::USD);
    }

    #[test]
    fn unknown_unsupported_lower_case_and_malformed_codes_are_refused() {
        assert_eq!(PreferredCurrency::parse("").unwrap_err(), "is required");
        // KWD is a real currency, but not one the shop shows prices in.
        for code in [
            "usd", "Usd", "US", "USDD", " USD", "XXX", "XAU", "HRK", "KWD",
        ] {
            assert_eq!(
                PreferredCurrency::parse(code).unwrap_err(),
                "must be the upper-case ISO 4217 code of a currency the shop supports, like \"USD\"",
                "{code:?}"
            );
        }
    }
}
