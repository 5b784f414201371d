//! The rules of a profile, free of storage and transport.
//!
//! Requests and events are parsed here once, at the edge, into types that can only hold valid
//! values ("parse, don't validate"): a [`Username`] is always empty or 3 to 30 of `a-z0-9_`, a
//! [`Phone`] is always E.164, a [`CurrencyCode`] is always one of the codes the shop accepts.
//! Code past the parsers never checks these things again.
//!
//! Parsing a request names every bad field at once (`rpc::Violations`), with the request's own
//! field names ("preferences.currency", "user_ids[3]"). Nothing here does I/O or reads the
//! clock (the caller passes today's date), so it is all unit-tested in place.

mod currency;
mod profile;
mod query;

use std::borrow::Cow;
use std::fmt;

use uuid::Uuid;

pub use currency::CurrencyCode;
pub use profile::{
    AvatarUrl, DateOfBirth, Gender, LanguageTag, NewProfile, Notifications, PersonName, Phone,
    Preferences, Profile, ProfileChanges, ProfileStatus, Username,
};
pub use query::{BatchIds, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageSize, Search, SearchText};

/// What is wrong with one field, in words a caller can act on.
pub type Problem = Cow<'static, str>;

/// An account's id, which is also its profile's key: a UUID (v7 from the auth service, so ids
/// sort by registration time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Uuid);

impl UserId {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err("is required".into());
        }
        Uuid::try_parse(value)
            .map(UserId)
            .map_err(|_| "must be a UUID".into())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        UserId(uuid)
    }

    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lower case: the form stored in MongoDB's `_id`, which sorts like the UUID.
        self.0.hyphenated().fmt(f)
    }
}

/// Collects the problems of every field of a request while parsing it, so that one reply
/// names them all.
#[derive(Default)]
struct Fields {
    violations: rpc::Violations,
}

impl Fields {
    /// The parsed value, or `None` with the problem recorded against `field`.
    fn parse<T>(&mut self, field: &str, parsed: Result<T, Problem>) -> Option<T> {
        parsed
            .map_err(|problem| self.violations.add(field, problem))
            .ok()
    }

    /// Parses a field that may be absent: `Some(None)` when absent, `None` when invalid.
    fn optional<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match value {
            None => Some(None),
            Some(value) => self.parse(field, parse(value)).map(Some),
        }
    }

    /// One `invalid_argument` naming every bad field, or the value `build` assembles. `build`
    /// returns `None` only if a field failed, and every failure was recorded, so the `expect`
    /// states an invariant of this type rather than a hope.
    fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, rpc::Error> {
        self.violations.into_result()?;
        Ok(build().expect("a field failed to parse without recording a violation"))
    }
}

/// Trims `value` and checks its length in characters; control characters are refused (a name
/// never needs one, and PostgreSQL text cannot hold NUL).
fn bounded_text(value: &str, max_chars: usize) -> Result<String, Problem> {
    let value = value.trim();
    if value.chars().count() > max_chars {
        return Err(format!("must have at most {max_chars} characters").into());
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// The fields an `invalid_argument` error names, in order.
#[cfg(test)]
fn bad_fields(error: rpc::Error) -> Vec<String> {
    assert_eq!(error.code(), rpc::ErrorCode::InvalidArgument, "{error}");
    error.details().iter().map(|d| d.field.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_uuids_and_print_hyphenated_lower_case() {
        let id = UserId::parse("0190F5C6-1E2B-7A1C-9D3E-4F5A6B7C8D9E").unwrap();
        assert_eq!(id.to_string(), "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e");
        assert_eq!(UserId::parse("").unwrap_err(), "is required");
        assert_eq!(UserId::parse("customer-1").unwrap_err(), "must be a UUID");
    }

    #[test]
    fn bounded_text_trims_and_refuses_long_or_control_text() {
        assert_eq!(bounded_text("  Ada  ", 3).unwrap(), "Ada");
        assert_eq!(bounded_text("", 3).unwrap(), "");
        assert!(bounded_text("Adam", 3).is_err());
        assert!(bounded_text("A\u{0}a", 3).is_err());
        // Characters, not bytes.
        assert_eq!(bounded_text("ÅÉÎ", 3).unwrap(), "ÅÉÎ");
    }
}
