//! The rules of an address book, free of storage and transport.
//!
//! Requests are parsed here once, at the edge, into types that can only hold valid values
//! ("parse, don't validate"): a [`RecipientName`] is always 1 to 200 characters, a
//! [`CountryCode`] is always an assigned ISO 3166-1 code in upper case, a [`PostalCode`] always
//! fits its country's format where the service knows it. Code past the parsers never checks
//! these things again.
//!
//! Parsing a request names every bad field at once (`vocab::Fields`), using the request's
//! own field names; free text follows the rule every service shares (`vocab::bounded_text`).
//! Nothing in this module does I/O, so it is all unit-tested in place.

mod country;
mod postal_code;

use std::fmt;

use api::address::{CreateAddressRequest, UpdateAddressRequest};
use uuid::Uuid;
use vocab::{Fields, LineBreaks, Problem, bounded_text};

pub use country::CountryCode;
pub use postal_code::PostalCode;

/// How many addresses one user may keep.
pub const MAX_ADDRESSES_PER_USER: i64 = 50;

/// A stored address; UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressId(Uuid);

impl AddressId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        AddressId(Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err("is required".into());
        }
        Uuid::try_parse(value)
            .map(AddressId)
            .map_err(|_| "must be a UUID".into())
    }

    /// The id of a request that only names an address (get, delete, set default).
    pub fn parse_field(field: &str, value: &str) -> Result<Self, rpc::Error> {
        Self::parse(value).map_err(|problem| rpc::Error::invalid_field(field, problem))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for AddressId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The user whose addresses a request reads and changes: always the authenticated caller.
/// Users live in the user service; here the id is only the key every query filters by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnerId(Uuid);

impl OwnerId {
    /// The caller's user id, which the user service issues as a UUID.
    pub fn parse(user_id: &str) -> Result<Self, Problem> {
        Uuid::try_parse(user_id)
            .map(OwnerId)
            .map_err(|_| "the caller's user id is not a UUID".into())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A text field of an address: trimmed, `MIN` to `MAX` characters, no control characters (a
/// line break inside one line of an address label is always a mistake).
macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $min:literal ..= $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: &str) -> Result<Self, Problem> {
                bounded_text(value, $min..=$max, LineBreaks::Refused).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_field!(
    /// Who receives deliveries at the address.
    RecipientName, 1..=200
);
text_field!(
    /// The street line: street and number, or a PO box.
    StreetLine, 1..=200
);
text_field!(
    /// The optional second line: apartment, floor, building, care of.
    ExtraLine, 0..=200
);
text_field!(City, 1..=100);
text_field!(
    /// State, province or region; optional, as many countries do not use one.
    Region, 0..=100
);

/// A phone number in E.164 form (+, then 8 to 15 digits, the first not 0), or none.
///
/// Spaces, hyphens, dots and parentheses that people write between digits are dropped, so
/// "+1 (415) 555-2671" is stored as "+14155552671".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let compact: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        if compact.is_empty() {
            return Ok(Phone(compact));
        }
        let valid = compact.strip_prefix('+').is_some_and(|digits| {
            (8..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        });
        if valid {
            Ok(Phone(compact))
        } else {
            Err(
                "must be an E.164 number (+, the country code and the number, 8 to 15 \
                 digits in all, like +14155552671), or empty"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Every field of an address a user writes, valid. Create and update both carry all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressFields {
    pub recipient_name: RecipientName,
    pub phone: Phone,
    pub line1: StreetLine,
    pub line2: ExtraLine,
    pub city: City,
    pub region: Region,
    pub postal_code: PostalCode,
    pub country_code: CountryCode,
}

/// The address fields of a request, as sent.
struct RawFields<'a> {
    recipient_name: &'a str,
    phone: &'a str,
    line1: &'a str,
    line2: &'a str,
    city: &'a str,
    region: &'a str,
    postal_code: &'a str,
    country_code: &'a str,
}

impl AddressFields {
    /// Parses every field, recording each problem in `request_fields` in the request's field
    /// order.
    fn parse(raw: RawFields<'_>, request_fields: &mut Fields) -> Option<Self> {
        // The postal code's format depends on the country, so the country is parsed first;
        // its problem is still reported in field order below.
        let country_code = CountryCode::parse(raw.country_code);
        let postal_code = PostalCode::parse(raw.postal_code, country_code.as_ref().ok().copied());
        let recipient_name = RecipientName::parse(raw.recipient_name);
        let recipient_name = request_fields.parse("recipient_name", recipient_name);
        let phone = request_fields.parse("phone", Phone::parse(raw.phone));
        let line1 = request_fields.parse("line1", StreetLine::parse(raw.line1));
        let line2 = request_fields.parse("line2", ExtraLine::parse(raw.line2));
        let city = request_fields.parse("city", City::parse(raw.city));
        let region = request_fields.parse("region", Region::parse(raw.region));
        let postal_code = request_fields.parse("postal_code", postal_code);
        let country_code = request_fields.parse("country_code", country_code);
        Some(AddressFields {
            recipient_name: recipient_name?,
            phone: phone?,
            line1: line1?,
            line2: line2?,
            city: city?,
            region: region?,
            postal_code: postal_code?,
            country_code: country_code?,
        })
    }
}

/// A new address, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAddress {
    pub fields: AddressFields,
    /// The caller asked for it to become the default.
    pub make_default: bool,
}

impl NewAddress {
    pub fn parse(request: &CreateAddressRequest) -> Result<Self, rpc::Error> {
        let mut request_fields = Fields::default();
        let fields = AddressFields::parse(
            RawFields {
                recipient_name: &request.recipient_name,
                phone: &request.phone,
                line1: &request.line1,
                line2: &request.line2,
                city: &request.city,
                region: &request.region,
                postal_code: &request.postal_code,
                country_code: &request.country_code,
            },
            &mut request_fields,
        );
        let fields = request_fields.finish(|| fields)?;
        Ok(NewAddress {
            fields,
            make_default: request.is_default,
        })
    }
}

/// A replacement of every field of one address (PUT); whether it is the default stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressReplacement {
    pub id: AddressId,
    pub fields: AddressFields,
}

impl AddressReplacement {
    pub fn parse(request: &UpdateAddressRequest) -> Result<Self, rpc::Error> {
        let mut request_fields = Fields::default();
        let id = request_fields.parse("id", AddressId::parse(&request.id));
        let fields = AddressFields::parse(
            RawFields {
                recipient_name: &request.recipient_name,
                phone: &request.phone,
                line1: &request.line1,
                line2: &request.line2,
                city: &request.city,
                region: &request.region,
                postal_code: &request.postal_code,
                country_code: &request.country_code,
            },
            &mut request_fields,
        );
        let (id, fields) = request_fields.finish(|| id.zip(fields))?;
        Ok(AddressReplacement { id, fields })
    }
}

/// Why a user cannot add another address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressLimitReached;

/// Whether a new address becomes the user's default, given how many they have: the first
/// always does (a user with addresses has a default), a later one when the caller asks.
pub fn becomes_default(existing: i64, make_default: bool) -> Result<bool, AddressLimitReached> {
    if existing >= MAX_ADDRESSES_PER_USER {
        Err(AddressLimitReached)
    } else {
        Ok(existing == 0 || make_default)
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    fn request() -> CreateAddressRequest {
        CreateAddressRequest {
            recipient_name: "  Ada Lovelace ".into(),
            phone: "+44 20 7946 0958".into(),
            line1: "10 Downing Street".into(),
            line2: String::new(),
            city: "London".into(),
            region: String::new(),
            postal_code: "sw1a2aa".into(),
            country_code: "gb".into(),
            is_default: false,
        }
    }

    #[test]
    fn a_valid_request_is_normalised() {
        let new = NewAddress::parse(&request()).unwrap();
        assert_eq!(new.fields.recipient_name.as_str(), "Ada Lovelace");
        assert_eq!(new.fields.phone.as_str(), "+442079460958");
        assert_eq!(new.fields.postal_code.as_str(), "SW1A 2AA");
        assert_eq!(new.fields.country_code.as_str(), "GB");
        assert!(!new.make_default);
    }

    #[test]
    fn every_bad_field_is_named_in_request_order() {
        let error = NewAddress::parse(&CreateAddressRequest {
            recipient_name: "   ".into(),
            phone: "12345".into(),
            line1: String::new(),
            line2: "x".repeat(201),
            city: "x".repeat(101),
            region: "x".repeat(101),
            postal_code: "1234".into(),
            country_code: "XX".into(),
            is_default: true,
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "recipient_name",
                "phone",
                "line1",
                "line2",
                "city",
                "region",
                "country_code"
            ],
            "with no valid country, the postal code only gets the general check"
        );
        let error = NewAddress::parse(&CreateAddressRequest {
            postal_code: "1234".into(),
            country_code: "us".into(),
            ..request()
        })
        .unwrap_err();
        assert_eq!(error.details()[0].field, "postal_code");
        assert!(error.details()[0].problem.contains("ZIP"), "{error}");
    }

    #[test]
    fn an_update_names_a_bad_id_with_the_other_fields() {
        let request = request();
        let update = UpdateAddressRequest {
            id: "not-a-uuid".into(),
            recipient_name: request.recipient_name.clone(),
            phone: request.phone.clone(),
            line1: String::new(),
            line2: request.line2.clone(),
            city: request.city.clone(),
            region: request.region.clone(),
            postal_code: request.postal_code.clone(),
            country_code: request.country_code.clone(),
        };
        assert_eq!(
            bad_fields(&AddressReplacement::parse(&update).unwrap_err()),
            ["id", "line1"]
        );
        let id = AddressId::generate();
        let update = UpdateAddressRequest {
            id: id.to_string(),
            line1: "1 Main Street".into(),
            ..update
        };
        let parsed = AddressReplacement::parse(&update).unwrap();
        assert_eq!(parsed.id, id);
        assert_eq!(parsed.fields.line1.as_str(), "1 Main Street");
    }

    #[test]
    fn text_fields_are_trimmed_and_bounded_in_characters() {
        assert_eq!(RecipientName::parse("  Zoë  ").unwrap().as_str(), "Zoë");
        assert!(RecipientName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            RecipientName::parse(&"é".repeat(201)).unwrap_err(),
            "must have at most 200 characters"
        );
        assert_eq!(City::parse(" ").unwrap_err(), "must not be empty");
        assert_eq!(ExtraLine::parse("  ").unwrap().as_str(), "");
        assert_eq!(Region::parse("").unwrap().as_str(), "");
        assert!(StreetLine::parse("1 Main\nStreet").is_err());
        assert!(StreetLine::parse("1 Main\0Street").is_err());
    }

    #[test]
    fn phones_are_e164_or_empty() {
        assert_eq!(Phone::parse("").unwrap().as_str(), "");
        assert_eq!(Phone::parse("  ").unwrap().as_str(), "");
        assert_eq!(
            Phone::parse("+1 (415) 555-2671").unwrap().as_str(),
            "+14155552671"
        );
        assert!(Phone::parse("+12345678").is_ok(), "8 digits");
        assert!(Phone::parse("+123456789012345").is_ok(), "15 digits");
        for bad in [
            "4155552671",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            "+1415555267x",
            "++14155552671",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        assert_eq!(AddressId::parse("").unwrap_err(), "is required");
        assert_eq!(AddressId::parse("42").unwrap_err(), "must be a UUID");
        let error = AddressId::parse_field("id", "42").unwrap_err();
        assert_eq!(bad_fields(&error), ["id"]);
        assert!(OwnerId::parse("customer-1").is_err());
        assert!(OwnerId::parse(&Uuid::now_v7().to_string()).is_ok());
    }

    #[test]
    fn the_first_address_is_the_default_and_fifty_is_the_limit() {
        assert_eq!(becomes_default(0, false), Ok(true));
        assert_eq!(becomes_default(0, true), Ok(true));
        assert_eq!(becomes_default(1, false), Ok(false));
        assert_eq!(becomes_default(1, true), Ok(true));
        assert_eq!(becomes_default(49, true), Ok(true));
        assert_eq!(becomes_default(50, false), Err(AddressLimitReached));
        assert_eq!(becomes_default(51, true), Err(AddressLimitReached));
    }
}
