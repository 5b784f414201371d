//! ISO 4217 currencies: one table, with each currency's minor-unit digits.
//!
//! The table is ISO 4217 list one (current funds and currencies), keeping only the entries
//! that have minor units: precious metals, bond-market units, the SDR, the testing code and
//! "no currency" (XAU, XBA, XDR, XTS, XXX, ...) cannot price anything a shop sells. Codes in a
//! changeover (ANG and XCG, SLL and SLE, ZWL and ZWG) are both listed until the old one is
//! withdrawn. Keep the table sorted: lookups are binary searches, and a test checks the order.
//!
//! Which of these a service accepts for a given purpose (say, the currencies a customer may
//! prefer) is that service's rule, written as a list of codes filtered over this table.

use std::fmt;

use crate::Problem;

/// A currency from the table: its upper-case code and how many decimal digits its minor unit
/// has. Only the table makes values of this type, so holding one means the code is real.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_unit_digits: u8,
}

impl Currency {
    /// US dollars: the shop's default currency.
    pub const USD: Currency = Currency {
        code: "USD",
        minor_unit_digits: 2,
    };

    /// The currency with this exact (upper-case) code.
    pub fn parse(code: &str) -> Result<Self, Problem> {
        if code.is_empty() {
            return Err("is required".into());
        }
        Self::find(code)
            .ok_or_else(|| "is not an ISO 4217 currency code (upper case, like \"USD\")".into())
    }

    /// The currency with this exact (upper-case) code, if the table has it; for callers that
    /// word their own problem.
    pub fn find(code: &str) -> Option<Self> {
        CURRENCIES
            .binary_search_by(|currency| currency.code.cmp(code))
            .ok()
            .map(|index| CURRENCIES[index])
    }

    /// Every currency, sorted by code.
    pub fn all() -> &'static [Currency] {
        CURRENCIES
    }

    /// The ISO 4217 alphabetic code: "USD".
    pub const fn code(self) -> &'static str {
        self.code
    }

    /// 2 for USD (cents), 0 for JPY, 3 for KWD.
    pub const fn minor_unit_digits(self) -> u8 {
        self.minor_unit_digits
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

macro_rules! currencies {
    ($($code:literal $digits:literal),* $(,)?) => {
        &[$(Currency { code: $code, minor_unit_digits: $digits }),*]
    };
}

static CURRENCIES: &[Currency] = currencies![
    "AED" 2, "AFN" 2, "ALL" 2, "AMD" 2, "ANG" 2, "AOA" 2, "ARS" 2, "AUD" 2, "AWG" 2, "AZN" 2,
    "BAM" 2, "BBD" 2, "BDT" 2, "BGN" 2, "BHD" 3, "BIF" 0, "BMD" 2, "BND" 2, "BOB" 2, "BOV" 2,
    "BRL" 2, "BSD" 2, "BTN" 2, "BWP" 2, "BYN" 2, "BZD" 2,
    "CAD" 2, "CDF" 2, "CHE" 2, "CHF" 2, "CHW" 2, "CLF" 4, "CLP" 0, "CNY" 2, "COP" 2, "COU" 2,
    "CRC" 2, "CUP" 2, "CVE" 2, "CZK" 2,
    "DJF" 0, "DKK" 2, "DOP" 2, "DZD" 2,
    "EGP" 2, "ERN" 2, "ETB" 2, "EUR" 2,
    "FJD" 2, "FKP" 2,
    "GBP" 2, "GEL" 2, "GHS" 2, "GIP" 2, "GMD" 2, "GNF" 0, "GTQ" 2, "GYD" 2,
    "HKD" 2, "HNL" 2, "HTG" 2, "HUF" 2,
    "IDR" 2, "ILS" 2, "INR" 2, "IQD" 3, "IRR" 2, "ISK" 0,
    "JMD" 2, "JOD" 3, "JPY" 0,
    "KES" 2, "KGS" 2, "KHR" 2, "KMF" 0, "KPW" 2, "KRW" 0, "KWD" 3, "KYD" 2, "KZT" 2,
    "LAK" 2, "LBP" 2, "LKR" 2, "LRD" 2, "LSL" 2, "LYD" 3,
    "MAD" 2, "MDL" 2, "MGA" 2, "MKD" 2, "MMK" 2, "MNT" 2, "MOP" 2, "MRU" 2, "MUR" 2, "MVR" 2,
    "MWK" 2, "MXN" 2, "MXV" 2, "MYR" 2, "MZN" 2,
    "NAD" 2, "NGN" 2, "NIO" 2, "NOK" 2, "NPR" 2, "NZD" 2,
    "OMR" 3,
    "PAB" 2, "PEN" 2, "PGK" 2, "PHP" 2, "PKR" 2, "PLN" 2, "PYG" 0,
    "QAR" 2,
    "RON" 2, "RSD" 2, "RUB" 2, "RWF" 0,
    "SAR" 2, "SBD" 2, "SCR" 2, "SDG" 2, "SEK" 2, "SGD" 2, "SHP" 2, "SLE" 2, "SLL" 2, "SOS" 2,
    "SRD" 2, "SSP" 2, "STN" 2, "SVC" 2, "SYP" 2, "SZL" 2,
    "THB" 2, "TJS" 2, "TMT" 2, "TND" 3, "TOP" 2, "TRY" 2, "TTD" 2, "TWD" 2, "TZS" 2,
    "UAH" 2, "UGX" 0, "USD" 2, "USN" 2, "UYI" 0, "UYU" 2, "UYW" 4, "UZS" 2,
    "VED" 2, "VES" 2, "VND" 0, "VUV" 0,
    "WST" 2,
    "XAF" 0, "XCD" 2, "XCG" 2, "XOF" 0, "XPF" 0,
    "YER" 2,
    "ZAR" 2, "ZMW" 2, "ZWG" 2, "ZWL" 2,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates_so_binary_search_works() {
        for pair in CURRENCIES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0].code,
                pair[1].code
            );
        }
        for currency in CURRENCIES {
            assert_eq!(currency.code.len(), 3);
            assert!(currency.code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(currency.minor_unit_digits <= 4, "{}", currency.code);
        }
    }

    #[test]
    fn every_currency_is_found_by_its_code() {
        for currency in Currency::all() {
            assert_eq!(Currency::parse(currency.code()), Ok(*currency));
        }
    }

    #[test]
    fn real_codes_parse_with_their_minor_units() {
        assert_eq!(Currency::parse("USD").unwrap().minor_unit_digits(), 2);
        assert_eq!(Currency::parse("EUR").unwrap().code(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().minor_unit_digits(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_unit_digits(), 3);
        assert_eq!(Currency::parse("CLF").unwrap().minor_unit_digits(), 4);
        assert_eq!(Currency::parse("AED").unwrap().to_string(), "AED");
        assert_eq!(Currency::parse("ZWL").unwrap().code(), "ZWL");
    }

    #[test]
    fn the_usd_constant_is_the_table_entry() {
        assert_eq!(Currency::find("USD"), Some(Currency::USD));
    }

    #[test]
    fn unknown_malformed_and_non_monetary_codes_are_refused() {
        assert_eq!(Currency::parse("").unwrap_err(), "is required");
        for code in [
            "XYZ", "usd", "US", "USDD", " USD", "XAU", "XXX", "XTS", "HRK",
        ] {
            assert_eq!(
                Currency::parse(code).unwrap_err(),
                "is not an ISO 4217 currency code (upper case, like \"USD\")",
                "{code:?}"
            );
            assert_eq!(Currency::find(code), None, "{code:?}");
        }
    }
}
