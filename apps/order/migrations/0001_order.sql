-- Orders, their sub-orders (one per shop), their lines and the history of their statuses.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.
--
-- Money is bigint minor units of the order's one currency. An order's figures are computed
-- once, at checkout, and stored; the CHECKs keep every stored row adding up.

CREATE TABLE orders (
    id                  uuid        PRIMARY KEY,
    user_id             uuid        NOT NULL,
    -- The customer's Idempotency-Key: the same key of the same customer is the same order.
    idempotency_key     text        NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    status              text        NOT NULL CONSTRAINT orders_status CHECK (status IN (
        'pending', 'paid', 'partially_shipped', 'shipped', 'delivered', 'failed', 'cancelled',
        'partially_refunded', 'refunded')),
    -- Empty until the checkout priced the cart.
    currency            text        NOT NULL DEFAULT '',
    subtotal            bigint      NOT NULL DEFAULT 0 CHECK (subtotal >= 0),
    discount            bigint      NOT NULL DEFAULT 0 CHECK (discount >= 0 AND discount <= subtotal),
    shipping            bigint      NOT NULL DEFAULT 0 CHECK (shipping >= 0),
    tax                 bigint      NOT NULL DEFAULT 0 CHECK (tax >= 0),
    total               bigint      NOT NULL DEFAULT 0,
    voucher_code        text        NOT NULL DEFAULT '',
    shipping_method     text        NOT NULL,
    shipping_address_id uuid        NOT NULL,
    -- The address as it was at checkout; null until the checkout read it.
    shipping_address    jsonb,
    payment_method_id   text        NOT NULL,
    payment_id          uuid,
    expected_total      bigint,
    expected_currency   text,
    -- Why it failed or was cancelled: {code, message, product_ids, price_changes, ...}.
    failure             jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_figures_add_up CHECK (total = subtotal - discount + shipping + tax),
    CONSTRAINT orders_idempotency_key UNIQUE (user_id, idempotency_key)
);

CREATE INDEX orders_by_user ON orders (user_id, id DESC);

CREATE TABLE sub_orders (
    id              uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL REFERENCES orders (id),
    shop_id         uuid        NOT NULL,
    status          text        NOT NULL CONSTRAINT sub_orders_status CHECK (status IN (
        'pending', 'paid', 'shipped', 'delivered', 'failed', 'cancelled')),
    subtotal        bigint      NOT NULL CHECK (subtotal >= 0),
    discount        bigint      NOT NULL CHECK (discount >= 0 AND discount <= subtotal),
    shipping        bigint      NOT NULL CHECK (shipping >= 0),
    tax             bigint      NOT NULL CHECK (tax >= 0),
    total           bigint      NOT NULL,
    carrier         text        NOT NULL DEFAULT '',
    tracking_number text        NOT NULL DEFAULT '',
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sub_orders_figures_add_up CHECK (total = subtotal - discount + shipping + tax),
    CONSTRAINT sub_orders_one_per_shop UNIQUE (order_id, shop_id),
    CONSTRAINT sub_orders_shipped_with_tracking CHECK (
        status NOT IN ('shipped', 'delivered') OR (carrier <> '' AND tracking_number <> ''))
);

CREATE INDEX sub_orders_by_order ON sub_orders (order_id);
CREATE INDEX sub_orders_by_shop ON sub_orders (shop_id, id DESC);

CREATE TABLE order_lines (
    sub_order_id uuid    NOT NULL REFERENCES sub_orders (id),
    position     int     NOT NULL,
    product_id   uuid    NOT NULL,
    name         text    NOT NULL,
    unit_price   bigint  NOT NULL CHECK (unit_price >= 0),
    quantity     int     NOT NULL CHECK (quantity > 0),
    line_total   bigint  NOT NULL,
    PRIMARY KEY (sub_order_id, position),
    CONSTRAINT order_lines_total CHECK (line_total = unit_price * quantity)
);

-- Every status change of an order or one of its sub-orders: who, when, why.
CREATE TABLE order_history (
    id           bigserial   PRIMARY KEY,
    order_id     uuid        NOT NULL REFERENCES orders (id),
    sub_order_id uuid        REFERENCES sub_orders (id),
    status       text        NOT NULL,
    actor        text        NOT NULL CHECK (actor IN ('customer', 'seller', 'admin', 'system')),
    actor_id     uuid,
    reason       text        NOT NULL DEFAULT '',
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX order_history_by_order ON order_history (order_id, id);

-- The cancellation saga of an order: at most one.
CREATE TABLE order_cancellations (
    order_id   uuid        PRIMARY KEY REFERENCES orders (id),
    saga_id    uuid        NOT NULL UNIQUE,
    actor      text        NOT NULL,
    actor_id   uuid,
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
