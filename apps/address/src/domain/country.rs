//! ISO 3166-1 alpha-2 country codes: the 249 officially assigned ones.
//!
//! User-assigned codes (XK for Kosovo, AA, QM..QZ, XA..XZ, ZZ), exceptionally reserved ones (UK,
//! EU, AC) and withdrawn ones (AN, CS, YU) are not countries a parcel can be sent to in the
//! standard's sense, so they are refused. Keep the table sorted: lookups are binary searches.

use std::fmt;

use vocab::Problem;

/// A country from the table, always upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CountryCode(&'static str);

impl CountryCode {
    /// The country with this code, in any case ("de", "De" and "DE" are Germany).
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is required".into());
        }
        let upper = value.to_ascii_uppercase();
        COUNTRY_CODES
            .binary_search(&upper.as_str())
            .map(|index| CountryCode(COUNTRY_CODES[index]))
            .map_err(|_| {
                "is not an ISO 3166-1 alpha-2 country code (two letters, like \"US\" or \"DE\")"
                    .into()
            })
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Every officially assigned ISO 3166-1 alpha-2 code, sorted, grouped by first letter.
#[rustfmt::skip]
static COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ",
    "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW",
    "CX", "CY", "CZ",
    "DE", "DJ", "DK", "DM", "DO", "DZ",
    "EC", "EE", "EG", "EH", "ER", "ES", "ET",
    "FI", "FJ", "FK", "FM", "FO", "FR",
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT",
    "GU", "GW", "GY",
    "HK", "HM", "HN", "HR", "HT", "HU",
    "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
    "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
    "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
    "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM",
    "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
    "QA",
    "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ",
    "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ",
    "UA", "UG", "UM", "US", "UY", "UZ",
    "VA", "VC", "VE", "VG", "VI", "VN", "VU",
    "WF", "WS",
    "YE", "YT",
    "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_complete() {
        assert!(COUNTRY_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(COUNTRY_CODES.len(), 249);
        assert!(
            COUNTRY_CODES
                .iter()
                .all(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn any_case_is_accepted_and_stored_upper_case() {
        for input in ["de", "De", "dE", "DE", " de "] {
            assert_eq!(CountryCode::parse(input).unwrap().as_str(), "DE");
        }
        for code in ["US", "GB", "JP", "AX", "BQ", "SS", "SX", "ZW"] {
            assert_eq!(CountryCode::parse(code).unwrap().as_str(), code);
        }
    }

    #[test]
    fn codes_that_are_not_assigned_countries_are_refused() {
        for input in [
            "", "U", "USA", "UK", "EU", "XK", "ZZ", "AN", "YU", "1A", "ÜS",
        ] {
            assert!(CountryCode::parse(input).is_err(), "{input:?} was accepted");
        }
        assert_eq!(CountryCode::parse("").unwrap_err(), "is required");
    }
}
