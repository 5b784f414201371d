//! Listing products: filters, and the keyset position a page token carries.

use api::product::ListProductsRequest;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Currency, Fields, LineBreaks, Problem, bounded_text};

use super::{CategoryId, Price, ProductId, ProductStatus, ShopId};

/// Full-text search input, as a user typed it (websearch syntax: `"exact phrase" -word or`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub const MAX_CHARS: usize = 200;

    /// `None` when there is nothing to search for.
    pub fn parse(value: &str) -> Result<Option<Self>, Problem> {
        let text = bounded_text(value, 0..=Self::MAX_CHARS, LineBreaks::Refused)?;
        Ok((!text.is_empty()).then_some(SearchText(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the previous page ended, carried in a `vocab::page` token as `<kind>:<key>:<id>`
/// (version 1): the token of a newest-first listing is base64url of `1:n:<micros>:<id>`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cursor {
    /// After this product, newest first: keyset on (created_at DESC, id DESC).
    Newest {
        created_at: DateTime<Utc>,
        id: ProductId,
    },
    /// After this product, most relevant first: keyset on (rank DESC, id DESC).
    Relevance { rank: f32, id: ProductId },
}

impl Keyset for Cursor {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        match self {
            Cursor::Newest { created_at, id } => {
                format!("n:{}:{id}", created_at.timestamp_micros())
            }
            // Rust prints the shortest form that parses back to the same f32, so the rank
            // compares equal to the one PostgreSQL computes again for the next page.
            Cursor::Relevance { rank, id } => format!("r:{rank}:{id}"),
        }
    }

    fn read(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let (kind, key, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let id = ProductId(Uuid::try_parse(id).ok()?);
        match kind {
            "n" => Some(Cursor::Newest {
                created_at: DateTime::from_timestamp_micros(key.parse().ok()?)?,
                id,
            }),
            "r" => {
                let rank: f32 = key.parse().ok()?;
                rank.is_finite().then_some(Cursor::Relevance { rank, id })
            }
            _ => None,
        }
    }
}

/// A valid product listing request.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductQuery {
    pub search: Option<SearchText>,
    pub category_id: Option<CategoryId>,
    pub shop_id: Option<ShopId>,
    pub min_price_minor_units: Option<i64>,
    pub max_price_minor_units: Option<i64>,
    pub currency: Option<Currency>,
    pub status: ProductStatus,
    pub page_size: PageSize,
    /// Always of the kind that matches `search`: relevance with a search, newest without.
    pub cursor: Option<Cursor>,
}

impl ProductQuery {
    pub fn parse(request: &ListProductsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let search = fields.parse("q", SearchText::parse(&request.q));
        let category_id = fields.parse(
            "category_id",
            CategoryId::parse_optional(&request.category_id),
        );
        let shop_id = fields.parse("shop_id", ShopId::parse_optional(&request.shop_id));
        let price_bound = |value: Option<i64>| {
            value
                .map(|minor_units| Price::check_minor_units(minor_units).map(Some))
                .unwrap_or(Ok(None))
        };
        let min_price = fields.parse(
            "min_price_minor_units",
            price_bound(request.min_price_minor_units),
        );
        let max_price = fields.parse(
            "max_price_minor_units",
            price_bound(request.max_price_minor_units),
        );
        if let (Some(Some(min)), Some(Some(max))) = (min_price, max_price)
            && min > max
        {
            fields.add(
                "max_price_minor_units",
                "must not be less than min_price_minor_units",
            );
        }
        let currency = fields.optional(
            "currency",
            Some(request.currency.as_str()).filter(|c| !c.is_empty()),
            Currency::parse,
        );
        let status = fields.parse("status", ProductStatus::parse_or_default(&request.status));
        let page_size = fields.parse("page_size", PageSize::parse(request.page_size));
        let cursor = fields.parse("cursor", page::parse_token::<Cursor>(&request.cursor));
        // A cursor only makes sense for the ordering that produced it.
        if let (Some(search), Some(Some(cursor))) = (&search, cursor) {
            let matches = matches!(
                (search, cursor),
                (Some(_), Cursor::Relevance { .. }) | (None, Cursor::Newest { .. })
            );
            if !matches {
                fields.add("cursor", "belongs to a listing with a different q");
            }
        }
        fields.finish(|| {
            Some(ProductQuery {
                search: search?,
                category_id: category_id?,
                shop_id: shop_id?,
                min_price_minor_units: min_price?,
                max_price_minor_units: max_price?,
                currency: currency?,
                status: status?,
                page_size: page_size?,
                cursor: cursor?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    #[test]
    fn cursors_round_trip_through_page_tokens() {
        let id = ProductId::generate();
        let newest = Cursor::Newest {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id,
        };
        let relevance = Cursor::Relevance {
            rank: 0.060_792_7,
            id,
        };
        for cursor in [newest, relevance] {
            let token = page::encode_token(&cursor);
            assert_eq!(page::parse_token(&token), Ok(Some(cursor)));
        }
        // The layout tokens already handed out have: changing it needs a new version.
        assert_eq!(
            newest.write(),
            format!("n:1700000000123456:{id}"),
            "bump Cursor::VERSION when the layout changes"
        );
    }

    #[test]
    fn positions_that_cursors_never_hold_are_refused() {
        let id = ProductId::generate();
        for bad in [
            format!("r:NaN:{id}"),
            format!("r:inf:{id}"),
            format!("x:1:{id}"),
            format!("n:1:{id}:extra"),
            "n:1:not-a-uuid".to_owned(),
            format!("n:{}:{id}", i64::MAX),
            format!("n:{id}"),
        ] {
            assert_eq!(Cursor::read(&bad), None, "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_listing_request_is_checked_field_by_field() {
        let query = ProductQuery::parse(&ListProductsRequest::default()).unwrap();
        assert_eq!(query.status, ProductStatus::Active);
        assert_eq!(query.page_size, PageSize::DEFAULT);
        assert_eq!(query.search, None);
        assert_eq!(query.cursor, None);

        let error = ProductQuery::parse(&ListProductsRequest {
            category_id: "x".into(),
            min_price_minor_units: Some(500),
            max_price_minor_units: Some(100),
            currency: "XYZ".into(),
            status: "deleted".into(),
            page_size: 101,
            cursor: "garbage!".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "category_id",
                "max_price_minor_units",
                "currency",
                "status",
                "page_size",
                "cursor"
            ]
        );
    }

    #[test]
    fn a_cursor_must_match_the_ordering_it_came_from() {
        let newest = page::encode_token(&Cursor::Newest {
            created_at: Utc::now(),
            id: ProductId::generate(),
        });
        let error = ProductQuery::parse(&ListProductsRequest {
            q: "widget".into(),
            cursor: newest.clone(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["cursor"]);
        assert!(
            ProductQuery::parse(&ListProductsRequest {
                cursor: newest,
                ..Default::default()
            })
            .is_ok()
        );
    }
}
