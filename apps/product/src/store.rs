//! PostgreSQL access for the catalog: products and categories.
//!
//! One small function per query. Reads take the pool; writes take a connection that the
//! caller has opened a transaction on (`&mut *tx`), so that several writes and the record of
//! the change they make (`outbox::record_change`) commit or roll back together. Queries are
//! checked at run time (`query_as` with `FromRow` rows): no database is needed to build the
//! crate, and the integration tests run every query against a real server.
//!
//! Constraint violations are turned into domain errors by constraint name (the names are
//! spelled out in the migrations); every other database failure stays `Error::Database`.

use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder};

use crate::domain::{
    CategoryId, Cursor, NewCategory, NewProduct, ProductChanges, ProductId, ProductQuery,
};
use crate::error::Error;
use crate::records::{CategoryRecord, ProductRecord};

/// The schema, embedded from `migrations/` and applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The columns of a [`ProductRecord`], for every query that returns products (alias `p`).
macro_rules! product_columns {
    () => {
        "p.id, p.shop_id, p.name, p.description, p.price_minor_units, p.price_currency, \
         p.category_id, p.image_urls, p.status, p.created_at, p.updated_at"
    };
}

/// One page of a product listing.
#[derive(Debug)]
pub struct ProductPage {
    pub products: Vec<ProductRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// The domain error for a violated constraint, as `map` names it, or the database error.
fn on_constraint(error: sqlx::Error, map: impl FnOnce(&str) -> Option<Error>) -> Error {
    error
        .as_database_error()
        .and_then(|db| db.constraint())
        .and_then(map)
        .unwrap_or(Error::Database(error))
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn get_product(pool: &PgPool, id: ProductId) -> Result<Option<ProductRecord>, Error> {
    let product = sqlx::query_as(concat!(
        "SELECT ",
        product_columns!(),
        " FROM products p WHERE p.id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(product)
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn insert_product(
    conn: &mut PgConnection,
    id: ProductId,
    product: &NewProduct,
) -> Result<ProductRecord, Error> {
    sqlx::query_as(concat!(
        "INSERT INTO products AS p (id, shop_id, name, description, price_minor_units, \
         price_currency, category_id, image_urls, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
        product_columns!()
    ))
    .bind(id.as_uuid())
    .bind(product.shop_id.as_uuid())
    .bind(product.name.as_str())
    .bind(product.description.as_str())
    .bind(product.price.money().minor_units())
    .bind(product.price.money().currency().code())
    .bind(product.category_id.map(|c| c.as_uuid()))
    .bind(product.image_urls.as_slice())
    .bind(product.status.as_str())
    .fetch_one(conn)
    .await
    .map_err(|e| on_constraint(e, unknown_category))
}

/// Applies `changes`; `None` when there is no product `id`.
#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn update_product(
    conn: &mut PgConnection,
    id: ProductId,
    changes: &ProductChanges,
) -> Result<Option<ProductRecord>, Error> {
    sqlx::query_as(concat!(
        "UPDATE products AS p SET \
             name = COALESCE($2, p.name), \
             description = COALESCE($3, p.description), \
             price_minor_units = COALESCE($4, p.price_minor_units), \
             price_currency = COALESCE($5, p.price_currency), \
             category_id = CASE WHEN $6 THEN $7 ELSE p.category_id END, \
             image_urls = COALESCE($8, p.image_urls), \
             status = COALESCE($9, p.status), \
             updated_at = now() \
         WHERE p.id = $1 RETURNING ",
        product_columns!()
    ))
    .bind(id.as_uuid())
    .bind(changes.name.as_ref().map(|n| n.as_str()))
    .bind(changes.description.as_ref().map(|d| d.as_str()))
    .bind(changes.price.map(|p| p.money().minor_units()))
    .bind(changes.price.map(|p| p.money().currency().code()))
    .bind(changes.category_id.is_some())
    .bind(changes.category_id.flatten().map(|c| c.as_uuid()))
    .bind(changes.image_urls.as_ref().map(|urls| urls.as_slice()))
    .bind(changes.status.map(|s| s.as_str()))
    .fetch_optional(conn)
    .await
    .map_err(|e| on_constraint(e, unknown_category))
}

fn unknown_category(constraint: &str) -> Option<Error> {
    (constraint == "products_category_fk").then_some(Error::UnknownReference {
        field: "category_id",
        problem: "no category has this id",
    })
}

/// A product row with its relevance to the search (0 without one).
#[derive(FromRow)]
struct ListedProduct {
    #[sqlx(flatten)]
    product: ProductRecord,
    rank: f32,
}

/// One page of products matching `query`, in its order, starting after its cursor.
///
/// Keyset pagination: the cursor holds the sort key of the last product shown, and the next
/// page is everything after it in (created_at DESC, id DESC), or (rank DESC, id DESC) when
/// searching. Unlike OFFSET, pages neither skip nor repeat products when others are added.
#[tracing::instrument(skip_all)]
pub async fn list_products(pool: &PgPool, query: &ProductQuery) -> Result<ProductPage, Error> {
    let mut sql = QueryBuilder::<Postgres>::new(concat!("SELECT ", product_columns!()));
    match &query.search {
        Some(text) => {
            sql.push(
                ", ts_rank(p.search, search_query) AS rank \
                 FROM products p, websearch_to_tsquery('english', ",
            );
            sql.push_bind(text.as_str());
            sql.push(") AS search_query WHERE p.search @@ search_query");
        }
        None => {
            sql.push(", 0::real AS rank FROM products p WHERE true");
        }
    }
    sql.push(" AND p.status = ")
        .push_bind(query.status.as_str());
    if let Some(category_id) = query.category_id {
        // The category and all its descendants.
        sql.push(
            " AND p.category_id IN (\
                 WITH RECURSIVE subtree AS (\
                     SELECT id FROM categories WHERE id = ",
        );
        sql.push_bind(category_id.as_uuid());
        sql.push(
            " UNION \
                     SELECT child.id FROM categories child \
                     JOIN subtree parent ON child.parent_id = parent.id\
                 ) SELECT id FROM subtree)",
        );
    }
    if let Some(shop_id) = query.shop_id {
        sql.push(" AND p.shop_id = ").push_bind(shop_id.as_uuid());
    }
    if let Some(min) = query.min_price_minor_units {
        sql.push(" AND p.price_minor_units >= ").push_bind(min);
    }
    if let Some(max) = query.max_price_minor_units {
        sql.push(" AND p.price_minor_units <= ").push_bind(max);
    }
    if let Some(currency) = query.currency {
        sql.push(" AND p.price_currency = ")
            .push_bind(currency.code());
    }
    match query.cursor {
        Some(Cursor::Newest { created_at, id }) => {
            sql.push(" AND (p.created_at, p.id) < (")
                .push_bind(created_at)
                .push(", ")
                .push_bind(id.as_uuid())
                .push(")");
        }
        Some(Cursor::Relevance { rank, id }) => {
            sql.push(" AND (ts_rank(p.search, search_query), p.id) < (")
                .push_bind(rank)
                .push(", ")
                .push_bind(id.as_uuid())
                .push(")");
        }
        None => {}
    }
    sql.push(if query.search.is_some() {
        " ORDER BY rank DESC, p.id DESC"
    } else {
        " ORDER BY p.created_at DESC, p.id DESC"
    });
    // One more than a page tells whether there is a next page.
    sql.push(" LIMIT ").push_bind(query.page_size.as_i64() + 1);

    let mut rows: Vec<ListedProduct> = sql.build_query_as().fetch_all(pool).await?;
    let next_cursor = if rows.len() > query.page_size.get() {
        rows.truncate(query.page_size.get());
        rows.last().map(|last| {
            let id = ProductId::from_uuid(last.product.id);
            if query.search.is_some() {
                Cursor::Relevance {
                    rank: last.rank,
                    id,
                }
            } else {
                Cursor::Newest {
                    created_at: last.product.created_at,
                    id,
                }
            }
        })
    } else {
        None
    };
    Ok(ProductPage {
        products: rows.into_iter().map(|row| row.product).collect(),
        next_cursor,
    })
}

// ---------------------------------------------------------------------------------------------
// Categories
// ---------------------------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(category_id = %id, slug = category.slug.as_str()))]
pub async fn insert_category(
    conn: &mut PgConnection,
    id: CategoryId,
    category: &NewCategory,
) -> Result<CategoryRecord, Error> {
    sqlx::query_as(
        "INSERT INTO categories (id, parent_id, name, slug, description) \
         VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, parent_id, name, slug, description, created_at",
    )
    .bind(id.as_uuid())
    .bind(category.parent_id.map(|p| p.as_uuid()))
    .bind(category.name.as_str())
    .bind(category.slug.as_str())
    .bind(category.description.as_str())
    .fetch_one(conn)
    .await
    .map_err(|e| {
        on_constraint(e, |constraint| match constraint {
            "categories_parent_fk" => Some(Error::UnknownReference {
                field: "parent_id",
                problem: "no category has this id",
            }),
            "categories_slug_key" => Some(Error::CategorySlugTaken {
                slug: category.slug.as_str().to_owned(),
            }),
            "categories_parent_name_key" => Some(Error::CategoryNameTaken {
                name: category.name.as_str().to_owned(),
            }),
            _ => None,
        })
    })
}

/// Every category, each parent before its children, siblings by slug.
#[tracing::instrument(skip_all)]
pub async fn list_categories(pool: &PgPool) -> Result<Vec<CategoryRecord>, Error> {
    let categories = sqlx::query_as(
        "WITH RECURSIVE tree AS ( \
             SELECT id, parent_id, name, slug, description, created_at, ARRAY[slug] AS path \
             FROM categories WHERE parent_id IS NULL \
             UNION ALL \
             SELECT c.id, c.parent_id, c.name, c.slug, c.description, c.created_at, \
                    tree.path || c.slug \
             FROM categories c JOIN tree ON c.parent_id = tree.id \
         ) \
         SELECT id, parent_id, name, slug, description, created_at FROM tree ORDER BY path",
    )
    .fetch_all(pool)
    .await?;
    Ok(categories)
}
