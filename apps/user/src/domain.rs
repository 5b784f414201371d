//! The rules of a profile, free of storage and transport.
//!
//! Requests and events are parsed here once, at the edge, into types that can only hold valid
//! values ("parse, don't validate"): a [`Username`] is always empty or 3 to 30 of `a-z0-9_`, a
//! [`Phone`] is always E.164, a [`PreferredCurrency`] is always one of the currencies the shop
//! supports. Code past the parsers never checks these things again.
//!
//! The words every service shares (field problems and their collector, bounded text,
//! currencies, page tokens and sizes) come from `vocab`. Parsing a request names every bad
//! field at once (`vocab::Fields`), with the request's own field names
//! ("preferences.currency", "user_ids[3]"). Nothing here does I/O or reads the clock (the
//! caller passes today's date), so it is all unit-tested in place.

mod currency;
mod profile;
mod query;

use std::fmt;

use uuid::Uuid;
use vocab::Problem;
use vocab::page::Keyset;

pub use currency::PreferredCurrency;
pub use profile::{
    AvatarUrl, DateOfBirth, Gender, LanguageTag, NewProfile, Notifications, PersonName, Phone,
    Preferences, Profile, ProfileChanges, ProfileStatus, Username,
};
pub use query::{BatchIds, Page, Search, SearchText};

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

/// The listing's keyset position: the last user id of the previous page (version 1 of the
/// token's layout is the id, hyphenated lower case).
impl Keyset for UserId {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(UserId)
    }
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
    fn a_user_id_is_the_listing_s_keyset_position() {
        let id = UserId::parse("0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e").unwrap();
        assert_eq!(id.write(), "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e");
        assert_eq!(UserId::read(&id.write()), Some(id));
        assert_eq!(UserId::read("customer-1"), None);
    }
}
