//! How reviews are listed: the orders a product's reviews can be read in, and keyset pages
//! over them. A cursor holds the sort it was made for and the last review's sort key and id,
//! so the next page starts exactly after it (no offsets: no duplicates or gaps when reviews
//! are added meanwhile) and a cursor of one sort is refused by another.

use api::comment::{ListProductReviewsRequest, ListReviewsForModerationRequest};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Fields, Problem};

use super::moderation::Queue;
use super::parse_uuid;

/// The orders of a product's reviews. Ties are broken by id, newest first (ids are UUID v7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sort {
    /// Newest first.
    Newest,
    /// Most helpful votes first.
    MostHelpful,
    /// Five stars first.
    RatingHigh,
    /// One star first.
    RatingLow,
}

impl Sort {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value.trim() {
            "" | "newest" => Ok(Self::Newest),
            "most_helpful" => Ok(Self::MostHelpful),
            "rating_high" => Ok(Self::RatingHigh),
            "rating_low" => Ok(Self::RatingLow),
            _ => Err("must be one of newest, most_helpful, rating_high, rating_low".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::MostHelpful => "most_helpful",
            Self::RatingHigh => "rating_high",
            Self::RatingLow => "rating_low",
        }
    }
}

/// Where a page ends: the sort, the last review's sort key (its helpful votes or rating; 0
/// for newest) and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub sort: Sort,
    pub key: i64,
    pub id: Uuid,
}

impl Keyset for Cursor {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        format!("{}/{}/{}", self.sort.as_str(), self.key, self.id)
    }

    fn read(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '/');
        let sort = Sort::parse(parts.next()?).ok()?;
        let key = parts.next()?.parse().ok()?;
        let id = Uuid::try_parse(parts.next()?).ok()?;
        Some(Self { sort, key, id })
    }
}

/// One page of a product's published reviews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub product_id: Uuid,
    pub sort: Sort,
    pub size: usize,
    pub after: Option<Cursor>,
}

impl Page {
    pub fn parse(request: &ListProductReviewsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let product_id = fields.parse("id", parse_uuid(&request.id));
        let sort = fields.parse("sort", Sort::parse(&request.sort));
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let after: Option<Option<Cursor>> =
            fields.parse("cursor", page::parse_token(&request.cursor));
        if let (Some(sort), Some(Some(cursor))) = (sort, after)
            && cursor.sort != sort
        {
            fields.add("cursor", "was made for another sort");
        }
        fields.finish(|| {
            Some(Self {
                product_id: product_id?,
                sort: sort?,
                size: size?.get(),
                after: after?,
            })
        })
    }

    /// The `next_cursor` of a page whose last review has sort key `key` and id `id`.
    pub fn cursor_after(&self, key: i64, id: Uuid) -> String {
        page::encode_token(&Cursor {
            sort: self.sort,
            key,
            id,
        })
    }
}

/// A moderation queue's position: the last review id (queues are oldest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct QueuePosition(Uuid);

impl Keyset for QueuePosition {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        format!("queue/{}", self.0)
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text.strip_prefix("queue/")?).ok().map(Self)
    }
}

/// One page of a moderation queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePage {
    pub queue: Queue,
    pub size: usize,
    pub after: Option<Uuid>,
}

impl QueuePage {
    pub fn parse(request: &ListReviewsForModerationRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let queue = fields.parse("queue", Queue::parse(&request.queue));
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let after: Option<Option<QueuePosition>> =
            fields.parse("cursor", page::parse_token(&request.cursor));
        fields.finish(|| {
            Some(Self {
                queue: queue?,
                size: size?.get(),
                after: after?.map(|p| p.0),
            })
        })
    }

    pub fn cursor_after(last: Uuid) -> String {
        page::encode_token(&QueuePosition(last))
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    #[test]
    fn a_cursor_reads_back_and_only_for_its_own_sort() {
        let product = Uuid::now_v7();
        let first = Page::parse(&ListProductReviewsRequest {
            id: product.to_string(),
            sort: "rating_low".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(first.size, PageSize::DEFAULT.get());
        let last = Uuid::now_v7();
        let cursor = first.cursor_after(3, last);
        let next = Page::parse(&ListProductReviewsRequest {
            id: product.to_string(),
            sort: "rating_low".into(),
            cursor: cursor.clone(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            next.after,
            Some(Cursor {
                sort: Sort::RatingLow,
                key: 3,
                id: last
            })
        );
        let error = Page::parse(&ListProductReviewsRequest {
            id: product.to_string(),
            sort: "newest".into(),
            cursor,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["cursor"]);
    }

    #[test]
    fn bad_listing_requests_name_every_field() {
        let error = Page::parse(&ListProductReviewsRequest {
            id: "x".into(),
            sort: "oldest".into(),
            page_size: 101,
            cursor: "nope".into(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["id", "sort", "page_size", "cursor"]);
        let error = QueuePage::parse(&ListReviewsForModerationRequest {
            queue: "all".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["queue"]);
    }
}
