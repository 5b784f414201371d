//! The rules of the catalog and the inventory, free of storage and transport.
//!
//! Requests are parsed here once, at the edge, into types that can only hold valid values
//! ("parse, don't validate"): a [`ProductName`] is always 1 to 200 characters, a
//! [`CurrencyCode`] is always a real ISO 4217 code, a [`ReservationItems`] is never empty and
//! always sorted by product id. Code past the parsers never checks these things again.
//!
//! Parsing a request names every bad field at once (`rpc::Violations`), using the request's
//! own field names ("price.currency", "items[2].quantity"). Nothing in this module does I/O,
//! reads the clock or draws random numbers, so it is all unit-tested in place.

mod category;
mod currency;
mod fields;
mod inventory;
mod listing;
mod product;

use std::borrow::Cow;
use std::fmt;

use uuid::Uuid;

pub use category::{CategoryName, NewCategory, Slug};
pub use currency::CurrencyCode;
pub use inventory::{
    HoldDuration, NewReservation, Quantity, ReservationItems, ReservationStatus, StockChange,
    StockLevel, Transition, parse_availability_check,
};
pub use listing::{Cursor, PageSize, ProductQuery, SearchText};
pub use product::{
    Description, ImageUrls, Money, NewProduct, ProductChanges, ProductName, ProductStatus, Stock,
};

/// What is wrong with one field, in words a caller can act on.
pub type Problem = Cow<'static, str>;

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

/// Trims `value` and checks its length in characters (as PostgreSQL's `char_length` counts).
fn bounded_text(
    value: &str,
    min_chars: usize,
    max_chars: usize,
    allow_line_breaks: bool,
) -> Result<String, Problem> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min_chars {
        return Err(if min_chars == 1 {
            "must not be empty".into()
        } else {
            format!("must have at least {min_chars} characters").into()
        });
    }
    if chars > max_chars {
        return Err(format!("must have at most {max_chars} characters").into());
    }
    // PostgreSQL text cannot hold NUL, and other control characters in a name are always a
    // mistake; refusing them here keeps them from becoming a database error.
    let allowed =
        |c: char| !c.is_control() || (allow_line_breaks && matches!(c, '\n' | '\r' | '\t'));
    if !value.chars().all(allowed) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}
