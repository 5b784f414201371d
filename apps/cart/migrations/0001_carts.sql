-- Carts, the durable copy: every write lands here first, in a transaction, and Redis is
-- refilled from it (see src/store.rs). A user has one cart, keyed by the user id; a guest cart
-- is keyed by the SHA-256 of its token, so a dump of this table hands out no cart.
--
-- Constraint names are spelled out because the service refers to them (src/store.rs).

CREATE TABLE carts (
    -- 'user:<user id>' or 'guest:<sha-256 of the token, hex>'.
    key          text        PRIMARY KEY,
    -- NULL for a guest cart.
    user_id      text,
    -- The lines in the order they were first added: [{"product_id": uuid, "quantity": 1..99}].
    -- One document rather than a table of lines: a cart is always read and written whole,
    -- and it has at most 100 lines.
    lines        jsonb       NOT NULL DEFAULT '[]'::jsonb
                             CONSTRAINT carts_lines_array CHECK (jsonb_typeof(lines) = 'array' AND jsonb_array_length(lines) <= 100),
    -- The ISO 4217 code every line is priced in; NULL while the cart is empty.
    currency     char(3)     CONSTRAINT carts_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    voucher_code text        CONSTRAINT carts_voucher_code_length CHECK (char_length(voucher_code) BETWEEN 1 AND 32),
    -- Bumped by every write; Redis keeps the version it holds, so an older copy never
    -- replaces a newer one there.
    version      bigint      NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Guest carts only: 30 days after their last write. Expired rows answer like missing
    -- ones and are swept away.
    expires_at   timestamptz,
    CONSTRAINT carts_guest_expires CHECK ((user_id IS NULL) = (expires_at IS NOT NULL))
);

CREATE INDEX carts_expires_idx ON carts (expires_at) WHERE expires_at IS NOT NULL;

-- One row per order that completed a cart: CompleteCheckout changes the cart only when it
-- inserts the row, so a retry has no second effect; a retry with another user or other lines
-- is refused.
CREATE TABLE checkouts (
    order_id     uuid        PRIMARY KEY,
    user_id      text        NOT NULL,
    -- The lines the order took, sorted by product id: [{"product_id", "quantity"}].
    lines        jsonb       NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now()
);
