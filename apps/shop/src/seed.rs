//! The demo shop: the active shop of the demo seller, which sells the demo catalog.
//!
//! The row has the fixed id of `vocab::demo` and is inserted with `ON CONFLICT DO NOTHING`, so
//! seeding again (each start with `--seed-demo-shop`, or several replicas starting at once)
//! adds nothing and never overwrites changes made since.

use events::TraceHeaders;
use sqlx::PgPool;
use uuid::Uuid;
use vocab::demo;

use crate::error::Error;
use crate::outbox::{self, Change};
use crate::store::ShopRecord;

pub const DEMO_SHOP_NAME: &str = "Emporium Demo";

/// Inserts the demo shop unless it exists (or its slug is taken); returns whether it did.
#[tracing::instrument(skip_all)]
pub async fn seed_demo_shop(pool: &PgPool) -> Result<bool, Error> {
    let id = Uuid::try_parse(demo::DEMO_SHOP_ID).expect("the demo shop id is a UUID");
    let owner = Uuid::try_parse(demo::DEMO_SELLER_ID).expect("the demo seller id is a UUID");
    let mut tx = pool.begin().await?;
    let inserted: Option<ShopRecord> = sqlx::query_as(
        "INSERT INTO shops (id, owner_id, name, slug, description, contact_email, currency, \
         status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active') \
         ON CONFLICT DO NOTHING \
         RETURNING id, owner_id, name, slug, description, logo_url, contact_email, currency, \
         status, status_reason, created_at, updated_at",
    )
    .bind(id)
    .bind(owner)
    .bind(DEMO_SHOP_NAME)
    .bind(demo::DEMO_SHOP_SLUG)
    .bind("Widgets, gadgets and devices from the demo marketplace.")
    .bind(demo::DEMO_SELLER_EMAIL)
    .bind(demo::DEMO_SHOP_CURRENCY)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(shop) = &inserted {
        // No request started the seeding: its event starts a trace of its own.
        outbox::record_change(&mut tx, &TraceHeaders::default(), Change::Created(shop)).await?;
    }
    tx.commit().await?;
    tracing::info!(added = inserted.is_some(), "demo shop seeded");
    Ok(inserted.is_some())
}
