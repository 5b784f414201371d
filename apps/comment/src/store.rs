//! Where reviews are kept: JSON documents in a document store chosen at start-up, behind one
//! trait, [`Reviews`], with two implementations:
//!
//! - [`postgres::PgReviews`]: a JSONB document per review in the service's own PostgreSQL
//!   database, with the summary, votes, reports, history, the verified-purchase read model and
//!   the transactional outbox in the same database. The default.
//! - [`mongo::MongoReviews`]: MongoDB collections, used when `--mongodb-url` (MONGODB_URL) is
//!   set.
//!
//! The rules that must hold under concurrency are each database's own tools: a unique index
//! on (product, author) for one review per customer and product, a unique key per vote and
//! report; the summary is changed by the same write as the review, by deltas (PostgreSQL: one
//! transaction and `UPDATE ... SET n = n + delta`; MongoDB: `$inc`), never recomputed.

pub mod mongo;
pub mod postgres;

use std::future::Future;

use chrono::{DateTime, Utc};
use events::TraceHeaders;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Action, Draft, Page, QueuePage, Report, Status, Verdict};

/// Why the store could not answer; the caller sees an internal error, the logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    Outbox(#[from] events::OutboxError),
    /// A stored document that does not read as a review.
    #[error("a review document cannot be converted: {0}")]
    Conversion(String),
}

/// What the author wrote and what was added to it: the review's JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDocument {
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyDocument>,
    /// Why it is pending or hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyDocument {
    pub shop_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A stored review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewRecord {
    pub id: Uuid,
    pub product_id: Uuid,
    pub author_id: Uuid,
    pub rating: u8,
    pub status: Status,
    pub verified: bool,
    pub helpful_count: i64,
    pub open_reports: i64,
    pub document: ReviewDocument,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReviewRecord {
    /// Its key in `sort`'s order (see [`crate::domain::Cursor`]).
    pub fn sort_key(&self, sort: crate::domain::Sort) -> i64 {
        match sort {
            crate::domain::Sort::Newest => 0,
            crate::domain::Sort::MostHelpful => self.helpful_count,
            crate::domain::Sort::RatingHigh | crate::domain::Sort::RatingLow => {
                i64::from(self.rating)
            }
        }
    }
}

/// A product's published reviews in figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SummaryRecord {
    pub product_id: Uuid,
    pub review_count: i64,
    pub rating_total: i64,
    /// Reviews with 1..=5 stars.
    pub stars: [i64; 5],
}

impl SummaryRecord {
    pub fn empty(product_id: Uuid) -> Self {
        Self {
            product_id,
            ..Self::default()
        }
    }
}

/// How a review's publication changes its product's summary: what leaves it and what enters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SummaryDelta {
    pub review_count: i64,
    pub rating_total: i64,
    pub stars: [i64; 5],
}

impl SummaryDelta {
    /// The change from a review that counted with `before` (rating, if it was published) to
    /// one that counts with `after`.
    pub fn between(before: Option<u8>, after: Option<u8>) -> Self {
        let mut delta = Self::default();
        if let Some(rating) = before {
            delta.review_count -= 1;
            delta.rating_total -= i64::from(rating);
            delta.stars[usize::from(rating) - 1] -= 1;
        }
        if let Some(rating) = after {
            delta.review_count += 1;
            delta.rating_total += i64::from(rating);
            delta.stars[usize::from(rating) - 1] += 1;
        }
        delta
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// The rating a review in `status` contributes to its summary, if any.
pub fn counted(status: Status, rating: u8) -> Option<u8> {
    status.is_public().then_some(rating)
}

/// What writing a review did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub review: ReviewRecord,
    /// Its status before; `None` when it is new.
    pub previous: Option<Status>,
}

/// What a helpful vote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vote {
    /// No published review has that id.
    Missing,
    /// The voter wrote it.
    Own,
    /// Counted now, or counted before (`counted` false): one vote per customer.
    Voted {
        review: Box<ReviewRecord>,
        counted: bool,
    },
}

/// What a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    Missing,
    Own,
    Already,
    Recorded,
}

/// What a reply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replied {
    Missing,
    Already,
    Replied(Box<ReviewRecord>),
}

/// What a moderator's decision did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moderated {
    Missing,
    Refused(String),
    Done {
        review: Box<ReviewRecord>,
        previous: Status,
    },
}

/// A change of the verified-purchase read model, from one order event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub order_id: Uuid,
    /// The customer, when the event carries the whole order.
    pub user_id: Option<Uuid>,
    pub product_ids: Vec<Uuid>,
    pub kind: PurchaseKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurchaseKind {
    /// order.paid: the order's lines verify.
    Paid,
    /// suborder.delivered: these lines were delivered.
    Delivered,
    /// order.cancelled / order.refunded: the order verifies nothing any more, for good.
    Void,
}

/// The operations the service needs from a store of reviews. Each returns a `Send` future;
/// implementations are cheap to clone (a pool or client handle inside).
pub trait Reviews: Clone + Send + Sync + 'static {
    /// Writes `author`'s review of the draft's product: creates it, or replaces the rating,
    /// title and body of the one they wrote before, with the status the rules give it
    /// ([`crate::domain::moderation::status_after_writing`]), its verified mark from the
    /// purchases, the summary changed by the difference, a history row and the event of a
    /// publication or of a review that stopped being public, all at once.
    fn put(
        &self,
        author: Uuid,
        draft: &Draft,
        verdict: &Verdict,
        trace: &TraceHeaders,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// Deletes `author`'s review of `product_id` with its votes and reports, and takes it out
    /// of the summary; the deleted review, if there was one.
    fn delete(
        &self,
        author: Uuid,
        product_id: Uuid,
        trace: &TraceHeaders,
    ) -> impl Future<Output = Result<Option<ReviewRecord>, StoreError>> + Send;

    fn get(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<ReviewRecord>, StoreError>> + Send;

    fn get_mine(
        &self,
        author: Uuid,
        product_id: Uuid,
    ) -> impl Future<Output = Result<Option<ReviewRecord>, StoreError>> + Send;

    /// Up to `limit` published reviews of the page's product, in its sort, after its cursor.
    fn list(
        &self,
        page: &Page,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ReviewRecord>, StoreError>> + Send;

    /// The product's summary as kept (empty when it has no published review).
    fn summary(
        &self,
        product_id: Uuid,
    ) -> impl Future<Output = Result<SummaryRecord, StoreError>> + Send;

    fn vote(
        &self,
        review_id: Uuid,
        voter: Uuid,
    ) -> impl Future<Output = Result<Vote, StoreError>> + Send;

    fn report(
        &self,
        report: &Report,
        reporter: Uuid,
    ) -> impl Future<Output = Result<Reported, StoreError>> + Send;

    /// Sets the reply of published review `review_id` unless it has one.
    fn reply(
        &self,
        review_id: Uuid,
        shop_id: Uuid,
        body: &str,
    ) -> impl Future<Output = Result<Replied, StoreError>> + Send;

    /// An admin's decision ([`crate::domain::moderation::decide`]) with its summary change,
    /// history row and event; approving closes the review's open reports.
    fn moderate(
        &self,
        review_id: Uuid,
        action: Action,
        reason: &str,
        admin: Option<Uuid>,
        trace: &TraceHeaders,
    ) -> impl Future<Output = Result<Moderated, StoreError>> + Send;

    /// Up to `limit` reviews of the page's queue, oldest first, after its cursor.
    fn queue(
        &self,
        page: &QueuePage,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ReviewRecord>, StoreError>> + Send;

    /// Applies one order event to the purchases, once per (`consumer`, `event_id`), and
    /// updates the verified mark of the customer's reviews of those products; `false` when
    /// the event had been applied before.
    fn apply_purchase(
        &self,
        consumer: &str,
        event_id: Uuid,
        purchase: &Purchase,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_delta_moves_a_review_between_stars() {
        let edit = SummaryDelta::between(Some(2), Some(5));
        assert_eq!(edit.review_count, 0);
        assert_eq!(edit.rating_total, 3);
        assert_eq!(edit.stars, [0, -1, 0, 0, 1]);
        let hide = SummaryDelta::between(Some(4), None);
        assert_eq!((hide.review_count, hide.rating_total), (-1, -4));
        assert!(SummaryDelta::between(None, None).is_zero());
        assert_eq!(counted(Status::Pending, 3), None);
        assert_eq!(counted(Status::Published, 3), Some(3));
    }
}
