//! The RPC handlers of the comment contract: who may do what (from the principal, never from
//! the request), parse the request into domain types (which names every bad field), run the
//! store, and cut the records to what the caller may see. Access levels were already
//! enforced by the runtime from the contract.

use std::sync::Arc;

use api::comment::{
    CommentService, DeleteMyReviewRequest, DeleteMyReviewResponse, GetMyReviewRequest,
    GetReviewRequest, ListProductReviewsRequest, ListProductReviewsResponse,
    ListReviewsForModerationRequest, ListReviewsForModerationResponse, MarkHelpfulRequest,
    ModerateReviewRequest, PutMyReviewRequest, ReplyToReviewRequest, ReportReviewRequest,
    ReportReviewResponse, Review,
};
use rpc::{Context, Principal};
use uuid::Uuid;
use vocab::Fields;

use crate::catalog::Catalog;
use crate::domain::{self, Action, Draft, ModerationRules, Page, QueuePage, Reply, Report};
use crate::metrics;
use crate::store::{Moderated, Replied, Reported, ReviewRecord, Reviews, StoreError, Vote};
use crate::views::{self, Viewer};

/// The comment service: its store, the moderation rules and the catalog it asks about
/// products and shops.
pub struct CommentHandlers<S> {
    store: S,
    rules: Arc<ModerationRules>,
    catalog: Catalog,
}

impl<S: Reviews> CommentHandlers<S> {
    pub fn new(store: S, rules: ModerationRules, catalog: Catalog) -> Self {
        Self {
            store,
            rules: Arc::new(rules),
            catalog,
        }
    }
}

/// The caller's user id: principals carry UUIDs; anything else owns nothing here.
fn user_id(principal: &Principal) -> Result<Uuid, rpc::Error> {
    Uuid::try_parse(&principal.user_id)
        .map_err(|_| rpc::Error::permission_denied("the caller's user id is not a UUID"))
}

/// Who `ctx`'s caller is to `record`.
fn viewer_of(ctx: &Context, record: &ReviewRecord) -> Viewer {
    match ctx.principal() {
        Some(p) if p.is_admin() => Viewer::Admin,
        Some(p) if Uuid::try_parse(&p.user_id).ok() == Some(record.author_id) => Viewer::Author,
        _ => Viewer::Public,
    }
}

fn review_not_found(id: impl std::fmt::Display) -> rpc::Error {
    rpc::Error::not_found(format!("review {id} not found"))
}

fn no_review_of(product_id: Uuid) -> rpc::Error {
    rpc::Error::not_found(format!("you have no review of product {product_id}"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

impl<S: Reviews> CommentService for CommentHandlers<S> {
    async fn list_product_reviews(
        &self,
        _ctx: Context,
        request: ListProductReviewsRequest,
    ) -> Result<ListProductReviewsResponse, rpc::Error> {
        let page = Page::parse(&request)?;
        // One more than the page holds says whether there is a next page.
        let (records, summary) = tokio::try_join!(
            self.store.list(&page, page.size + 1),
            self.store.summary(page.product_id)
        )
        .map_err(internal)?;
        let mut records = records;
        let next_cursor = if records.len() > page.size {
            records.truncate(page.size);
            records
                .last()
                .map(|r| page.cursor_after(r.sort_key(page.sort), r.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListProductReviewsResponse {
            reviews: records
                .iter()
                .map(|r| views::review(r, Viewer::Public))
                .collect(),
            next_cursor,
            summary: Some(views::summary(&summary)),
        })
    }

    async fn get_review(
        &self,
        ctx: Context,
        request: GetReviewRequest,
    ) -> Result<Review, rpc::Error> {
        let id = domain::uuid("id", &request.id)?;
        let record = self.store.get(id).await.map_err(internal)?;
        match record {
            Some(record) => {
                let viewer = viewer_of(&ctx, &record);
                // Pending and hidden reviews answer like missing ones to everyone else.
                if !record.status.is_public() && viewer == Viewer::Public {
                    return Err(review_not_found(id));
                }
                Ok(views::review(&record, viewer))
            }
            None => Err(review_not_found(id)),
        }
    }

    async fn get_my_review(
        &self,
        ctx: Context,
        request: GetMyReviewRequest,
    ) -> Result<Review, rpc::Error> {
        let author = user_id(ctx.require_principal()?)?;
        let product_id = domain::uuid("id", &request.id)?;
        match self
            .store
            .get_mine(author, product_id)
            .await
            .map_err(internal)?
        {
            Some(record) => Ok(views::review(&record, Viewer::Author)),
            None => Err(no_review_of(product_id)),
        }
    }

    async fn put_my_review(
        &self,
        ctx: Context,
        request: PutMyReviewRequest,
    ) -> Result<Review, rpc::Error> {
        let author = user_id(ctx.require_principal()?)?;
        let draft = Draft::parse(&request)?;
        // A review of a product the catalog does not have is refused before anything is kept.
        self.catalog.product(&ctx, draft.product_id).await?;
        let verdict = self.rules.judge(&[&draft.title, &draft.body]);
        let written = self
            .store
            .put(author, &draft, &verdict, ctx.trace())
            .await
            .map_err(internal)?;
        metrics::written(&written);
        Ok(views::review(&written.review, Viewer::Author))
    }

    async fn delete_my_review(
        &self,
        ctx: Context,
        request: DeleteMyReviewRequest,
    ) -> Result<DeleteMyReviewResponse, rpc::Error> {
        let author = user_id(ctx.require_principal()?)?;
        let product_id = domain::uuid("id", &request.id)?;
        match self
            .store
            .delete(author, product_id, ctx.trace())
            .await
            .map_err(internal)?
        {
            Some(deleted) => {
                if deleted.status.is_public() {
                    metrics::hidden();
                }
                Ok(DeleteMyReviewResponse {})
            }
            None => Err(no_review_of(product_id)),
        }
    }

    async fn mark_helpful(
        &self,
        ctx: Context,
        request: MarkHelpfulRequest,
    ) -> Result<Review, rpc::Error> {
        let voter = user_id(ctx.require_principal()?)?;
        let id = domain::uuid("id", &request.id)?;
        match self.store.vote(id, voter).await.map_err(internal)? {
            Vote::Missing => Err(review_not_found(id)),
            Vote::Own => Err(rpc::Error::permission_denied(
                "you cannot vote for your own review",
            )),
            Vote::Voted { review, .. } => Ok(views::review(&review, viewer_of(&ctx, &review))),
        }
    }

    async fn report_review(
        &self,
        ctx: Context,
        request: ReportReviewRequest,
    ) -> Result<ReportReviewResponse, rpc::Error> {
        let reporter = user_id(ctx.require_principal()?)?;
        let report = Report::parse(&request)?;
        match self
            .store
            .report(&report, reporter)
            .await
            .map_err(internal)?
        {
            Reported::Missing => Err(review_not_found(report.review_id)),
            Reported::Own => Err(rpc::Error::permission_denied(
                "you cannot report your own review",
            )),
            Reported::Already => Err(rpc::Error::conflict(
                "you have reported this review already",
            )),
            Reported::Recorded => {
                metrics::reported();
                Ok(ReportReviewResponse {})
            }
        }
    }

    async fn reply_to_review(
        &self,
        ctx: Context,
        request: ReplyToReviewRequest,
    ) -> Result<Review, rpc::Error> {
        let principal = ctx.require_principal()?;
        let reply = Reply::parse(&request)?;
        let review = match self.store.get(reply.review_id).await.map_err(internal)? {
            Some(review) if review.status.is_public() => review,
            _ => return Err(review_not_found(reply.review_id)),
        };
        // Who the caller is to the shop is decided before anything about the reply is said.
        let shop_id = self
            .catalog
            .shop_of_sold_by(&ctx, review.product_id, principal)
            .await?;
        let already = || rpc::Error::conflict("the seller has replied to this review already");
        match self
            .store
            .reply(reply.review_id, shop_id, &reply.body)
            .await
            .map_err(internal)?
        {
            Replied::Missing => Err(review_not_found(reply.review_id)),
            Replied::Already => {
                // The same reply again (a retry after a lost answer) gets the review back.
                let review = self
                    .store
                    .get(reply.review_id)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| review_not_found(reply.review_id))?;
                match &review.document.reply {
                    Some(kept) if kept.shop_id == shop_id && kept.body == reply.body => {
                        Ok(views::review(&review, viewer_of(&ctx, &review)))
                    }
                    _ => Err(already()),
                }
            }
            Replied::Replied(review) => Ok(views::review(&review, viewer_of(&ctx, &review))),
        }
    }

    async fn list_reviews_for_moderation(
        &self,
        _ctx: Context,
        request: ListReviewsForModerationRequest,
    ) -> Result<ListReviewsForModerationResponse, rpc::Error> {
        let page = QueuePage::parse(&request)?;
        let mut records = self
            .store
            .queue(&page, page.size + 1)
            .await
            .map_err(internal)?;
        let next_cursor = if records.len() > page.size {
            records.truncate(page.size);
            records
                .last()
                .map(|r| QueuePage::cursor_after(r.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListReviewsForModerationResponse {
            reviews: records
                .iter()
                .map(|r| views::review(r, Viewer::Admin))
                .collect(),
            next_cursor,
        })
    }

    async fn moderate_review(
        &self,
        ctx: Context,
        request: ModerateReviewRequest,
    ) -> Result<Review, rpc::Error> {
        let admin = ctx.require_principal()?;
        let mut fields = Fields::new();
        let id = fields.parse("id", domain::parse_uuid(&request.id));
        let action = fields.parse("action", Action::parse(&request.action));
        let reason = fields.parse(
            "reason",
            vocab::bounded_text(&request.reason, 0..=500, vocab::LineBreaks::Refused),
        );
        if action == Some(Action::Hide) && reason.as_deref().is_some_and(str::is_empty) {
            fields.add("reason", "is required to hide a review");
        }
        let (id, action, reason) = fields.finish(|| Some((id?, action?, reason?)))?;
        let outcome = self
            .store
            .moderate(
                id,
                action,
                &reason,
                Uuid::try_parse(&admin.user_id).ok(),
                ctx.trace(),
            )
            .await
            .map_err(internal)?;
        match outcome {
            Moderated::Missing => Err(review_not_found(id)),
            Moderated::Refused(why) => Err(rpc::Error::failed_precondition(why)),
            Moderated::Done { review, previous } => {
                metrics::moderated(previous, review.status);
                Ok(views::review(&review, Viewer::Admin))
            }
        }
    }
}
