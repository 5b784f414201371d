//! Where profiles are kept: a document store behind one trait, [`ProfileStore`], with two
//! implementations, chosen at start-up.
//!
//! - [`postgres::PgProfiles`]: a JSONB document per profile in PostgreSQL (the default: it
//!   needs no extra server in development or tests), with a partial unique index on the
//!   username and a trigram index for search.
//! - [`mongo::MongoProfiles`]: a MongoDB collection `profiles` with `_id` = user id, used when
//!   `--mongodb-url` is set.
//!
//! Both store the same document ([`Profile`]) and behave the same way; the integration tests
//! hold one conformance suite that runs against each. Handlers and the event consumer are
//! generic over the trait and never know which one they have.

pub mod mongo;
pub mod postgres;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::{NewProfile, Page, Profile, ProfileChanges, Search, UserId};

/// A stored profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    pub user_id: UserId,
    pub profile: Profile,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a store operation did not happen. Only [`StoreError::UsernameTaken`] is the caller's
/// doing; the others are logged and answered as internal errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    #[error("a stored profile cannot be read: {0}")]
    Corrupt(String),
}

/// The operations the service needs from a document store.
///
/// Each returns a `Send` future so handlers can run on any worker thread. Implementations are
/// cheap to clone (a pool or client handle inside).
pub trait ProfileStore: Clone + Send + Sync + 'static {
    /// The profile of `user_id`, if it was created.
    fn get(
        &self,
        user_id: UserId,
    ) -> impl Future<Output = Result<Option<ProfileRecord>, StoreError>> + Send;

    /// Creates the profile unless one exists for its user id, which it then leaves exactly as
    /// it is. Whether it created it. This is what makes the consumer idempotent: however often
    /// `user.registered` is delivered, one profile exists, unchanged by the repeats.
    fn create_if_absent(
        &self,
        new: &NewProfile,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sets the fields `changes` holds, in one atomic write; `None` when there is no profile.
    /// [`StoreError::UsernameTaken`] when another profile has the username.
    fn update(
        &self,
        user_id: UserId,
        changes: &ProfileChanges,
    ) -> impl Future<Output = Result<Option<ProfileRecord>, StoreError>> + Send;

    /// Up to `limit` profiles in user id order, after `page.after`.
    fn list(
        &self,
        page: Page,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ProfileRecord>, StoreError>> + Send;

    /// Up to `search.size` profiles, in user id order, whose email, username, first or last
    /// name contains the text, ignoring case.
    fn search(
        &self,
        search: &Search,
    ) -> impl Future<Output = Result<Vec<ProfileRecord>, StoreError>> + Send;

    /// The profiles of those of `user_ids` that have one, in no particular order.
    fn batch_get(
        &self,
        user_ids: &[UserId],
    ) -> impl Future<Output = Result<Vec<ProfileRecord>, StoreError>> + Send;
}

/// The document fields an update sets, as one JSON object both stores merge into the stored
/// document (PostgreSQL's `||`, MongoDB's `$set`): top-level keys only, so `preferences` is
/// replaced whole.
pub(crate) fn patch(changes: &ProfileChanges) -> Map<String, Value> {
    let mut patch = Map::new();
    let mut set = |field: &str, value: Option<&str>| {
        if let Some(value) = value {
            patch.insert(field.to_owned(), Value::from(value));
        }
    };
    set("username", changes.username.as_ref().map(|v| v.as_str()));
    set(
        "first_name",
        changes.first_name.as_ref().map(|v| v.as_str()),
    );
    set("last_name", changes.last_name.as_ref().map(|v| v.as_str()));
    set("phone", changes.phone.as_ref().map(|v| v.as_str()));
    set(
        "avatar_url",
        changes.avatar_url.as_ref().map(|v| v.as_str()),
    );
    set(
        "date_of_birth",
        changes.date_of_birth.as_ref().map(|v| v.as_str()),
    );
    set("gender", changes.gender.map(|v| v.as_str()));
    if let Some(preferences) = &changes.preferences {
        patch.insert(
            "preferences".to_owned(),
            serde_json::to_value(preferences).expect("preferences serialize to JSON"),
        );
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Gender, PersonName, Preferences};

    #[test]
    fn a_patch_holds_only_the_fields_present() {
        let changes = ProfileChanges {
            first_name: Some(PersonName::parse("Ada").unwrap()),
            gender: Some(Gender::NotSaid),
            preferences: Some(Preferences::default()),
            ..Default::default()
        };
        let patch = Value::Object(patch(&changes));
        assert_eq!(
            patch,
            serde_json::json!({
                "first_name": "Ada",
                "gender": "",
                "preferences": {
                    "language": "en",
                    "currency": "USD",
                    "notifications": {"email": true, "sms": false, "push": false}
                }
            })
        );
    }
}
