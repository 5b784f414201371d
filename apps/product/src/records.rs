//! The rows the queries return, and the contract message each becomes.
//!
//! A leaf module: `store` (the catalog's queries), `inventory` (stock and reservations),
//! `outbox` (events are built from rows) and the handlers (replies are too) all name these
//! rows, and it depends on none of them, so no query module needs another just to name a row.

use api::product::{Availability, Category, Product, ProductOffer, Reservation, ReservationItem};
use api::timestamp;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

use crate::domain::{ProductId, ProductStatus, ReservationStatus, StockLevel};

/// A stored product. Serializable because `GetProduct` caches it.
#[derive(Clone, Debug, PartialEq, Eq, FromRow, Serialize, Deserialize)]
pub struct ProductRecord {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub name: String,
    pub description: String,
    pub price_minor_units: i64,
    pub price_currency: String,
    pub category_id: Option<Uuid>,
    pub image_urls: Vec<String>,
    #[sqlx(try_from = "String")]
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product with what could be reserved of it now (`LookupProducts`).
#[derive(Clone, Debug, FromRow)]
pub struct OfferRecord {
    #[sqlx(flatten)]
    pub product: ProductRecord,
    pub available: i64,
}

/// A stored category.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct CategoryRecord {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// The stock of one product, with the product's status.
#[derive(Clone, Copy, Debug, FromRow)]
pub struct InventoryRecord {
    pub product_id: Uuid,
    pub stock: i64,
    pub reserved: i64,
    #[sqlx(try_from = "String")]
    pub status: ProductStatus,
}

impl InventoryRecord {
    pub fn level(&self) -> StockLevel {
        StockLevel {
            stock: self.stock,
            reserved: self.reserved,
        }
    }
}

/// A stored reservation and its items.
#[derive(Clone, Debug, FromRow)]
pub struct ReservationRecord {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: ReservationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Sorted by product id.
    #[sqlx(skip)]
    pub items: Vec<ReservedItem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, FromRow)]
pub struct ReservedItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

// ---------------------------------------------------------------------------------------------
// Rows to contract messages
// ---------------------------------------------------------------------------------------------

/// The contract's "no id": the empty string.
fn optional_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

impl From<ProductRecord> for Product {
    fn from(record: ProductRecord) -> Self {
        Product {
            id: record.id.to_string(),
            shop_id: record.shop_id.to_string(),
            name: record.name,
            description: record.description,
            price: Some(api::common::Money {
                minor_units: record.price_minor_units,
                currency: record.price_currency,
            }),
            category_id: optional_id(record.category_id),
            image_urls: record.image_urls,
            status: record.status.as_str().to_owned(),
            created_at: timestamp(record.created_at),
            updated_at: timestamp(record.updated_at),
        }
    }
}

impl From<OfferRecord> for ProductOffer {
    fn from(record: OfferRecord) -> Self {
        ProductOffer {
            product: Some(record.product.into()),
            available: record.available,
        }
    }
}

impl From<CategoryRecord> for Category {
    fn from(record: CategoryRecord) -> Self {
        Category {
            id: record.id.to_string(),
            parent_id: optional_id(record.parent_id),
            name: record.name,
            slug: record.slug,
            description: record.description,
            created_at: timestamp(record.created_at),
        }
    }
}

/// The availability of a product at a stock level.
pub fn availability(product_id: ProductId, level: StockLevel) -> Availability {
    Availability {
        product_id: product_id.to_string(),
        stock: level.stock,
        reserved: level.reserved,
        available: level.available(),
        in_stock: level.in_stock(),
    }
}

impl From<InventoryRecord> for Availability {
    fn from(record: InventoryRecord) -> Self {
        availability(ProductId::from_uuid(record.product_id), record.level())
    }
}

impl From<ReservationRecord> for Reservation {
    fn from(record: ReservationRecord) -> Self {
        Reservation {
            reservation_id: record.id.to_string(),
            status: record.status.as_str().to_owned(),
            items: record
                .items
                .into_iter()
                .map(|item| ReservationItem {
                    product_id: item.product_id.to_string(),
                    quantity: item.quantity,
                })
                .collect(),
            expires_at: timestamp(record.expires_at),
            created_at: timestamp(record.created_at),
        }
    }
}
