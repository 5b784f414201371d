//! The demo catalog: the "Gadgets" category and three products with stock, sold by the demo
//! shop (`vocab::demo`, which the shop service seeds) in its currency.
//!
//! Every row has a fixed id and is inserted with `ON CONFLICT DO NOTHING`, so seeding again
//! (each start with `--seed-demo-catalog`, or several replicas starting at once) adds nothing
//! and never overwrites changes made since.

use events::TraceHeaders;
use sqlx::PgPool;
use uuid::{Uuid, uuid};

use crate::error::Error;
use crate::outbox::{self, Change};
use crate::records::ProductRecord;

/// The shop that sells the demo products.
pub fn demo_shop_id() -> Uuid {
    Uuid::try_parse(vocab::demo::DEMO_SHOP_ID).expect("the demo shop id is a UUID")
}

pub const DEMO_CATEGORY_ID: Uuid = uuid!("01900000-0000-7000-8000-00000000c001");

struct DemoProduct {
    id: Uuid,
    name: &'static str,
    description: &'static str,
    price_minor_units: i64,
    stock: i64,
}

const DEMO_PRODUCTS: [DemoProduct; 3] = [
    DemoProduct {
        id: uuid!("01900000-0000-7000-8000-00000000a001"),
        name: "Premium Widget",
        description: "A sturdy, well-balanced widget for everyday use.",
        price_minor_units: 2999,
        stock: 100,
    },
    DemoProduct {
        id: uuid!("01900000-0000-7000-8000-00000000a002"),
        name: "Deluxe Gadget",
        description: "A pocket gadget with a brushed aluminium case and a long battery life.",
        price_minor_units: 4999,
        stock: 50,
    },
    DemoProduct {
        id: uuid!("01900000-0000-7000-8000-00000000a003"),
        name: "Elite Device",
        description: "Our top device: fast, quiet and built to last.",
        price_minor_units: 9999,
        stock: 25,
    },
];

/// Inserts whatever part of the demo catalog is missing; returns how many products it added.
#[tracing::instrument(skip_all)]
pub async fn seed_demo_catalog(pool: &PgPool) -> Result<u64, Error> {
    let shop_id = demo_shop_id();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO categories (id, parent_id, name, slug, description) \
         VALUES ($1, NULL, 'Gadgets', 'gadgets', 'Widgets, gadgets and devices.') \
         ON CONFLICT DO NOTHING",
    )
    .bind(DEMO_CATEGORY_ID)
    .execute(&mut *tx)
    .await?;
    // A "Gadgets" category created by hand before the first seeding keeps its own id.
    let category_id: Uuid = sqlx::query_scalar("SELECT id FROM categories WHERE slug = 'gadgets'")
        .fetch_one(&mut *tx)
        .await?;

    let mut added = 0;
    for product in &DEMO_PRODUCTS {
        let inserted: Option<ProductRecord> = sqlx::query_as(
            "INSERT INTO products AS p (id, shop_id, name, description, price_minor_units, \
             price_currency, category_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO NOTHING \
             RETURNING p.id, p.shop_id, p.name, p.description, p.price_minor_units, \
             p.price_currency, p.category_id, p.image_urls, p.status, p.created_at, p.updated_at",
        )
        .bind(product.id)
        .bind(shop_id)
        .bind(product.name)
        .bind(product.description)
        .bind(product.price_minor_units)
        .bind(vocab::demo::DEMO_SHOP_CURRENCY)
        .bind(category_id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO inventory (product_id, stock) VALUES ($1, $2) \
             ON CONFLICT (product_id) DO NOTHING",
        )
        .bind(product.id)
        .bind(product.stock)
        .execute(&mut *tx)
        .await?;
        if let Some(record) = inserted {
            let change = Change::ProductCreated {
                product: &record,
                initial_stock: product.stock,
            };
            outbox::record_change(&mut tx, &TraceHeaders::default(), change).await?;
            added += 1;
        }
    }
    tx.commit().await?;
    tracing::info!(added, "demo catalog seeded");
    Ok(added)
}
