//! Profiles in MongoDB: the collection `profiles`, one document per account with `_id` = the
//! user id (hyphenated lower case, so `_id` order is user id order), the profile's fields at
//! the top level, and `created_at` / `updated_at` as BSON dates.
//!
//! [`MongoProfiles::open`] creates the partial unique index on `username` (non-empty
//! usernames only; they are stored lower case). A duplicate key on it becomes
//! [`StoreError::UsernameTaken`]. Search is a case-insensitive `$regex` of the escaped text on
//! each of the four fields: a collection scan, which is fine at the size admin search serves.

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use mongodb::bson::{self, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, IndexModel};

use super::{ProfileRecord, ProfileStore, StoreError, patch};
use crate::domain::{NewProfile, Page, Profile, ProfileChanges, Search, UserId};

pub const COLLECTION: &str = "profiles";
/// The unique index that keeps usernames unique, when set.
pub const USERNAME_INDEX: &str = "profiles_username_key";
/// MongoDB's code for a unique index violation.
const DUPLICATE_KEY: i32 = 11000;

/// The profiles in one MongoDB database.
#[derive(Clone, Debug)]
pub struct MongoProfiles {
    profiles: Collection<Document>,
}

impl MongoProfiles {
    /// The `profiles` collection of `database`, with its username index created if missing.
    pub async fn open(database: &mongodb::Database) -> Result<Self, StoreError> {
        let profiles = database.collection::<Document>(COLLECTION);
        let username_index = IndexModel::builder()
            .keys(doc! { "username": 1 })
            .options(
                IndexOptions::builder()
                    .name(USERNAME_INDEX.to_owned())
                    .unique(true)
                    .partial_filter_expression(doc! { "username": { "$gt": "" } })
                    .build(),
            )
            .build();
        profiles.create_index(username_index).await?;
        Ok(Self { profiles })
    }
}

fn id_filter(user_id: UserId) -> Document {
    doc! { "_id": user_id.to_string() }
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        ErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn timestamp(document: &Document, field: &str) -> Result<DateTime<Utc>, StoreError> {
    let at = document.get_datetime(field).map_err(corrupt)?;
    DateTime::from_timestamp_millis(at.timestamp_millis())
        .ok_or_else(|| corrupt(format!("{field} is out of range")))
}

fn record(document: Document) -> Result<ProfileRecord, StoreError> {
    let user_id = document.get_str("_id").map_err(corrupt)?;
    let user_id = UserId::parse(user_id).map_err(corrupt)?;
    let created_at = timestamp(&document, "created_at")?;
    let updated_at = timestamp(&document, "updated_at")?;
    // Unknown fields (`_id`, the timestamps) are ignored by Profile's deserializer.
    let profile: Profile = bson::from_document(document).map_err(corrupt)?;
    Ok(ProfileRecord {
        user_id,
        profile,
        created_at,
        updated_at,
    })
}

async fn records(cursor: mongodb::Cursor<Document>) -> Result<Vec<ProfileRecord>, StoreError> {
    let documents: Vec<Document> = cursor.try_collect().await?;
    documents.into_iter().map(record).collect()
}

impl ProfileStore for MongoProfiles {
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    async fn get(&self, user_id: UserId) -> Result<Option<ProfileRecord>, StoreError> {
        let document = self.profiles.find_one(id_filter(user_id)).await?;
        document.map(record).transpose()
    }

    /// An upsert that only sets fields on insert: a second call for the same id matches the
    /// existing document and changes nothing.
    #[tracing::instrument(skip_all, fields(user_id = %new.user_id))]
    async fn create_if_absent(&self, new: &NewProfile) -> Result<bool, StoreError> {
        let mut document = bson::to_document(&new.profile).map_err(corrupt)?;
        let now = bson::DateTime::now();
        document.insert("created_at", now);
        document.insert("updated_at", now);
        let upserted = self
            .profiles
            .update_one(id_filter(new.user_id), doc! { "$setOnInsert": document })
            .upsert(true)
            .await;
        match upserted {
            Ok(result) => Ok(result.upserted_id.is_some()),
            // Two upserts of one new id raced and the other inserted it: it exists.
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    async fn update(
        &self,
        user_id: UserId,
        changes: &ProfileChanges,
    ) -> Result<Option<ProfileRecord>, StoreError> {
        let mut set = bson::to_document(&patch(changes)).map_err(corrupt)?;
        set.insert("updated_at", bson::DateTime::now());
        let updated = self
            .profiles
            .find_one_and_update(id_filter(user_id), doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
            .map_err(|error| {
                // `_id` cannot collide in an update, so a duplicate key is the username.
                if is_duplicate_key(&error) {
                    StoreError::UsernameTaken
                } else {
                    StoreError::Mongo(error)
                }
            })?;
        updated.map(record).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, page: Page, limit: usize) -> Result<Vec<ProfileRecord>, StoreError> {
        let filter = match page.after {
            Some(after) => doc! { "_id": { "$gt": after.to_string() } },
            None => doc! {},
        };
        let cursor = self
            .profiles
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit as i64)
            .await?;
        records(cursor).await
    }

    #[tracing::instrument(skip_all)]
    async fn search(&self, search: &Search) -> Result<Vec<ProfileRecord>, StoreError> {
        let pattern = search.text.regex_pattern();
        let matches = |field: &str| doc! { field: { "$regex": &pattern, "$options": "i" } };
        let filter = doc! {
            "$or": [
                matches("email"),
                matches("username"),
                matches("first_name"),
                matches("last_name"),
            ]
        };
        let cursor = self
            .profiles
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(search.size.get() as i64)
            .await?;
        records(cursor).await
    }

    #[tracing::instrument(skip_all, fields(count = user_ids.len()))]
    async fn batch_get(&self, user_ids: &[UserId]) -> Result<Vec<ProfileRecord>, StoreError> {
        let ids: Vec<String> = user_ids.iter().map(ToString::to_string).collect();
        let cursor = self.profiles.find(doc! { "_id": { "$in": ids } }).await?;
        records(cursor).await
    }
}
