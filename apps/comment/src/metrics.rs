//! The service's counters: reviews written, published, flagged (held for a moderator),
//! hidden, and reports. Exported on the admin port's /metrics with the rest.

use crate::domain::Status;
use crate::store::Written;

pub const WRITTEN: &str = "comment_reviews_written_total";
pub const PUBLISHED: &str = "comment_reviews_published_total";
pub const FLAGGED: &str = "comment_reviews_flagged_total";
pub const HIDDEN: &str = "comment_reviews_hidden_total";
pub const REPORTED: &str = "comment_reviews_reported_total";

/// A review was written (`kind`: "new" or "edit"), and where it went: published (when it
/// was not before), flagged, or taken out of the listings by an edit the rules flag.
pub fn written(written: &Written) {
    let kind = if written.previous.is_none() {
        "new"
    } else {
        "edit"
    };
    metrics::counter!(WRITTEN, "kind" => kind).increment(1);
    match written.review.status {
        // An edit of a review that was published already publishes nothing new.
        Status::Published if written.previous == Some(Status::Published) => {}
        Status::Published => metrics::counter!(PUBLISHED, "by" => "rules").increment(1),
        Status::Pending => metrics::counter!(FLAGGED).increment(1),
        Status::Hidden => {}
    }
    if written.previous == Some(Status::Published) && !written.review.status.is_public() {
        metrics::counter!(HIDDEN, "by" => "rules").increment(1);
    }
}

/// A moderator moved a review from `from` to `to`.
pub fn moderated(from: Status, to: Status) {
    if from == to {
        return;
    }
    match to {
        Status::Published => metrics::counter!(PUBLISHED, "by" => "moderator").increment(1),
        Status::Hidden => metrics::counter!(HIDDEN, "by" => "moderator").increment(1),
        Status::Pending => {}
    }
}

/// A published review was deleted by its author.
pub fn hidden() {
    metrics::counter!(HIDDEN, "by" => "author").increment(1);
}

pub fn reported() {
    metrics::counter!(REPORTED).increment(1);
}
