//! The reviews in MongoDB, without multi-document transactions (the dev stack's and
//! docker-compose's `mongo:7` is a standalone server, which has none):
//!
//! - `reviews`: one document per review, `_id` = its id as a hyphenated lower-case string (so
//!   `_id` order is creation order), with a unique index on (`product_id`, `author_id`): one
//!   review per customer and product, whoever races. Each carries a `version`, which every
//!   change checks and increments (optimistic concurrency), and `counted`: the rating the
//!   product's summary includes for it (absent when it counts for nothing).
//! - `review_summaries`: one document per product, changed only by `$inc`.
//! - `review_votes`, `review_reports`: `_id` = "<review>:<user>", so a second vote or report is
//!   a duplicate key.
//! - `review_history`, `purchase_orders`, `purchase_lines`: as in PostgreSQL.
//!
//! A change that moves the summary is two single-document writes made safe to repeat: the
//! review is changed together with a `pending` note (an operation id, the rating that leaves
//! the summary and the one that enters it), then the summary is `$inc`ed by that delta with
//! the operation id pushed onto its `applied` list in the same update (filtered on the id not
//! being there, so it applies once), then the note is cleared (or the review deleted). A
//! writer that finds another's note on a review finishes that operation first. A process
//! that dies between the steps leaves a note that the next change of the review finishes.
//!
//! Events go through the PostgreSQL outbox of pkg/events after the summary step: not in one
//! transaction with the documents, so a process that dies between the two loses that event
//! (PostgreSQL keeps this store's only outbox). Verified marks are computed from the purchase
//! documents after the review is written and again by the purchase consumer after the
//! purchase is written, so one of the two sees the other. BSON dates hold milliseconds.

use chrono::{DateTime, Utc};
use events::{Outbox, TraceHeaders};
use futures::TryStreamExt as _;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    Moderated, Purchase, PurchaseKind, Replied, ReplyDocument, Reported, ReviewDocument,
    ReviewRecord, Reviews, StoreError, SummaryDelta, SummaryRecord, Vote, Written, counted,
};
use crate::domain::moderation::{decide, status_after_writing};
use crate::domain::{Action, Draft, Page, Queue, QueuePage, Report, Sort, Status, Verdict};
use crate::views;

/// PostgreSQL holds only pkg/events' outbox (created by `events::migrate`) in this mode.
pub static EVENTS_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

pub const REVIEWS: &str = "reviews";
pub const SUMMARIES: &str = "review_summaries";
pub const VOTES: &str = "review_votes";
pub const REPORTS: &str = "review_reports";
pub const HISTORY: &str = "review_history";
pub const PURCHASE_ORDERS: &str = "purchase_orders";
pub const PURCHASE_LINES: &str = "purchase_lines";
/// The unique index that keeps one review per customer and product.
pub const ONE_PER_AUTHOR_INDEX: &str = "reviews_one_per_author_and_product";
/// MongoDB's code for a unique index violation.
const DUPLICATE_KEY: i32 = 11000;
/// How many operation ids a summary remembers: far more than can be in flight at once.
const APPLIED_KEPT: i32 = 1000;
/// How often a write is tried again after another writer changed the review under it.
const ATTEMPTS: usize = 50;

/// The reviews in one MongoDB database, and the PostgreSQL outbox their events go through.
#[derive(Clone, Debug)]
pub struct MongoReviews {
    reviews: Collection<Document>,
    summaries: Collection<Document>,
    votes: Collection<Document>,
    reports: Collection<Document>,
    history: Collection<Document>,
    orders: Collection<Document>,
    lines: Collection<Document>,
    outbox: PgPool,
}

fn index(keys: Document, name: &str, unique: bool) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .unique(unique)
                .build(),
        )
        .build()
}

impl MongoReviews {
    /// The collections of `database`, with their indexes created if missing; events go to the
    /// outbox in `outbox`'s database (migrated by `events::migrate`).
    pub async fn open(database: &Database, outbox: PgPool) -> Result<Self, StoreError> {
        let store = Self {
            reviews: database.collection(REVIEWS),
            summaries: database.collection(SUMMARIES),
            votes: database.collection(VOTES),
            reports: database.collection(REPORTS),
            history: database.collection(HISTORY),
            orders: database.collection(PURCHASE_ORDERS),
            lines: database.collection(PURCHASE_LINES),
            outbox,
        };
        store
            .reviews
            .create_indexes([
                index(
                    doc! { "product_id": 1, "author_id": 1 },
                    ONE_PER_AUTHOR_INDEX,
                    true,
                ),
                index(
                    doc! { "product_id": 1, "status": 1, "_id": -1 },
                    "reviews_newest",
                    false,
                ),
                index(
                    doc! { "product_id": 1, "status": 1, "helpful_count": -1, "_id": -1 },
                    "reviews_most_helpful",
                    false,
                ),
                index(
                    doc! { "product_id": 1, "status": 1, "rating": 1, "_id": -1 },
                    "reviews_by_rating",
                    false,
                ),
                index(doc! { "status": 1, "_id": 1 }, "reviews_queue", false),
                index(
                    doc! { "author_id": 1, "product_id": 1 },
                    "reviews_author",
                    false,
                ),
            ])
            .await?;
        store
            .orders
            .create_index(index(doc! { "user_id": 1 }, "purchase_orders_user", false))
            .await?;
        store
            .lines
            .create_indexes([
                index(doc! { "order_id": 1 }, "purchase_lines_order", false),
                index(doc! { "product_id": 1 }, "purchase_lines_product", false),
            ])
            .await?;
        store
            .history
            .create_index(index(
                doc! { "review_id": 1, "at": 1 },
                "review_history_review",
                false,
            ))
            .await?;
        Ok(store)
    }
}

fn conversion(error: impl std::fmt::Display) -> StoreError {
    StoreError::Conversion(error.to_string())
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        ErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn id_filter(id: Uuid) -> Document {
    doc! { "_id": id.to_string() }
}

fn timestamp(document: &Document, field: &str) -> Result<DateTime<Utc>, StoreError> {
    let at = document.get_datetime(field).map_err(conversion)?;
    DateTime::from_timestamp_millis(at.timestamp_millis())
        .ok_or_else(|| conversion(format!("{field} is out of range")))
}

/// An integer field, whichever width it was stored in.
fn integer(document: &Document, field: &str) -> Result<i64, StoreError> {
    match document.get(field) {
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Int64(n)) => Ok(*n),
        None => Ok(0),
        Some(other) => Err(conversion(format!("{field} is not an integer: {other}"))),
    }
}

fn uuid_field(document: &Document, field: &str) -> Result<Uuid, StoreError> {
    let text = document.get_str(field).map_err(conversion)?;
    Uuid::try_parse(text).map_err(conversion)
}

fn record(document: &Document) -> Result<ReviewRecord, StoreError> {
    let status = document.get_str("status").map_err(conversion)?;
    let status = Status::parse(status).ok_or_else(|| conversion(format!("status {status}")))?;
    let rating = u8::try_from(integer(document, "rating")?)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| conversion("rating out of range"))?;
    let reply = match document.get("reply") {
        Some(Bson::Document(reply)) => {
            Some(bson::from_document::<ReplyDocument>(reply.clone()).map_err(conversion)?)
        }
        _ => None,
    };
    Ok(ReviewRecord {
        id: uuid_field(document, "_id")?,
        product_id: uuid_field(document, "product_id")?,
        author_id: uuid_field(document, "author_id")?,
        rating,
        status,
        verified: document.get_bool("verified").unwrap_or(false),
        helpful_count: integer(document, "helpful_count")?,
        open_reports: integer(document, "open_reports")?,
        document: ReviewDocument {
            title: document.get_str("title").map_err(conversion)?.to_owned(),
            body: document.get_str("body").map_err(conversion)?.to_owned(),
            reply,
            moderation_reason: document
                .get_str("moderation_reason")
                .ok()
                .map(str::to_owned),
        },
        created_at: timestamp(document, "created_at")?,
        updated_at: timestamp(document, "updated_at")?,
    })
}

fn summary_record(
    product_id: Uuid,
    document: Option<&Document>,
) -> Result<SummaryRecord, StoreError> {
    let Some(document) = document else {
        return Ok(SummaryRecord::empty(product_id));
    };
    let mut stars = [0; 5];
    for (n, count) in stars.iter_mut().enumerate() {
        *count = integer(document, &format!("stars_{}", n + 1))?;
    }
    Ok(SummaryRecord {
        product_id,
        review_count: integer(document, "review_count")?,
        rating_total: integer(document, "rating_total")?,
        stars,
    })
}

/// The rating the summary counts for a review document (its `counted` field).
fn counted_of(document: &Document) -> Option<u8> {
    match document.get("counted") {
        Some(Bson::Int32(n)) => u8::try_from(*n).ok(),
        Some(Bson::Int64(n)) => u8::try_from(*n).ok(),
        _ => None,
    }
}

fn rating_bson(rating: Option<u8>) -> Bson {
    rating.map_or(Bson::Null, |r| Bson::Int32(i32::from(r)))
}

/// An operation on the summary noted on a review: its id and the ratings that leave and
/// enter the summary.
#[derive(Clone, Debug)]
struct Pending {
    op: String,
    product_id: Uuid,
    from: Option<u8>,
    to: Option<u8>,
    /// The review is deleted once the summary has the change.
    delete: bool,
}

impl Pending {
    fn new(product_id: Uuid, from: Option<u8>, to: Option<u8>, delete: bool) -> Self {
        Self {
            op: Uuid::now_v7().to_string(),
            product_id,
            from,
            to,
            delete,
        }
    }

    fn to_document(&self) -> Document {
        doc! {
            "op": &self.op,
            "from": rating_bson(self.from),
            "to": rating_bson(self.to),
            "delete": self.delete,
        }
    }

    fn of(review: &Document) -> Result<Option<Self>, StoreError> {
        let Ok(pending) = review.get_document("pending") else {
            return Ok(None);
        };
        let rating = |field: &str| match pending.get(field) {
            Some(Bson::Int32(n)) => u8::try_from(*n).ok(),
            Some(Bson::Int64(n)) => u8::try_from(*n).ok(),
            _ => None,
        };
        Ok(Some(Self {
            op: pending.get_str("op").map_err(conversion)?.to_owned(),
            product_id: uuid_field(review, "product_id")?,
            from: rating("from"),
            to: rating("to"),
            delete: pending.get_bool("delete").unwrap_or(false),
        }))
    }
}

/// What an event about a settled change says, if it makes one.
enum Announce {
    Nothing,
    Published,
    Hidden(String),
}

impl MongoReviews {
    /// Finishes the summary operation noted on review `review_id`: the delta once, then the
    /// note cleared (or the review deleted). The summary after it.
    async fn settle(
        &self,
        review_id: Uuid,
        pending: &Pending,
    ) -> Result<SummaryRecord, StoreError> {
        let delta = SummaryDelta::between(pending.from, pending.to);
        let product = pending.product_id.to_string();
        // The document first, so the conditional update below never has to insert.
        let zeros = doc! {
            "review_count": 0_i64, "rating_total": 0_i64, "stars_1": 0_i64, "stars_2": 0_i64,
            "stars_3": 0_i64, "stars_4": 0_i64, "stars_5": 0_i64, "applied": [],
        };
        match self
            .summaries
            .update_one(doc! { "_id": &product }, doc! { "$setOnInsert": zeros })
            .upsert(true)
            .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let mut inc = doc! {
            "review_count": delta.review_count,
            "rating_total": delta.rating_total,
        };
        for (n, stars) in delta.stars.iter().enumerate() {
            inc.insert(format!("stars_{}", n + 1), *stars);
        }
        let applied = self
            .summaries
            .find_one_and_update(
                doc! { "_id": &product, "applied": { "$ne": &pending.op } },
                doc! {
                    "$inc": inc,
                    "$push": { "applied": { "$each": [&pending.op], "$slice": -APPLIED_KEPT } },
                },
            )
            .return_document(ReturnDocument::After)
            .await?;
        let summary = match applied {
            Some(document) => document,
            // Applied before (by a writer that died before clearing the note).
            None => self
                .summaries
                .find_one(doc! { "_id": &product })
                .await?
                .ok_or_else(|| conversion("the summary vanished"))?,
        };
        let note = doc! { "_id": review_id.to_string(), "pending.op": &pending.op };
        if pending.delete {
            self.reviews.delete_one(note).await?;
        } else {
            self.reviews
                .update_one(note, doc! { "$unset": { "pending": "" } })
                .await?;
        }
        summary_record(pending.product_id, Some(&summary))
    }

    /// Finishes whatever operation is noted on `review`, if any.
    async fn settle_noted(&self, review: &Document) -> Result<(), StoreError> {
        if let Some(pending) = Pending::of(review)? {
            self.settle(uuid_field(review, "_id")?, &pending).await?;
        }
        Ok(())
    }

    async fn announce(
        &self,
        trace: &TraceHeaders,
        review: &ReviewRecord,
        summary: &SummaryRecord,
        announce: Announce,
    ) -> Result<(), StoreError> {
        let aggregate = review.product_id.to_string();
        let mut conn = self.outbox.acquire().await?;
        match announce {
            Announce::Nothing => {}
            Announce::Published => {
                Outbox::append(
                    &mut conn,
                    trace,
                    &aggregate,
                    &views::published(review, summary),
                )
                .await?;
            }
            Announce::Hidden(reason) => {
                Outbox::append(
                    &mut conn,
                    trace,
                    &aggregate,
                    &views::hidden(review, summary, reason),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn history(
        &self,
        review_id: Uuid,
        from: Option<Status>,
        to: Option<Status>,
        actor: &str,
        actor_id: Option<Uuid>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.history
            .insert_one(doc! {
                "review_id": review_id.to_string(),
                "from_status": from.map(Status::as_str),
                "to_status": to.map(Status::as_str),
                "actor": actor,
                "actor_id": actor_id.map(|id| id.to_string()),
                "reason": reason,
                "at": bson::DateTime::now(),
            })
            .await?;
        Ok(())
    }

    /// Whether customer `user_id` has a live paid or delivered order of each of `products`.
    async fn verified_of(
        &self,
        user_id: Uuid,
        products: &[Uuid],
    ) -> Result<Vec<(Uuid, bool)>, StoreError> {
        let orders: Vec<Document> = self
            .orders
            .find(doc! { "user_id": user_id.to_string(), "voided": { "$ne": true } })
            .await?
            .try_collect()
            .await?;
        let paid: std::collections::HashMap<String, bool> = orders
            .iter()
            .filter_map(|o| {
                Some((
                    o.get_str("_id").ok()?.to_owned(),
                    o.get_bool("paid").unwrap_or(false),
                ))
            })
            .collect();
        let product_ids: Vec<String> = products.iter().map(Uuid::to_string).collect();
        let lines: Vec<Document> = self
            .lines
            .find(doc! {
                "product_id": { "$in": &product_ids },
                "order_id": { "$in": paid.keys().cloned().collect::<Vec<_>>() },
            })
            .await?
            .try_collect()
            .await?;
        Ok(products
            .iter()
            .map(|product| {
                let product_text = product.to_string();
                let verified = lines.iter().any(|line| {
                    line.get_str("product_id").ok() == Some(product_text.as_str())
                        && (line.get_bool("delivered").unwrap_or(false)
                            || line
                                .get_str("order_id")
                                .ok()
                                .and_then(|order| paid.get(order))
                                .copied()
                                .unwrap_or(false))
                });
                (*product, verified)
            })
            .collect())
    }

    /// Sets the verified mark of `user_id`'s reviews of `products` from the purchases.
    async fn mark_verified(&self, user_id: Uuid, products: &[Uuid]) -> Result<(), StoreError> {
        for (product, verified) in self.verified_of(user_id, products).await? {
            self.reviews
                .update_many(
                    doc! { "author_id": user_id.to_string(), "product_id": product.to_string() },
                    doc! { "$set": { "verified": verified } },
                )
                .await?;
        }
        Ok(())
    }

    async fn find_review(&self, filter: Document) -> Result<Option<Document>, StoreError> {
        Ok(self.reviews.find_one(filter).await?)
    }

    async fn read(&self, id: Uuid) -> Result<ReviewRecord, StoreError> {
        let document = self
            .find_review(id_filter(id))
            .await?
            .ok_or_else(|| conversion(format!("review {id} vanished")))?;
        record(&document)
    }
}

impl Reviews for MongoReviews {
    #[tracing::instrument(skip_all, fields(author = %author, product_id = %draft.product_id))]
    async fn put(
        &self,
        author: Uuid,
        draft: &Draft,
        verdict: &Verdict,
        trace: &TraceHeaders,
    ) -> Result<Written, StoreError> {
        let mine = doc! {
            "product_id": draft.product_id.to_string(),
            "author_id": author.to_string(),
        };
        let rating = draft.rating.get();
        let hold_reason = match verdict {
            Verdict::Hold { reason } => Some(reason.clone()),
            Verdict::Publish => None,
        };
        for _ in 0..ATTEMPTS {
            let existing = self.find_review(mine.clone()).await?;
            let Some(existing) = existing else {
                let status = status_after_writing(None, verdict);
                let id = Uuid::now_v7();
                let pending = Pending::new(draft.product_id, None, counted(status, rating), false);
                let now = bson::DateTime::now();
                let mut document = doc! {
                    "_id": id.to_string(),
                    "product_id": draft.product_id.to_string(),
                    "author_id": author.to_string(),
                    "rating": i32::from(rating),
                    "status": status.as_str(),
                    "verified": false,
                    "helpful_count": 0_i64,
                    "open_reports": 0_i64,
                    "title": &draft.title,
                    "body": &draft.body,
                    "counted": rating_bson(pending.to),
                    "pending": pending.to_document(),
                    "version": 1_i64,
                    "created_at": now,
                    "updated_at": now,
                };
                if let Some(reason) = &hold_reason {
                    document.insert("moderation_reason", reason.as_str());
                }
                match self.reviews.insert_one(&document).await {
                    Ok(_) => {}
                    // Written meanwhile by the same customer: this write is an edit of it.
                    Err(e) if is_duplicate_key(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
                let summary = self.settle(id, &pending).await?;
                self.mark_verified(author, &[draft.product_id]).await?;
                let review = self.read(id).await?;
                self.history(
                    id,
                    None,
                    Some(status),
                    "author",
                    Some(author),
                    hold_reason.as_deref().unwrap_or("written"),
                )
                .await?;
                let announce = if status.is_public() {
                    Announce::Published
                } else {
                    Announce::Nothing
                };
                self.announce(trace, &review, &summary, announce).await?;
                return Ok(Written {
                    review,
                    previous: None,
                });
            };
            if existing.contains_key("pending") {
                self.settle_noted(&existing).await?;
                continue;
            }
            let before = record(&existing)?;
            let version = integer(&existing, "version")?;
            let status = status_after_writing(Some(before.status), verdict);
            let reason = match (&hold_reason, before.status, status) {
                (Some(reason), _, _) => Some(reason.clone()),
                (None, Status::Hidden, Status::Pending) => {
                    Some("edited after a moderator hid it: waiting for a moderator".to_owned())
                }
                _ => None,
            };
            let pending = Pending::new(
                draft.product_id,
                counted_of(&existing),
                counted(status, rating),
                false,
            );
            let mut set = doc! {
                "rating": i32::from(rating),
                "status": status.as_str(),
                "title": &draft.title,
                "body": &draft.body,
                "counted": rating_bson(pending.to),
                "pending": pending.to_document(),
                "updated_at": bson::DateTime::now(),
            };
            let mut update = doc! { "$inc": { "version": 1_i64 } };
            match &reason {
                Some(reason) => {
                    set.insert("moderation_reason", reason.as_str());
                }
                None => {
                    update.insert("$unset", doc! { "moderation_reason": "" });
                }
            }
            update.insert("$set", set);
            let changed = self
                .reviews
                .update_one(
                    doc! { "_id": before.id.to_string(), "version": version, "pending": { "$exists": false } },
                    update,
                )
                .await?;
            if changed.matched_count == 0 {
                continue;
            }
            let summary = self.settle(before.id, &pending).await?;
            self.mark_verified(author, &[draft.product_id]).await?;
            let review = self.read(before.id).await?;
            if before.status != status {
                self.history(
                    before.id,
                    Some(before.status),
                    Some(status),
                    "author",
                    Some(author),
                    reason.as_deref().unwrap_or("edited"),
                )
                .await?;
            }
            let announce = if status.is_public() {
                Announce::Published
            } else if before.status.is_public() {
                Announce::Hidden(format!(
                    "pending moderation: {}",
                    reason.unwrap_or_default()
                ))
            } else {
                Announce::Nothing
            };
            self.announce(trace, &review, &summary, announce).await?;
            return Ok(Written {
                review,
                previous: Some(before.status),
            });
        }
        Err(conversion("the review kept changing under the write"))
    }

    #[tracing::instrument(skip_all, fields(author = %author, product_id = %product_id))]
    async fn delete(
        &self,
        author: Uuid,
        product_id: Uuid,
        trace: &TraceHeaders,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let mine = doc! { "product_id": product_id.to_string(), "author_id": author.to_string() };
        for _ in 0..ATTEMPTS {
            let Some(existing) = self.find_review(mine.clone()).await? else {
                return Ok(None);
            };
            if existing.contains_key("pending") {
                self.settle_noted(&existing).await?;
                continue;
            }
            let review = record(&existing)?;
            let version = integer(&existing, "version")?;
            let pending = Pending::new(product_id, counted_of(&existing), None, true);
            let noted = self
                .reviews
                .update_one(
                    doc! { "_id": review.id.to_string(), "version": version, "pending": { "$exists": false } },
                    doc! { "$set": { "pending": pending.to_document(), "counted": Bson::Null }, "$inc": { "version": 1_i64 } },
                )
                .await?;
            if noted.matched_count == 0 {
                continue;
            }
            let summary = self.settle(review.id, &pending).await?;
            self.votes
                .delete_many(doc! { "review_id": review.id.to_string() })
                .await?;
            self.reports
                .delete_many(doc! { "review_id": review.id.to_string() })
                .await?;
            self.history(
                review.id,
                Some(review.status),
                None,
                "author",
                Some(author),
                "deleted",
            )
            .await?;
            if review.status.is_public() {
                self.announce(
                    trace,
                    &review,
                    &summary,
                    Announce::Hidden("deleted by its author".to_owned()),
                )
                .await?;
            }
            return Ok(Some(review));
        }
        Err(conversion("the review kept changing under the delete"))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn get(&self, id: Uuid) -> Result<Option<ReviewRecord>, StoreError> {
        self.find_review(id_filter(id))
            .await?
            .as_ref()
            .map(record)
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(author = %author, product_id = %product_id))]
    async fn get_mine(
        &self,
        author: Uuid,
        product_id: Uuid,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        self.find_review(
            doc! { "product_id": product_id.to_string(), "author_id": author.to_string() },
        )
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }

    #[tracing::instrument(skip_all, fields(product_id = %page.product_id, sort = page.sort.as_str()))]
    async fn list(&self, page: &Page, limit: usize) -> Result<Vec<ReviewRecord>, StoreError> {
        // MongoDB reads a limit of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = doc! {
            "product_id": page.product_id.to_string(),
            "status": Status::Published.as_str(),
        };
        let (field, descending) = match page.sort {
            Sort::Newest => ("", true),
            Sort::MostHelpful => ("helpful_count", true),
            Sort::RatingHigh => ("rating", true),
            Sort::RatingLow => ("rating", false),
        };
        if let Some(after) = page.after {
            let id = after.id.to_string();
            if field.is_empty() {
                filter.insert("_id", doc! { "$lt": id });
            } else {
                let beyond = if descending { "$lt" } else { "$gt" };
                filter.insert(
                    "$or",
                    vec![
                        doc! { field: { beyond: after.key } },
                        doc! { field: after.key, "_id": { "$lt": id } },
                    ],
                );
            }
        }
        let sort = if field.is_empty() {
            doc! { "_id": -1 }
        } else {
            doc! { field: if descending { -1 } else { 1 }, "_id": -1 }
        };
        let documents: Vec<Document> = self
            .reviews
            .find(filter)
            .sort(sort)
            .limit(limit as i64)
            .await?
            .try_collect()
            .await?;
        documents.iter().map(record).collect()
    }

    #[tracing::instrument(skip_all, fields(product_id = %product_id))]
    async fn summary(&self, product_id: Uuid) -> Result<SummaryRecord, StoreError> {
        let document = self
            .summaries
            .find_one(doc! { "_id": product_id.to_string() })
            .await?;
        summary_record(product_id, document.as_ref())
    }

    #[tracing::instrument(skip_all, fields(review_id = %review_id))]
    async fn vote(&self, review_id: Uuid, voter: Uuid) -> Result<Vote, StoreError> {
        let Some(review) = self.get(review_id).await? else {
            return Ok(Vote::Missing);
        };
        if review.author_id == voter {
            return Ok(Vote::Own);
        }
        if !review.status.is_public() {
            return Ok(Vote::Missing);
        }
        let vote = doc! {
            "_id": format!("{review_id}:{voter}"),
            "review_id": review_id.to_string(),
            "user_id": voter.to_string(),
            "created_at": bson::DateTime::now(),
        };
        let counted = match self.votes.insert_one(vote).await {
            Ok(_) => true,
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => return Err(e.into()),
        };
        if counted {
            self.reviews
                .update_one(
                    id_filter(review_id),
                    doc! { "$inc": { "helpful_count": 1_i64 } },
                )
                .await?;
        }
        match self.get(review_id).await? {
            Some(review) => Ok(Vote::Voted {
                review: Box::new(review),
                counted,
            }),
            None => Ok(Vote::Missing),
        }
    }

    #[tracing::instrument(skip_all, fields(review_id = %report.review_id))]
    async fn report(&self, report: &Report, reporter: Uuid) -> Result<Reported, StoreError> {
        let Some(review) = self.get(report.review_id).await? else {
            return Ok(Reported::Missing);
        };
        if review.author_id == reporter {
            return Ok(Reported::Own);
        }
        if !review.status.is_public() {
            return Ok(Reported::Missing);
        }
        let document = doc! {
            "_id": format!("{}:{reporter}", report.review_id),
            "review_id": report.review_id.to_string(),
            "user_id": reporter.to_string(),
            "reason": report.reason,
            "note": &report.note,
            "created_at": bson::DateTime::now(),
        };
        match self.reports.insert_one(document).await {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => return Ok(Reported::Already),
            Err(e) => return Err(e.into()),
        }
        self.reviews
            .update_one(
                id_filter(report.review_id),
                doc! { "$inc": { "open_reports": 1_i64 } },
            )
            .await?;
        Ok(Reported::Recorded)
    }

    #[tracing::instrument(skip_all, fields(review_id = %review_id))]
    async fn reply(
        &self,
        review_id: Uuid,
        shop_id: Uuid,
        body: &str,
    ) -> Result<Replied, StoreError> {
        let reply = ReplyDocument {
            shop_id,
            body: body.to_owned(),
            created_at: Utc::now(),
        };
        let reply = bson::to_document(&reply).map_err(conversion)?;
        // The condition on the document makes "once" hold however many replies race.
        let replied = self
            .reviews
            .find_one_and_update(
                doc! {
                    "_id": review_id.to_string(),
                    "status": Status::Published.as_str(),
                    "reply": { "$exists": false },
                },
                doc! { "$set": { "reply": reply } },
            )
            .return_document(ReturnDocument::After)
            .await?;
        if let Some(document) = replied {
            return Ok(Replied::Replied(Box::new(record(&document)?)));
        }
        Ok(match self.get(review_id).await? {
            Some(review) if review.status.is_public() => Replied::Already,
            _ => Replied::Missing,
        })
    }

    #[tracing::instrument(skip_all, fields(review_id = %review_id, action = ?action))]
    async fn moderate(
        &self,
        review_id: Uuid,
        action: Action,
        reason: &str,
        admin: Option<Uuid>,
        trace: &TraceHeaders,
    ) -> Result<Moderated, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some(existing) = self.find_review(id_filter(review_id)).await? else {
                return Ok(Moderated::Missing);
            };
            if existing.contains_key("pending") {
                self.settle_noted(&existing).await?;
                continue;
            }
            let before = record(&existing)?;
            let version = integer(&existing, "version")?;
            let status = match decide(before.status, action) {
                Ok(status) => status,
                Err(why) => return Ok(Moderated::Refused(why)),
            };
            let pending = Pending::new(
                before.product_id,
                counted_of(&existing),
                counted(status, before.rating),
                false,
            );
            let mut update = doc! {
                "$set": {
                    "status": status.as_str(),
                    "open_reports": 0_i64,
                    "counted": rating_bson(pending.to),
                    "pending": pending.to_document(),
                },
                "$inc": { "version": 1_i64 },
            };
            match action {
                Action::Hide => {
                    if let Ok(set) = update.get_document_mut("$set") {
                        set.insert("moderation_reason", reason);
                    }
                }
                Action::Approve => {
                    update.insert("$unset", doc! { "moderation_reason": "" });
                }
            }
            let changed = self
                .reviews
                .update_one(
                    doc! { "_id": review_id.to_string(), "version": version, "pending": { "$exists": false } },
                    update,
                )
                .await?;
            if changed.matched_count == 0 {
                continue;
            }
            let summary = self.settle(review_id, &pending).await?;
            let review = self.read(review_id).await?;
            let what = match action {
                Action::Approve => "approved",
                Action::Hide => "hidden",
            };
            let note = if reason.is_empty() {
                what.to_owned()
            } else {
                format!("{what}: {reason}")
            };
            self.history(
                review_id,
                Some(before.status),
                Some(status),
                "admin",
                admin,
                &note,
            )
            .await?;
            let announce = if status.is_public() && !before.status.is_public() {
                Announce::Published
            } else if before.status.is_public() && !status.is_public() {
                Announce::Hidden(format!("hidden by a moderator: {reason}"))
            } else {
                Announce::Nothing
            };
            self.announce(trace, &review, &summary, announce).await?;
            return Ok(Moderated::Done {
                review: Box::new(review),
                previous: before.status,
            });
        }
        Err(conversion("the review kept changing under the decision"))
    }

    #[tracing::instrument(skip_all, fields(queue = ?page.queue))]
    async fn queue(&self, page: &QueuePage, limit: usize) -> Result<Vec<ReviewRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = match page.queue {
            Queue::Pending => doc! { "status": Status::Pending.as_str() },
            Queue::Hidden => doc! { "status": Status::Hidden.as_str() },
            Queue::Reported => {
                doc! { "status": Status::Published.as_str(), "open_reports": { "$gt": 0 } }
            }
        };
        if let Some(after) = page.after {
            filter.insert("_id", doc! { "$gt": after.to_string() });
        }
        let documents: Vec<Document> = self
            .reviews
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit as i64)
            .await?
            .try_collect()
            .await?;
        documents.iter().map(record).collect()
    }

    /// Idempotent by construction (flags that only go one way, upserts, marks recomputed from
    /// the purchases), so a redelivered event changes nothing and needs no inbox; the answer
    /// is always `true`.
    #[tracing::instrument(skip_all, fields(order_id = %purchase.order_id, kind = ?purchase.kind))]
    async fn apply_purchase(
        &self,
        _consumer: &str,
        _event_id: Uuid,
        purchase: &Purchase,
    ) -> Result<bool, StoreError> {
        let order_id = purchase.order_id.to_string();
        let mut set = Document::new();
        if let Some(user_id) = purchase.user_id {
            set.insert("user_id", user_id.to_string());
        }
        match purchase.kind {
            PurchaseKind::Paid => {
                set.insert("paid", true);
            }
            // A void is final: nothing ever sets it back.
            PurchaseKind::Void => {
                set.insert("voided", true);
            }
            PurchaseKind::Delivered => {}
        }
        let mut update = doc! { "$setOnInsert": { "created_at": bson::DateTime::now() } };
        if !set.is_empty() {
            update.insert("$set", set);
        }
        match self
            .orders
            .update_one(doc! { "_id": &order_id }, update.clone())
            .upsert(true)
            .await
        {
            Ok(_) => {}
            // Two events of one order upserting at once: the second is an update now.
            Err(e) if is_duplicate_key(&e) => {
                self.orders
                    .update_one(doc! { "_id": &order_id }, update)
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        for product in &purchase.product_ids {
            let mut line = doc! { "$setOnInsert": { "order_id": &order_id, "product_id": product.to_string() } };
            if purchase.kind == PurchaseKind::Delivered {
                line.insert("$set", doc! { "delivered": true });
            }
            let id = doc! { "_id": format!("{order_id}:{product}") };
            match self
                .lines
                .update_one(id.clone(), line.clone())
                .upsert(true)
                .await
            {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {
                    self.lines.update_one(id, line).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let order = self.orders.find_one(doc! { "_id": &order_id }).await?;
        let user_id = order
            .as_ref()
            .and_then(|o| o.get_str("user_id").ok())
            .and_then(|id| Uuid::try_parse(id).ok());
        if let Some(user_id) = user_id {
            // Every product of the order, not only this event's: a delivery seen before the
            // payment verifies once the payment names the customer.
            let lines: Vec<Document> = self
                .lines
                .find(doc! { "order_id": &order_id })
                .await?
                .try_collect()
                .await?;
            let products: Vec<Uuid> = lines
                .iter()
                .filter_map(|l| Uuid::try_parse(l.get_str("product_id").ok()?).ok())
                .collect();
            self.mark_verified(user_id, &products).await?;
        }
        Ok(true)
    }
}
