//! The failures of the service's operations past request parsing, and what callers are told.

use crate::domain::{ProductId, ReservationId, ReservationStatus, ShopId};

/// Why a catalog or inventory operation did not happen.
///
/// Request validation fails earlier, in the domain parsers, with an `rpc::Error` naming the
/// fields; these are the outcomes that depend on what is stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("product {0} not found")]
    ProductNotFound(ProductId),

    #[error("reservation {0} not found")]
    ReservationNotFound(ReservationId),

    /// A product names a shop the shop service does not know (only an admin is told so;
    /// anybody else is told the product does not exist).
    #[error("product {product_id} belongs to shop {shop_id}, which does not exist")]
    ShopOfProductMissing {
        product_id: ProductId,
        shop_id: ShopId,
    },

    /// A field names something that does not exist (a category id, a parent category).
    #[error("{field}: {problem}")]
    UnknownReference {
        field: &'static str,
        problem: &'static str,
    },

    #[error("a category with the slug {slug:?} already exists")]
    CategorySlugTaken { slug: String },

    #[error("a category named {name:?} already exists under the same parent")]
    CategoryNameTaken { name: String },

    #[error("product {0} is not for sale")]
    ProductNotForSale(ProductId),

    #[error(
        "not enough stock of product {product_id}: {requested} requested, {available} available"
    )]
    InsufficientStock {
        product_id: ProductId,
        requested: i64,
        available: i64,
    },

    #[error("stock of product {product_id} cannot go below the {reserved} units reserved")]
    StockBelowReserved {
        product_id: ProductId,
        reserved: i64,
    },

    #[error("reservation {0} already exists with different items")]
    ReservationItemsDiffer(ReservationId),

    #[error("reservation {id} is {status}")]
    ReservationEnded {
        id: ReservationId,
        status: ReservationStatus,
    },

    #[error("reservation {0} has expired")]
    ReservationExpired(ReservationId),

    #[error(
        "reservation {id} is {status}: only a committed reservation can be restocked \
         (it is the only kind that took stock)"
    )]
    ReservationNotRestockable {
        id: ReservationId,
        status: ReservationStatus,
    },

    #[error(transparent)]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Outbox(#[from] events::OutboxError),
}

impl From<Error> for rpc::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::ProductNotFound(_) | Error::ReservationNotFound(_) => {
                rpc::Error::not_found(message)
            }
            Error::UnknownReference { field, problem } => rpc::Error::invalid_field(field, problem),
            Error::CategorySlugTaken { .. }
            | Error::CategoryNameTaken { .. }
            | Error::ReservationItemsDiffer(_) => rpc::Error::conflict(message),
            Error::ProductNotForSale(_)
            | Error::ShopOfProductMissing { .. }
            | Error::InsufficientStock { .. }
            | Error::StockBelowReserved { .. }
            | Error::ReservationEnded { .. }
            | Error::ReservationExpired(_)
            | Error::ReservationNotRestockable { .. } => rpc::Error::failed_precondition(message),
            // The request's deadline (or the pool's statement timeout) cancelled a statement.
            Error::Database(cause) if ::db::postgres::is_statement_timeout(&cause) => {
                rpc::Error::deadline_exceeded("the database did not answer within the deadline")
            }
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            Error::Database(cause) => rpc::Error::internal(cause),
            Error::Outbox(cause) => rpc::Error::internal(cause),
        }
    }
}
