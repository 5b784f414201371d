//! Listing products: filters, page size and the opaque keyset cursor.

use api::product::ListProductsRequest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::fields::Fields;
use super::{
    CategoryId, CurrencyCode, Money, Problem, ProductId, ProductStatus, ShopId, bounded_text,
};

/// How many products one page holds: 1 to 100, 20 when the request says 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u8);

impl PageSize {
    pub const DEFAULT: PageSize = PageSize(20);
    pub const MAX: i32 = 100;

    pub fn parse(value: i32) -> Result<Self, Problem> {
        match value {
            0 => Ok(Self::DEFAULT),
            1..=Self::MAX => Ok(PageSize(value as u8)),
            _ => Err(format!("must be between 1 and {}", Self::MAX).into()),
        }
    }

    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

/// Full-text search input, as a user typed it (websearch syntax: `"exact phrase" -word or`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub const MAX_CHARS: usize = 200;

    /// `None` when there is nothing to search for.
    pub fn parse(value: &str) -> Result<Option<Self>, Problem> {
        let text = bounded_text(value, 0, Self::MAX_CHARS, false)?;
        Ok((!text.is_empty()).then_some(SearchText(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the previous page ended. Opaque to callers: base64url of `1:<kind>:<key>:<id>`, with
/// a version first so the format can change without breaking cursors already handed out.
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

impl Cursor {
    const VERSION: &'static str = "1";

    pub fn encode(&self) -> String {
        let text = match self {
            Cursor::Newest { created_at, id } => {
                format!("{}:n:{}:{id}", Self::VERSION, created_at.timestamp_micros())
            }
            // Rust prints the shortest form that parses back to the same f32, so the rank
            // compares equal to the one PostgreSQL computes again for the next page.
            Cursor::Relevance { rank, id } => format!("{}:r:{rank}:{id}", Self::VERSION),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        Self::decode(value).ok_or_else(|| "is not a cursor this service issued".into())
    }

    fn decode(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split(':');
        let (version, kind, key, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != Self::VERSION || parts.next().is_some() {
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
    pub currency: Option<CurrencyCode>,
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
                .map(|minor_units| Money::check_minor_units(minor_units).map(Some))
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
            fields.violations.add(
                "max_price_minor_units",
                "must not be less than min_price_minor_units",
            );
        }
        let currency = fields.optional(
            "currency",
            Some(request.currency.as_str()).filter(|c| !c.is_empty()),
            CurrencyCode::parse,
        );
        let status = fields.parse("status", ProductStatus::parse_or_default(&request.status));
        let page_size = fields.parse("page_size", PageSize::parse(request.page_size));
        let cursor = fields.optional(
            "cursor",
            Some(request.cursor.as_str()).filter(|c| !c.is_empty()),
            Cursor::parse,
        );
        // A cursor only makes sense for the ordering that produced it.
        if let (Some(search), Some(Some(cursor))) = (&search, cursor) {
            let matches = matches!(
                (search, cursor),
                (Some(_), Cursor::Relevance { .. }) | (None, Cursor::Newest { .. })
            );
            if !matches {
                fields
                    .violations
                    .add("cursor", "belongs to a listing with a different q");
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
    use super::*;
    use crate::domain::fields::bad_fields;

    #[test]
    fn page_size_defaults_to_20_and_stays_within_1_to_100() {
        assert_eq!(PageSize::parse(0).unwrap().get(), 20);
        assert_eq!(PageSize::parse(1).unwrap().get(), 1);
        assert_eq!(PageSize::parse(100).unwrap().get(), 100);
        assert!(PageSize::parse(101).is_err());
        assert!(PageSize::parse(-1).is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = ProductId::generate();
        let newest = Cursor::Newest {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id,
        };
        assert_eq!(Cursor::parse(&newest.encode()).unwrap(), newest);
        let relevance = Cursor::Relevance {
            rank: 0.060_792_7,
            id,
        };
        assert_eq!(Cursor::parse(&relevance.encode()).unwrap(), relevance);
        let encoded = newest.encode();
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        for bad in [
            "",
            "!!!",
            "bm9wZQ",
            &URL_SAFE_NO_PAD.encode(format!("2:n:1:{id}")),
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Cursor::parse(&URL_SAFE_NO_PAD.encode(format!("1:r:NaN:{id}"))).is_err());
    }

    #[test]
    fn a_listing_request_is_checked_field_by_field() {
        let query = ProductQuery::parse(&ListProductsRequest::default()).unwrap();
        assert_eq!(query.status, ProductStatus::Active);
        assert_eq!(query.page_size, PageSize::DEFAULT);
        assert_eq!(query.search, None);

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
            bad_fields(error),
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
        let newest = Cursor::Newest {
            created_at: Utc::now(),
            id: ProductId::generate(),
        };
        let error = ProductQuery::parse(&ListProductsRequest {
            q: "widget".into(),
            cursor: newest.encode(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_fields(error), ["cursor"]);
        assert!(
            ProductQuery::parse(&ListProductsRequest {
                cursor: newest.encode(),
                ..Default::default()
            })
            .is_ok()
        );
    }
}
