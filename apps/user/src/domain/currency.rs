//! The ISO 4217 currencies a customer may choose to see prices in.
//!
//! Not the whole standard: the ~45 currencies of the markets the shop sells to or is likely to
//! soon (the world's most traded ones and the major regional ones). A preference for a currency
//! the shop cannot show would be a silent lie, so the list is kept to what makes sense; add a
//! code here when a market opens. Keep the table sorted: lookups are binary searches.

use std::fmt;

use super::Problem;

/// A currency from the table, by its upper-case ISO 4217 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CurrencyCode(&'static str);

static CURRENCIES: &[&str] = &[
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP",
    "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KES", "KRW", "MAD", "MXN",
    "MYR", "NGN", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "SAR", "SEK", "SGD",
    "THB", "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
];

impl CurrencyCode {
    /// The default preference.
    pub const USD: CurrencyCode = CurrencyCode("USD");

    /// The currency with this exact (upper-case) code.
    pub fn parse(code: &str) -> Result<Self, Problem> {
        if code.is_empty() {
            return Err("is required".into());
        }
        CURRENCIES
            .binary_search(&code)
            .map(|index| CurrencyCode(CURRENCIES[index]))
            .map_err(|_| {
                "must be the upper-case ISO 4217 code of a currency the shop supports, like \"USD\""
                    .into()
            })
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates_so_binary_search_works() {
        for pair in CURRENCIES.windows(2) {
            assert!(pair[0] < pair[1], "{} before {}", pair[0], pair[1]);
        }
        for code in CURRENCIES {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn supported_codes_parse() {
        for code in ["USD", "EUR", "GBP", "JPY", "AED", "ZAR"] {
            assert_eq!(CurrencyCode::parse(code).unwrap().as_str(), code);
        }
        assert_eq!(CurrencyCode::USD.as_str(), "USD");
    }

    #[test]
    fn unknown_lower_case_and_malformed_codes_are_refused() {
        for code in ["", "usd", "Usd", "US", "USDD", " USD", "XXX", "XAU", "HRK"] {
            assert!(CurrencyCode::parse(code).is_err(), "{code:?} was accepted");
        }
    }
}
