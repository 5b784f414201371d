//! Postal codes: the general form every country shares, and the formats of the countries the
//! service knows well.
//!
//! A code is normalised before it is checked (trimmed, upper case, runs of spaces made one),
//! and a code in a known format is stored in that format's canonical spelling, so "sw1a1aa"
//! is stored as "SW1A 1AA" and "1000001" (Japan) as "100-0001". A country missing from
//! [`FORMATS`] only gets the general check: better to accept an odd code than to refuse a real
//! address because of a rule the service does not know.

use vocab::Problem;

use super::CountryCode;

/// A postal code: 0 to 20 of letters, digits, spaces and hyphens, in the country's format
/// where the service knows it. Empty only for countries without postal codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostalCode(String);

impl PostalCode {
    pub const MAX_CHARS: usize = 20;

    /// Parses `value` as a postal code of `country`; `None` when the country itself was
    /// invalid, so that only the general form is checked and its error is not repeated here.
    pub fn parse(value: &str, country: Option<CountryCode>) -> Result<Self, Problem> {
        let code = normalise(value);
        if code.is_empty() {
            return match country {
                Some(country) if !has_postal_codes(country) => Ok(PostalCode(code)),
                Some(_) => Err("is required".into()),
                None => Ok(PostalCode(code)),
            };
        }
        if code.chars().count() > Self::MAX_CHARS {
            return Err(format!("must have at most {} characters", Self::MAX_CHARS).into());
        }
        if !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        {
            return Err("may contain only letters, digits, spaces and hyphens".into());
        }
        let Some(format) = country.and_then(format_of) else {
            return Ok(PostalCode(code));
        };
        format
            .shapes
            .iter()
            .find_map(|shape| fit(&code, shape))
            .map(PostalCode)
            .ok_or_else(|| {
                format!(
                    "is not a postal code of {}: {}",
                    format.country, format.description
                )
                .into()
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trimmed, upper case, each run of whitespace one space.
fn normalise(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Countries (ISO 3166-1) without a national postal code system, where an address has no
/// code at all. Only countries where this is certain are listed; sorted.
static WITHOUT_POSTAL_CODES: &[&str] = &[
    "AE", "AG", "AO", "AW", "BS", "BZ", "CW", "DM", "FJ", "GD", "HK", "MO", "QA", "SR", "TV", "VU",
    "ZW",
];

fn has_postal_codes(country: CountryCode) -> bool {
    WITHOUT_POSTAL_CODES
        .binary_search(&country.as_str())
        .is_err()
}

/// The postal code format of one country.
struct Format {
    country: &'static str,
    /// What a code looks like, with an example, for the error message.
    description: &'static str,
    /// The accepted shapes, in canonical spelling: `9` is a digit, `@` a letter, `*` a letter
    /// or a digit, a space or hyphen is a separator that the input may leave out (or write as
    /// the other one), and anything else must appear as it is.
    shapes: &'static [&'static str],
}

const fn format(
    country: &'static str,
    description: &'static str,
    shapes: &'static [&'static str],
) -> Format {
    Format {
        country,
        description,
        shapes,
    }
}

const FOUR_DIGITS: &str = "4 digits";
const FIVE_DIGITS: &str = "5 digits";
const SIX_DIGITS: &str = "6 digits";
const THREE_AND_TWO_DIGITS: &str = "5 digits, written 3, a space and 2, like 114 55";

/// The countries whose format the service checks; sorted by country.
static FORMATS: &[Format] = &[
    format("AT", FOUR_DIGITS, &["9999"]),
    format("AU", FOUR_DIGITS, &["9999"]),
    format("BE", FOUR_DIGITS, &["9999"]),
    format(
        "BR",
        "a CEP: 8 digits, with an optional hyphen after the fifth, like 01310-100",
        &["99999-999"],
    ),
    format(
        "CA",
        "letter, digit, letter, space, digit, letter, digit, like K1A 0B1",
        &["@9@ 9@9"],
    ),
    format("CH", FOUR_DIGITS, &["9999"]),
    format("CN", SIX_DIGITS, &["999999"]),
    format("CZ", THREE_AND_TWO_DIGITS, &["999 99"]),
    format("DE", FIVE_DIGITS, &["99999"]),
    format("DK", FOUR_DIGITS, &["9999"]),
    format("ES", FIVE_DIGITS, &["99999"]),
    format("FI", FIVE_DIGITS, &["99999"]),
    format("FR", FIVE_DIGITS, &["99999"]),
    Format {
        country: "GB",
        description: "a postcode: an outward code (1 or 2 letters, a digit, and an optional \
                      letter or digit), a space and an inward code (a digit and 2 letters), \
                      like SW1A 1AA or M1 1AE",
        shapes: &[
            "@9 9@@", "@99 9@@", "@@9 9@@", "@@99 9@@", "@9@ 9@@", "@@9@ 9@@", "GIR 0AA",
        ],
    },
    format("GR", THREE_AND_TWO_DIGITS, &["999 99"]),
    format("HU", FOUR_DIGITS, &["9999"]),
    Format {
        country: "IE",
        description: "an Eircode: a routing key (a letter and 2 digits, or D6W), a space and \
                      4 letters or digits, like A65 F4E2",
        shapes: &["@99 ****", "D6W ****"],
    },
    Format {
        country: "IN",
        description: "a PIN: 6 digits, like 110001",
        shapes: &["999999"],
    },
    format("IT", FIVE_DIGITS, &["99999"]),
    format(
        "JP",
        "7 digits, written 3, a hyphen and 4, like 100-0001",
        &["999-9999"],
    ),
    format("KR", FIVE_DIGITS, &["99999"]),
    format("MX", FIVE_DIGITS, &["99999"]),
    format("MY", FIVE_DIGITS, &["99999"]),
    format(
        "NL",
        "4 digits, a space and 2 letters, like 1012 AB",
        &["9999 @@"],
    ),
    format("NO", FOUR_DIGITS, &["9999"]),
    format("NZ", FOUR_DIGITS, &["9999"]),
    format(
        "PL",
        "5 digits, written 2, a hyphen and 3, like 00-950",
        &["99-999"],
    ),
    format(
        "PT",
        "7 digits, written 4, a hyphen and 3, like 1000-001",
        &["9999-999"],
    ),
    format("RU", SIX_DIGITS, &["999999"]),
    format("SE", THREE_AND_TWO_DIGITS, &["999 99"]),
    format("SG", SIX_DIGITS, &["999999"]),
    format("SK", THREE_AND_TWO_DIGITS, &["999 99"]),
    format("TH", FIVE_DIGITS, &["99999"]),
    format("TR", FIVE_DIGITS, &["99999"]),
    Format {
        country: "US",
        description: "a ZIP code: 5 digits, or ZIP+4 (5 digits, a hyphen and 4), like 12345 \
                      or 12345-6789",
        shapes: &["99999", "99999-9999"],
    },
    format("ZA", FOUR_DIGITS, &["9999"]),
];

fn format_of(country: CountryCode) -> Option<&'static Format> {
    FORMATS
        .binary_search_by(|format| format.country.cmp(country.as_str()))
        .ok()
        .map(|index| &FORMATS[index])
}

fn is_separator(c: char) -> bool {
    c == ' ' || c == '-'
}

/// `code` in the canonical spelling of `shape`, or `None` when it does not have that shape.
///
/// A separator of the shape may be missing from the code, or written as the other
/// separator; the code may have no separator anywhere else.
fn fit(code: &str, shape: &str) -> Option<String> {
    let mut input = code.chars().peekable();
    let mut canonical = String::with_capacity(shape.len());
    for expected in shape.chars() {
        if is_separator(expected) {
            input.next_if(|&c| is_separator(c));
            canonical.push(expected);
            continue;
        }
        let actual = input.next()?;
        let fits = match expected {
            '9' => actual.is_ascii_digit(),
            '@' => actual.is_ascii_uppercase(),
            '*' => actual.is_ascii_digit() || actual.is_ascii_uppercase(),
            literal => actual == literal,
        };
        if !fits {
            return None;
        }
        canonical.push(actual);
    }
    input.next().is_none().then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(code: &str, country: &str) -> Result<String, Problem> {
        let country = CountryCode::parse(country).unwrap();
        PostalCode::parse(code, Some(country)).map(|code| code.0)
    }

    #[track_caller]
    fn accepts(country: &str, cases: &[(&str, &str)]) {
        for (input, stored) in cases {
            assert_eq!(
                parse(input, country).as_deref(),
                Ok(*stored),
                "{country} {input:?}"
            );
        }
    }

    #[track_caller]
    fn refuses(country: &str, inputs: &[&str]) {
        for input in inputs {
            let problem = parse(input, country).unwrap_err();
            assert!(
                problem.contains(&format!("postal code of {country}")),
                "{country} {input:?}: {problem}"
            );
        }
    }

    #[test]
    fn the_tables_are_sorted() {
        assert!(
            FORMATS
                .windows(2)
                .all(|pair| pair[0].country < pair[1].country)
        );
        assert!(
            WITHOUT_POSTAL_CODES
                .windows(2)
                .all(|pair| pair[0] < pair[1])
        );
        for format in FORMATS {
            CountryCode::parse(format.country).unwrap();
            assert!(has_postal_codes(
                CountryCode::parse(format.country).unwrap()
            ));
        }
    }

    #[test]
    fn us_zip_codes_have_5_digits_or_5_and_4() {
        accepts(
            "US",
            &[
                ("94103", "94103"),
                (" 94103 ", "94103"),
                ("94103-1234", "94103-1234"),
                ("941031234", "94103-1234"),
                ("94103 1234", "94103-1234"),
            ],
        );
        refuses(
            "US",
            &["9410", "941033", "94103-123", "ABCDE", "9410-31234"],
        );
        assert!(parse("1234", "US").unwrap_err().contains("ZIP"));
    }

    #[test]
    fn canadian_codes_alternate_letters_and_digits() {
        accepts(
            "CA",
            &[
                ("K1A 0B1", "K1A 0B1"),
                ("k1a0b1", "K1A 0B1"),
                ("k1a  0b1", "K1A 0B1"),
            ],
        );
        refuses("CA", &["K1A 0B", "11A 0B1", "K1A0B1X", "KAA 0B1"]);
    }

    #[test]
    fn british_postcodes_have_an_outward_and_an_inward_code() {
        accepts(
            "GB",
            &[
                ("SW1A 1AA", "SW1A 1AA"),
                ("sw1a1aa", "SW1A 1AA"),
                ("M1 1AE", "M1 1AE"),
                ("B33 8TH", "B33 8TH"),
                ("CR2 6XH", "CR2 6XH"),
                ("DN55 1PT", "DN55 1PT"),
                ("W1A 0AX", "W1A 0AX"),
                ("EC1A 1BB", "EC1A 1BB"),
                ("GIR 0AA", "GIR 0AA"),
            ],
        );
        refuses("GB", &["SW1A", "1AA SW1", "SW1A 1A", "SW1A-1AAA", "12345"]);
    }

    #[test]
    fn german_french_and_other_five_digit_codes() {
        accepts("DE", &[("10115", "10115"), ("01067", "01067")]);
        accepts("FR", &[("75001", "75001")]);
        refuses("DE", &["1011", "101155", "1O115"]);
        refuses("FR", &["7500", "F-75001", "75 001"]);
    }

    #[test]
    fn dutch_codes_have_4_digits_and_2_letters() {
        accepts(
            "NL",
            &[
                ("1012 AB", "1012 AB"),
                ("1012ab", "1012 AB"),
                ("1012-AB", "1012 AB"),
            ],
        );
        refuses("NL", &["1012", "1012 A", "AB 1012", "10123 AB"]);
    }

    #[test]
    fn japanese_codes_are_3_and_4_digits() {
        accepts("JP", &[("100-0001", "100-0001"), ("1000001", "100-0001")]);
        refuses("JP", &["100-001", "1000-001", "10000011"]);
    }

    #[test]
    fn australian_indian_and_brazilian_codes() {
        accepts("AU", &[("2000", "2000")]);
        refuses("AU", &["200", "20000"]);
        accepts("IN", &[("110001", "110001")]);
        refuses("IN", &["11001", "1100011"]);
        accepts(
            "BR",
            &[("01310-100", "01310-100"), ("01310100", "01310-100")],
        );
        refuses("BR", &["0131010", "01310-1000", "0131-0100"]);
    }

    #[test]
    fn irish_eircodes() {
        accepts("IE", &[("A65 F4E2", "A65 F4E2"), ("d6wfy46", "D6W FY46")]);
        refuses("IE", &["A65", "A6 F4E2", "D6X F4E2"]);
    }

    #[test]
    fn every_country_with_postal_codes_requires_one() {
        assert_eq!(parse("", "US").unwrap_err(), "is required");
        assert_eq!(parse("  ", "AR").unwrap_err(), "is required");
    }

    #[test]
    fn countries_without_postal_codes_may_leave_it_empty() {
        for country in ["HK", "AE", "QA"] {
            assert_eq!(parse("", country).as_deref(), Ok(""));
        }
    }

    #[test]
    fn unknown_formats_get_the_general_check_only() {
        assert_eq!(parse(" ab-12  3 ", "AR").as_deref(), Ok("AB-12 3"));
        assert_eq!(
            parse(&"1".repeat(21), "AR").unwrap_err(),
            "must have at most 20 characters"
        );
        assert_eq!(
            parse("12_34", "AR").unwrap_err(),
            "may contain only letters, digits, spaces and hyphens"
        );
        assert!(parse("ÄB12", "AR").is_err());
    }

    #[test]
    fn without_a_valid_country_only_the_general_form_is_checked() {
        assert_eq!(PostalCode::parse("1", None).unwrap().as_str(), "1");
        assert_eq!(PostalCode::parse("", None).unwrap().as_str(), "");
        assert!(PostalCode::parse("1#", None).is_err());
    }
}
