//! Records as the contract's messages, cut to what the viewer may see: the moderation reason
//! only for the author and admins, the open reports only for admins.

use api::comment::{Review, ReviewHidden, ReviewPublished, ReviewSummary, SellerReply};
use api::timestamp;

use crate::store::{ReviewRecord, SummaryRecord};

/// Who is looking at a review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    Public,
    Author,
    Admin,
}

pub fn review(record: &ReviewRecord, viewer: Viewer) -> Review {
    let document = &record.document;
    Review {
        id: record.id.to_string(),
        product_id: record.product_id.to_string(),
        author_id: record.author_id.to_string(),
        rating: i32::from(record.rating),
        title: document.title.clone(),
        body: document.body.clone(),
        status: record.status.as_str().to_owned(),
        verified_purchase: record.verified,
        helpful_count: record.helpful_count,
        reply: document.reply.as_ref().map(|reply| SellerReply {
            shop_id: reply.shop_id.to_string(),
            body: reply.body.clone(),
            created_at: timestamp(reply.created_at),
        }),
        moderation_reason: match viewer {
            Viewer::Public => String::new(),
            Viewer::Author | Viewer::Admin => {
                document.moderation_reason.clone().unwrap_or_default()
            }
        },
        open_reports: match viewer {
            Viewer::Admin => record.open_reports,
            Viewer::Public | Viewer::Author => 0,
        },
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}

pub fn summary(record: &SummaryRecord) -> ReviewSummary {
    let average_rating = if record.review_count > 0 {
        record.rating_total as f64 / record.review_count as f64
    } else {
        0.0
    };
    ReviewSummary {
        product_id: record.product_id.to_string(),
        review_count: record.review_count,
        average_rating,
        rating_total: record.rating_total,
        distribution: record.stars.to_vec(),
    }
}

/// `review.published`: the review as its author sees it, and the summary after it.
pub fn published(record: &ReviewRecord, after: &SummaryRecord) -> ReviewPublished {
    ReviewPublished {
        review: Some(review(record, Viewer::Author)),
        summary: Some(summary(after)),
    }
}

/// `review.hidden`, with why it stopped being public.
pub fn hidden(record: &ReviewRecord, after: &SummaryRecord, reason: String) -> ReviewHidden {
    ReviewHidden {
        review: Some(review(record, Viewer::Author)),
        summary: Some(summary(after)),
        reason,
    }
}
