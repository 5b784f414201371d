//! The comments in MongoDB: the collection `comments`, one document per
//! comment with `_id` = its id as a hyphenated lower-case string (so `_id` order is id
//! order, which is creation order for UUID v7 ids), its fields at the top level, and
//! `created_at` / `updated_at` as BSON dates.
//!
//! Every query is by `_id` or in `_id` order, so the collection needs no index but the one
//! MongoDB keeps on `_id`; MongoDB creates the collection on the first insert. BSON dates hold
//! milliseconds, so times read back at that precision (PostgreSQL keeps microseconds).
//!
//! Written once by `cargo xtask new-service comment`; from now on it belongs to the service.

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use mongodb::bson::{self, Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use uuid::Uuid;

use super::{CommentDocument, CommentDocuments, CommentRecord, StoreError, patch};
use crate::domain::{CommentChanges, CommentId, NewComment, Page};

/// The collection of the service's database that holds the comments.
pub const COLLECTION: &str = "comments";

/// The comments in one MongoDB database.
#[derive(Clone, Debug)]
pub struct MongoComments {
    collection: Collection<Document>,
}

impl MongoComments {
    /// The [`COLLECTION`] of `database`.
    pub fn new(database: &Database) -> Self {
        Self {
            collection: database.collection(COLLECTION),
        }
    }
}

fn id_filter(id: Uuid) -> Document {
    doc! { "_id": id.to_string() }
}

fn conversion(error: impl std::fmt::Display) -> StoreError {
    StoreError::Conversion(error.to_string())
}

fn timestamp(document: &Document, field: &str) -> Result<DateTime<Utc>, StoreError> {
    let at = document.get_datetime(field).map_err(conversion)?;
    DateTime::from_timestamp_millis(at.timestamp_millis())
        .ok_or_else(|| conversion(format!("{field} is out of range")))
}

fn record(document: Document) -> Result<CommentRecord, StoreError> {
    let id = document.get_str("_id").map_err(conversion)?;
    let id = Uuid::parse_str(id).map_err(conversion)?;
    let created_at = timestamp(&document, "created_at")?;
    let updated_at = timestamp(&document, "updated_at")?;
    // The fields that are not the document's (`_id`, the times) are ignored here.
    let fields: CommentDocument = bson::from_document(document).map_err(conversion)?;
    Ok(CommentRecord::of(id, fields, created_at, updated_at))
}

impl CommentDocuments for MongoComments {
    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn insert(&self, id: CommentId, new: &NewComment) -> Result<CommentRecord, StoreError> {
        let mut document = bson::to_document(&CommentDocument::from(new)).map_err(conversion)?;
        let now = bson::DateTime::now();
        document.insert("_id", id.0.to_string());
        document.insert("created_at", now);
        document.insert("updated_at", now);
        self.collection.insert_one(&document).await?;
        // What was written is what a read gives back, the times at their stored precision.
        record(document)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn get(&self, id: CommentId) -> Result<Option<CommentRecord>, StoreError> {
        let document = self.collection.find_one(id_filter(id.0)).await?;
        document.map(record).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, page: Page, limit: usize) -> Result<Vec<CommentRecord>, StoreError> {
        // MongoDB reads a limit of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match page.after {
            Some(after) => doc! { "_id": { "$gt": after.0.to_string() } },
            None => doc! {},
        };
        let documents: Vec<Document> = self
            .collection
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit as i64)
            .await?
            .try_collect()
            .await?;
        documents.into_iter().map(record).collect()
    }

    /// One `$set` of the patch's fields and the update time, so two concurrent updates of
    /// different fields both stay.
    #[tracing::instrument(skip_all, fields(id = %changes.id))]
    async fn update(&self, changes: &CommentChanges) -> Result<Option<CommentRecord>, StoreError> {
        let mut set = bson::to_document(&patch(changes)).map_err(conversion)?;
        set.insert("updated_at", bson::DateTime::now());
        let updated = self
            .collection
            .find_one_and_update(id_filter(changes.id.0), doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await?;
        updated.map(record).transpose()
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn delete(&self, id: CommentId) -> Result<bool, StoreError> {
        let deleted = self.collection.delete_one(id_filter(id.0)).await?;
        Ok(deleted.deleted_count == 1)
    }
}
