-- The catalog: hierarchical categories and the products in them.
--
-- Constraint names are spelled out because the service maps them to domain errors
-- (src/store.rs); renaming one here means changing it there too.

CREATE TABLE categories (
    id          uuid        PRIMARY KEY,
    parent_id   uuid        CONSTRAINT categories_parent_fk REFERENCES categories (id),
    name        text        NOT NULL CONSTRAINT categories_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    slug        text        NOT NULL CONSTRAINT categories_slug_key UNIQUE,
    description text        NOT NULL DEFAULT '' CONSTRAINT categories_description_length CHECK (char_length(description) <= 5000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Two top-level categories (NULL parent) with one name are as much a clash as two siblings.
    CONSTRAINT categories_parent_name_key UNIQUE NULLS NOT DISTINCT (parent_id, name)
);

CREATE INDEX categories_parent_idx ON categories (parent_id);

CREATE TABLE products (
    id                uuid        PRIMARY KEY,
    shop_id           uuid        NOT NULL,
    name              text        NOT NULL CONSTRAINT products_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    description       text        NOT NULL DEFAULT '' CONSTRAINT products_description_length CHECK (char_length(description) <= 5000),
    price_minor_units bigint      NOT NULL CONSTRAINT products_price_range CHECK (price_minor_units BETWEEN 0 AND 1000000000000),
    price_currency    text        NOT NULL CONSTRAINT products_price_currency_format CHECK (price_currency ~ '^[A-Z]{3}$'),
    category_id       uuid        CONSTRAINT products_category_fk REFERENCES categories (id),
    image_urls        text[]      NOT NULL DEFAULT '{}' CONSTRAINT products_image_urls_count CHECK (cardinality(image_urls) <= 10),
    status            text        NOT NULL DEFAULT 'active' CONSTRAINT products_status_known CHECK (status IN ('active', 'inactive')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Kept up to date by PostgreSQL itself, so no write path can forget it.
    search            tsvector    GENERATED ALWAYS AS (
                          setweight(to_tsvector('english'::regconfig, name), 'A')
                          || setweight(to_tsvector('english'::regconfig, description), 'B')
                      ) STORED
);

CREATE INDEX products_search_idx ON products USING gin (search);
-- The default listing: one status, newest first, keyset-paginated on (created_at, id).
CREATE INDEX products_listing_idx ON products (status, created_at DESC, id DESC);
CREATE INDEX products_category_idx ON products (category_id, created_at DESC, id DESC);
CREATE INDEX products_shop_idx ON products (shop_id, created_at DESC, id DESC);
