//! The reviews as JSONB documents in PostgreSQL (see `migrations/0001_comment.sql`), with the
//! summaries, votes, reports, history, the verified-purchase read model and the
//! transactional outbox in the same database, so that every change and its consequences
//! commit together.
//!
//! Concurrency: a write locks the review's row first and the product's summary row second
//! (through its `UPDATE`), always in that order, so writers of one product queue on the
//! summary instead of deadlocking, and each applies its delta to the value the previous one
//! committed. A review write and a purchase event of the same customer serialise on an
//! advisory lock of the customer, so a review written while its order's event is applied is
//! verified by one or the other.
//!
//! One small function per query, checked at run time (`query_as` with `FromRow` rows), so no
//! database is needed to build the crate; the store suite runs every query against a real
//! server.

use chrono::{DateTime, Utc};
use events::{Outbox, TraceHeaders};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::{
    Moderated, Purchase, PurchaseKind, Replied, ReplyDocument, Reported, ReviewDocument,
    ReviewRecord, Reviews, StoreError, SummaryDelta, SummaryRecord, Vote, Written, counted,
};
use crate::domain::moderation::{decide, status_after_writing};
use crate::domain::{Action, Draft, Page, Queue, QueuePage, Report, Sort, Status, Verdict};
use crate::views;

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

const COLUMNS: &str = "id, product_id, author_id, rating, status, verified, helpful_count, \
                       open_reports, document, created_at, updated_at";

const SUMMARY_COLUMNS: &str =
    "product_id, review_count, rating_total, stars_1, stars_2, stars_3, stars_4, stars_5";

/// Whether customer $1 has a paid or delivered, not voided, order of product $2.
const VERIFIED: &str = "EXISTS (SELECT 1 FROM purchase_lines l \
     JOIN purchase_orders o ON o.order_id = l.order_id \
     WHERE o.user_id = $1 AND l.product_id = $2 AND NOT o.voided AND (o.paid OR l.delivered))";

#[derive(FromRow)]
struct Row {
    id: Uuid,
    product_id: Uuid,
    author_id: Uuid,
    rating: i16,
    status: String,
    verified: bool,
    helpful_count: i64,
    open_reports: i64,
    document: Json<ReviewDocument>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for ReviewRecord {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let status = Status::parse(&row.status)
            .ok_or_else(|| StoreError::Conversion(format!("unknown status {}", row.status)))?;
        let rating = u8::try_from(row.rating)
            .ok()
            .filter(|r| (1..=5).contains(r))
            .ok_or_else(|| StoreError::Conversion(format!("rating {}", row.rating)))?;
        Ok(Self {
            id: row.id,
            product_id: row.product_id,
            author_id: row.author_id,
            rating,
            status,
            verified: row.verified,
            helpful_count: row.helpful_count,
            open_reports: row.open_reports,
            document: row.document.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn records(rows: Vec<Row>) -> Result<Vec<ReviewRecord>, StoreError> {
    rows.into_iter().map(TryInto::try_into).collect()
}

#[derive(FromRow)]
struct SummaryRow {
    product_id: Uuid,
    review_count: i64,
    rating_total: i64,
    stars_1: i64,
    stars_2: i64,
    stars_3: i64,
    stars_4: i64,
    stars_5: i64,
}

impl From<SummaryRow> for SummaryRecord {
    fn from(row: SummaryRow) -> Self {
        Self {
            product_id: row.product_id,
            review_count: row.review_count,
            rating_total: row.rating_total,
            stars: [
                row.stars_1,
                row.stars_2,
                row.stars_3,
                row.stars_4,
                row.stars_5,
            ],
        }
    }
}

/// The reviews in the service's PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgReviews {
    pool: PgPool,
}

impl PgReviews {
    /// The reviews in the database `pool` connects to, which [`MIGRATOR`] and
    /// `events::migrate` have migrated.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Serialises the transactions that decide customer `user_id`'s verified marks.
async fn lock_customer(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn lock_review_of(
    conn: &mut PgConnection,
    author: Uuid,
    product_id: Uuid,
) -> Result<Option<ReviewRecord>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE product_id = $1 AND author_id = $2 FOR UPDATE"
    ))
    .bind(product_id)
    .bind(author)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

async fn lock_review(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ReviewRecord>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// Adds `delta` to the product's summary (creating it) and returns the summary after it. Run
/// even with a zero delta before appending an event: it locks the product's summary row, so
/// the events of one product are appended in commit order.
async fn change_summary(
    conn: &mut PgConnection,
    product_id: Uuid,
    delta: &SummaryDelta,
) -> Result<SummaryRecord, StoreError> {
    // The row first (a CHECK is evaluated on an upsert's proposed row, so the delta cannot
    // be the INSERT's values), then the delta on it.
    sqlx::query("INSERT INTO review_summaries (product_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(product_id)
        .execute(&mut *conn)
        .await?;
    let row: SummaryRow = sqlx::query_as(&format!(
        "UPDATE review_summaries SET \
           review_count = review_count + $2, rating_total = rating_total + $3, \
           stars_1 = stars_1 + $4, stars_2 = stars_2 + $5, stars_3 = stars_3 + $6, \
           stars_4 = stars_4 + $7, stars_5 = stars_5 + $8 \
         WHERE product_id = $1 RETURNING {SUMMARY_COLUMNS}"
    ))
    .bind(product_id)
    .bind(delta.review_count)
    .bind(delta.rating_total)
    .bind(delta.stars[0])
    .bind(delta.stars[1])
    .bind(delta.stars[2])
    .bind(delta.stars[3])
    .bind(delta.stars[4])
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

async fn history(
    conn: &mut PgConnection,
    review_id: Uuid,
    from: Option<Status>,
    to: Option<Status>,
    actor: &str,
    actor_id: Option<Uuid>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO review_history (review_id, from_status, to_status, actor, actor_id, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(review_id)
    .bind(from.map(Status::as_str))
    .bind(to.map(Status::as_str))
    .bind(actor)
    .bind(actor_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The summary change of a review going from `before` to `after`, and the event it makes:
/// `review.published` when it is public after the change, `review.hidden` (with `why`) when
/// it was public and is not any more, none otherwise.
async fn consequences(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    before: Option<&ReviewRecord>,
    after: &ReviewRecord,
    why: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    let was_public = before.is_some_and(|b| b.status.is_public());
    let delta = SummaryDelta::between(
        before.and_then(|b| counted(b.status, b.rating)),
        counted(after.status, after.rating),
    );
    if delta.is_zero() && !was_public && !after.status.is_public() {
        return Ok(());
    }
    let summary = change_summary(conn, after.product_id, &delta).await?;
    let aggregate = after.product_id.to_string();
    if after.status.is_public() {
        Outbox::append(conn, trace, &aggregate, &views::published(after, &summary)).await?;
    } else if was_public {
        Outbox::append(
            conn,
            trace,
            &aggregate,
            &views::hidden(after, &summary, why()),
        )
        .await?;
    }
    Ok(())
}

impl Reviews for PgReviews {
    #[tracing::instrument(skip_all, fields(author = %author, product_id = %draft.product_id))]
    async fn put(
        &self,
        author: Uuid,
        draft: &Draft,
        verdict: &Verdict,
        trace: &TraceHeaders,
    ) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_customer(&mut tx, author).await?;
        let mut existing = lock_review_of(&mut tx, author, draft.product_id).await?;
        let reason = match verdict {
            Verdict::Hold { reason } => Some(reason.clone()),
            Verdict::Publish => None,
        };
        if existing.is_none() {
            let status = status_after_writing(None, verdict);
            let document = ReviewDocument {
                title: draft.title.clone(),
                body: draft.body.clone(),
                reply: None,
                moderation_reason: reason.clone(),
            };
            let row: Option<Row> = sqlx::query_as(&format!(
                "INSERT INTO reviews (id, product_id, author_id, rating, status, verified, document) \
                 VALUES ($3, $2, $1, $4, $5, {VERIFIED}, $6) \
                 ON CONFLICT ON CONSTRAINT reviews_one_per_author_and_product DO NOTHING \
                 RETURNING {COLUMNS}"
            ))
            .bind(author)
            .bind(draft.product_id)
            .bind(Uuid::now_v7())
            .bind(i16::from(draft.rating.get()))
            .bind(status.as_str())
            .bind(Json(&document))
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(row) => {
                    let review = ReviewRecord::try_from(row)?;
                    history(
                        &mut tx,
                        review.id,
                        None,
                        Some(status),
                        "author",
                        Some(author),
                        reason.as_deref().unwrap_or("written"),
                    )
                    .await?;
                    consequences(&mut tx, trace, None, &review, String::new).await?;
                    tx.commit().await?;
                    return Ok(Written {
                        review,
                        previous: None,
                    });
                }
                // Written meanwhile by the same customer (the customer lock makes this rare):
                // this write is an edit of that one.
                None => existing = lock_review_of(&mut tx, author, draft.product_id).await?,
            }
        }
        let Some(before) = existing else {
            return Err(StoreError::Conversion(
                "a review that conflicted on insert cannot be read".into(),
            ));
        };
        let status = status_after_writing(Some(before.status), verdict);
        let reason = match (&reason, before.status, status) {
            (Some(reason), _, _) => Some(reason.clone()),
            (None, Status::Hidden, Status::Pending) => {
                Some("edited after a moderator hid it: waiting for a moderator".to_owned())
            }
            _ => None,
        };
        let patch = serde_json::json!({ "title": draft.title, "body": draft.body });
        let row: Row = sqlx::query_as(&format!(
            "UPDATE reviews SET rating = $4, status = $5, verified = {VERIFIED}, \
               document = CASE WHEN $7::text IS NULL THEN (document - 'moderation_reason') || $6 \
                               ELSE document || $6 || jsonb_build_object('moderation_reason', $7::text) END, \
               updated_at = now() \
             WHERE id = $3 RETURNING {COLUMNS}"
        ))
        .bind(author)
        .bind(draft.product_id)
        .bind(before.id)
        .bind(i16::from(draft.rating.get()))
        .bind(status.as_str())
        .bind(Json(&patch))
        .bind(reason.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        let review = ReviewRecord::try_from(row)?;
        if before.status != status {
            history(
                &mut tx,
                review.id,
                Some(before.status),
                Some(status),
                "author",
                Some(author),
                reason.as_deref().unwrap_or("edited"),
            )
            .await?;
        }
        consequences(&mut tx, trace, Some(&before), &review, || {
            format!("pending moderation: {}", reason.clone().unwrap_or_default())
        })
        .await?;
        tx.commit().await?;
        Ok(Written {
            review,
            previous: Some(before.status),
        })
    }

    #[tracing::instrument(skip_all, fields(author = %author, product_id = %product_id))]
    async fn delete(
        &self,
        author: Uuid,
        product_id: Uuid,
        trace: &TraceHeaders,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "DELETE FROM reviews WHERE product_id = $1 AND author_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(product_id)
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let review = ReviewRecord::try_from(row)?;
        history(
            &mut tx,
            review.id,
            Some(review.status),
            None,
            "author",
            Some(author),
            "deleted",
        )
        .await?;
        if review.status.is_public() {
            let delta = SummaryDelta::between(Some(review.rating), None);
            let summary = change_summary(&mut tx, product_id, &delta).await?;
            let event = views::hidden(&review, &summary, "deleted by its author".to_owned());
            Outbox::append(&mut tx, trace, &product_id.to_string(), &event).await?;
        }
        tx.commit().await?;
        Ok(Some(review))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn get(&self, id: Uuid) -> Result<Option<ReviewRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM reviews WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all, fields(author = %author, product_id = %product_id))]
    async fn get_mine(
        &self,
        author: Uuid,
        product_id: Uuid,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE product_id = $1 AND author_id = $2"
        ))
        .bind(product_id)
        .bind(author)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all, fields(product_id = %page.product_id, sort = page.sort.as_str()))]
    async fn list(&self, page: &Page, limit: usize) -> Result<Vec<ReviewRecord>, StoreError> {
        // $2/$3: the last review's key and id; each sort's index serves its ORDER BY.
        let (after, order) = match page.sort {
            Sort::Newest => ("id < $3", "id DESC"),
            Sort::MostHelpful => (
                "(helpful_count, id) < ($2, $3)",
                "helpful_count DESC, id DESC",
            ),
            Sort::RatingHigh => ("(rating, id) < ($2::smallint, $3)", "rating DESC, id DESC"),
            Sort::RatingLow => (
                "(rating > $2::smallint OR (rating = $2::smallint AND id < $3))",
                "rating ASC, id DESC",
            ),
        };
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reviews \
             WHERE product_id = $1 AND status = 'published' AND ($3::uuid IS NULL OR {after}) \
             ORDER BY {order} LIMIT $4"
        ))
        .bind(page.product_id)
        .bind(page.after.map(|c| c.key).unwrap_or_default())
        .bind(page.after.map(|c| c.id))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        records(rows)
    }

    #[tracing::instrument(skip_all, fields(product_id = %product_id))]
    async fn summary(&self, product_id: Uuid) -> Result<SummaryRecord, StoreError> {
        let row: Option<SummaryRow> = sqlx::query_as(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM review_summaries WHERE product_id = $1"
        ))
        .bind(product_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or_else(|| SummaryRecord::empty(product_id), Into::into))
    }

    #[tracing::instrument(skip_all, fields(review_id = %review_id))]
    async fn vote(&self, review_id: Uuid, voter: Uuid) -> Result<Vote, StoreError> {
        let mut tx = self.pool.begin().await?;
        // KEY SHARE keeps the review from being deleted under the vote without queueing the
        // voters behind each other.
        let found: Option<(Uuid, String)> =
            sqlx::query_as("SELECT author_id, status FROM reviews WHERE id = $1 FOR KEY SHARE")
                .bind(review_id)
                .fetch_optional(&mut *tx)
                .await?;
        match found {
            None => return Ok(Vote::Missing),
            Some((author, _)) if author == voter => return Ok(Vote::Own),
            Some((_, status)) if status != Status::Published.as_str() => return Ok(Vote::Missing),
            Some(_) => {}
        }
        let counted = sqlx::query(
            "INSERT INTO review_votes (review_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(review_id)
        .bind(voter)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let sql = if counted {
            format!(
                "UPDATE reviews SET helpful_count = helpful_count + 1 WHERE id = $1 RETURNING {COLUMNS}"
            )
        } else {
            format!("SELECT {COLUMNS} FROM reviews WHERE id = $1")
        };
        let row: Row = sqlx::query_as(&sql)
            .bind(review_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Vote::Voted {
            review: Box::new(row.try_into()?),
            counted,
        })
    }

    #[tracing::instrument(skip_all, fields(review_id = %report.review_id))]
    async fn report(&self, report: &Report, reporter: Uuid) -> Result<Reported, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(Uuid, String)> =
            sqlx::query_as("SELECT author_id, status FROM reviews WHERE id = $1 FOR KEY SHARE")
                .bind(report.review_id)
                .fetch_optional(&mut *tx)
                .await?;
        match found {
            None => return Ok(Reported::Missing),
            Some((author, _)) if author == reporter => return Ok(Reported::Own),
            Some((_, status)) if status != Status::Published.as_str() => {
                return Ok(Reported::Missing);
            }
            Some(_) => {}
        }
        let recorded = sqlx::query(
            "INSERT INTO review_reports (review_id, user_id, reason, note) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(report.review_id)
        .bind(reporter)
        .bind(report.reason)
        .bind(&report.note)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !recorded {
            return Ok(Reported::Already);
        }
        sqlx::query("UPDATE reviews SET open_reports = open_reports + 1 WHERE id = $1")
            .bind(report.review_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        // The condition on the row makes "once" hold however many replies race.
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE reviews SET document = document || jsonb_build_object('reply', $2::jsonb) \
             WHERE id = $1 AND status = 'published' AND NOT document ? 'reply' RETURNING {COLUMNS}"
        ))
        .bind(review_id)
        .bind(Json(&reply))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Replied::Replied(Box::new(row.try_into()?)));
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
        let mut tx = self.pool.begin().await?;
        let Some(before) = lock_review(&mut tx, review_id).await? else {
            return Ok(Moderated::Missing);
        };
        let status = match decide(before.status, action) {
            Ok(status) => status,
            Err(why) => return Ok(Moderated::Refused(why)),
        };
        let moderation_reason = match action {
            Action::Hide => Some(reason.to_owned()),
            Action::Approve => None,
        };
        let row: Row = sqlx::query_as(&format!(
            "UPDATE reviews SET status = $2, open_reports = 0, \
               document = CASE WHEN $3::text IS NULL THEN document - 'moderation_reason' \
                               ELSE document || jsonb_build_object('moderation_reason', $3::text) END \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(review_id)
        .bind(status.as_str())
        .bind(moderation_reason.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        let review = ReviewRecord::try_from(row)?;
        let what = match action {
            Action::Approve => "approved",
            Action::Hide => "hidden",
        };
        let note = if reason.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {reason}")
        };
        history(
            &mut tx,
            review_id,
            Some(before.status),
            Some(status),
            "admin",
            admin,
            &note,
        )
        .await?;
        consequences(&mut tx, trace, Some(&before), &review, || {
            format!("hidden by a moderator: {reason}")
        })
        .await?;
        tx.commit().await?;
        Ok(Moderated::Done {
            review: Box::new(review),
            previous: before.status,
        })
    }

    #[tracing::instrument(skip_all, fields(queue = ?page.queue))]
    async fn queue(&self, page: &QueuePage, limit: usize) -> Result<Vec<ReviewRecord>, StoreError> {
        let filter = match page.queue {
            Queue::Pending => "status = 'pending'",
            Queue::Hidden => "status = 'hidden'",
            Queue::Reported => "status = 'published' AND open_reports > 0",
        };
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE {filter} AND ($1::uuid IS NULL OR id > $1) \
             ORDER BY id LIMIT $2"
        ))
        .bind(page.after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        records(rows)
    }

    #[tracing::instrument(skip_all, fields(order_id = %purchase.order_id, kind = ?purchase.kind))]
    async fn apply_purchase(
        &self,
        consumer: &str,
        event_id: Uuid,
        purchase: &Purchase,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !events::inbox::record(&mut tx, consumer, event_id).await? {
            return Ok(false);
        }
        let (paid, voided) = match purchase.kind {
            PurchaseKind::Paid => (true, false),
            PurchaseKind::Delivered => (false, false),
            PurchaseKind::Void => (false, true),
        };
        // A void is final: no later paid or delivered event of the order undoes it.
        sqlx::query(
            "INSERT INTO purchase_orders (order_id, user_id, paid, voided) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (order_id) DO UPDATE SET \
               user_id = COALESCE(purchase_orders.user_id, EXCLUDED.user_id), \
               paid = purchase_orders.paid OR EXCLUDED.paid, \
               voided = purchase_orders.voided OR EXCLUDED.voided",
        )
        .bind(purchase.order_id)
        .bind(purchase.user_id)
        .bind(paid)
        .bind(voided)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO purchase_lines (order_id, product_id, delivered) \
             SELECT $1, product_id, $3 FROM unnest($2::uuid[]) AS product_id \
             ON CONFLICT (order_id, product_id) DO UPDATE SET \
               delivered = purchase_lines.delivered OR EXCLUDED.delivered",
        )
        .bind(purchase.order_id)
        .bind(&purchase.product_ids)
        .bind(purchase.kind == PurchaseKind::Delivered)
        .execute(&mut *tx)
        .await?;
        let user_id: Option<Uuid> =
            sqlx::query_scalar("SELECT user_id FROM purchase_orders WHERE order_id = $1")
                .bind(purchase.order_id)
                .fetch_one(&mut *tx)
                .await?;
        if let Some(user_id) = user_id {
            lock_customer(&mut tx, user_id).await?;
            // Every product of the order, not only this event's: a delivery seen before the
            // payment verifies once the payment names the customer.
            sqlx::query(
                "UPDATE reviews r SET verified = EXISTS ( \
                   SELECT 1 FROM purchase_lines pl \
                   JOIN purchase_orders po ON po.order_id = pl.order_id \
                   WHERE po.user_id = $1 AND pl.product_id = r.product_id AND NOT po.voided \
                     AND (po.paid OR pl.delivered)) \
                 WHERE r.author_id = $1 \
                   AND r.product_id IN (SELECT product_id FROM purchase_lines WHERE order_id = $2)",
            )
            .bind(user_id)
            .bind(purchase.order_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
