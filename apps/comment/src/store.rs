//! Where comments are kept: JSON documents in a document store chosen at start-up,
//! behind one trait, [`CommentDocuments`], with two implementations:
//!
//! - [`postgres::PgComments`]: a JSONB document per comment in the service's own
//!   PostgreSQL database. The default: it needs no extra server in development or tests.
//! - [`mongo::MongoComments`]: the MongoDB collection `comments`, used when
//!   `--mongodb-url` (MONGODB_URL) is set.
//!
//! Both keep the same document ([`CommentDocument`]) and behave the same way: the store
//! suite in `tests/it/store.rs` runs every case against each. [`CommentStore`] is the one
//! the service runs on; handlers call it and never know which database is behind it.
//!
//! Written once by `cargo xtask new-service comment`; from now on it belongs to the service.

pub mod mongo;
pub mod postgres;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::{CommentChanges, CommentId, NewComment, Page};

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    /// A stored document that does not read as a [`CommentDocument`] (written by hand, or
    /// by a version that stored other fields), or a document that does not convert to BSON.
    #[error("a comment document cannot be converted: {0}")]
    Conversion(String),
}

/// What one document holds: the comment's own fields. The id and the timestamps are kept
/// beside it (columns in PostgreSQL, `_id` and dates in MongoDB), where each database can key,
/// order and set them itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentDocument {
    pub name: String,
    pub description: String,
}

impl From<&NewComment> for CommentDocument {
    fn from(new: &NewComment) -> Self {
        Self {
            name: new.name.clone(),
            description: new.description.clone(),
        }
    }
}

/// A stored comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CommentRecord {
    /// The record of `document`, stored under `id` with these times.
    fn of(
        id: Uuid,
        document: CommentDocument,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name: document.name,
            description: document.description,
            created_at,
            updated_at,
        }
    }
}

/// The operations the service needs from a document store of comments.
///
/// Each returns a `Send` future so handlers can run on any worker thread. Implementations are
/// cheap to clone (a pool or client handle inside).
pub trait CommentDocuments: Clone + Send + Sync + 'static {
    /// Stores a new comment under `id`; both timestamps are the time it was stored.
    fn insert(
        &self,
        id: CommentId,
        new: &NewComment,
    ) -> impl Future<Output = Result<CommentRecord, StoreError>> + Send;

    /// The comment `id`, if there is one.
    fn get(
        &self,
        id: CommentId,
    ) -> impl Future<Output = Result<Option<CommentRecord>, StoreError>> + Send;

    /// Up to `limit` comments in id (creation) order, after `page.after`; none when
    /// `limit` is 0.
    fn list(
        &self,
        page: Page,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CommentRecord>, StoreError>> + Send;

    /// Sets the fields `changes` holds (see [`patch`]) and the update time in one atomic write,
    /// so concurrent updates of different fields all stay; `None` when there is no such
    /// comment.
    fn update(
        &self,
        changes: &CommentChanges,
    ) -> impl Future<Output = Result<Option<CommentRecord>, StoreError>> + Send;

    /// Whether there was such a comment.
    fn delete(&self, id: CommentId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The document store the service runs on, chosen at start-up (`lib.rs`).
///
/// An enum rather than a type parameter: handlers hold one concrete type whichever database is
/// behind it, and each call is a `match` on two arms.
#[derive(Clone, Debug)]
pub enum CommentStore {
    Postgres(postgres::PgComments),
    Mongo(mongo::MongoComments),
}

impl CommentStore {
    pub async fn insert(
        &self,
        id: CommentId,
        new: &NewComment,
    ) -> Result<CommentRecord, StoreError> {
        match self {
            Self::Postgres(store) => store.insert(id, new).await,
            Self::Mongo(store) => store.insert(id, new).await,
        }
    }

    pub async fn get(&self, id: CommentId) -> Result<Option<CommentRecord>, StoreError> {
        match self {
            Self::Postgres(store) => store.get(id).await,
            Self::Mongo(store) => store.get(id).await,
        }
    }

    pub async fn list(&self, page: Page, limit: usize) -> Result<Vec<CommentRecord>, StoreError> {
        match self {
            Self::Postgres(store) => store.list(page, limit).await,
            Self::Mongo(store) => store.list(page, limit).await,
        }
    }

    pub async fn update(
        &self,
        changes: &CommentChanges,
    ) -> Result<Option<CommentRecord>, StoreError> {
        match self {
            Self::Postgres(store) => store.update(changes).await,
            Self::Mongo(store) => store.update(changes).await,
        }
    }

    pub async fn delete(&self, id: CommentId) -> Result<bool, StoreError> {
        match self {
            Self::Postgres(store) => store.delete(id).await,
            Self::Mongo(store) => store.delete(id).await,
        }
    }
}

/// The document fields an update sets, as one JSON object both stores merge into the stored
/// document (PostgreSQL's `||`, MongoDB's `$set`): the fields `changes` leaves out are not in
/// it, so they stay as they are.
fn patch(changes: &CommentChanges) -> Map<String, Value> {
    let mut patch = Map::new();
    if let Some(name) = &changes.name {
        patch.insert("name".to_owned(), Value::from(name.as_str()));
    }
    if let Some(description) = &changes.description {
        patch.insert("description".to_owned(), Value::from(description.as_str()));
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patch's keys are the document's field names: merged into a stored document, it
    /// reads back as the changed document.
    #[test]
    fn a_patch_merged_into_a_document_changes_only_the_fields_present() {
        let stored = CommentDocument {
            name: "First".into(),
            description: "The first.".into(),
        };
        let changes = CommentChanges {
            id: CommentId::new(),
            name: None,
            description: Some("Changed.".into()),
        };
        let Value::Object(mut merged) = serde_json::to_value(&stored).unwrap() else {
            panic!("a document is a JSON object");
        };
        merged.extend(patch(&changes));
        let merged: CommentDocument = serde_json::from_value(Value::Object(merged)).unwrap();
        assert_eq!(
            merged,
            CommentDocument {
                name: "First".into(),
                description: "Changed.".into(),
            }
        );
        let nothing = CommentChanges {
            id: changes.id,
            name: None,
            description: None,
        };
        assert!(
            patch(&nothing).is_empty(),
            "an update of no field sets no field"
        );
    }
}
