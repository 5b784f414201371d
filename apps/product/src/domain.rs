//! The rules of the catalog and the inventory, free of storage and transport.
//!
//! Requests are parsed here once, at the edge, into types that can only hold valid values
//! ("parse, don't validate"): a [`ProductName`] is always 1 to 200 characters, a [`Price`] is
//! always a real ISO 4217 currency and a bounded amount, a [`ReservationItems`] is never empty
//! and always sorted by product id. Code past the parsers never checks these things again.
//!
//! The words every service shares (field problems and their collector, bounded text,
//! currencies, money, page tokens and sizes) come from `vocab`; what is here is the catalog's
//! own rules. Parsing a request names every bad field at once (`vocab::Fields`), using the
//! request's own field names ("price.currency", "items[2].quantity"). Nothing in this module
//! does I/O, reads the clock or draws random numbers, so it is all unit-tested in place.

mod category;
mod inventory;
mod listing;
mod product;

use std::fmt;

use uuid::Uuid;
use vocab::Problem;

pub use category::{CategoryName, NewCategory, Slug};
pub use inventory::{
    HoldDuration, NewReservation, Quantity, ReservationItems, ReservationStatus, StockChange,
    StockLevel, Transition, parse_availability_check, parse_product_lookup,
};
pub use listing::{Cursor, ProductQuery, SearchText};
pub use product::{
    Description, ImageUrls, NewProduct, Price, ProductChanges, ProductName, ProductStatus, Stock,
};

/// A stored value that no variant of an enum matches (only a schema drift can cause it).
#[derive(Debug, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, Problem> {
                if value.is_empty() {
                    return Err("is required".into());
                }
                Uuid::try_parse(value)
                    .map($name)
                    .map_err(|_| "must be a UUID".into())
            }

            /// `None` for the empty string, which the contract uses for "no value".
            pub fn parse_optional(value: &str) -> Result<Option<Self>, Problem> {
                if value.is_empty() { Ok(None) } else { Self::parse(value).map(Some) }
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A product; UUID v7, so ids sort roughly by creation time.
    ProductId
);
uuid_id!(CategoryId);
uuid_id!(
    /// The shop that sells a product. Shops live in another service; here it is only a key.
    ShopId
);
uuid_id!(
    /// Chosen by the caller (checkout uses its order id), which makes reserving idempotent.
    ReservationId
);

impl ProductId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        ProductId(Uuid::now_v7())
    }
}

impl CategoryId {
    pub fn generate() -> Self {
        CategoryId(Uuid::now_v7())
    }
}
