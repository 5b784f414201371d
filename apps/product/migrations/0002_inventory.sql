-- Stock on hand per product and the reservations that hold part of it.
--
-- The CHECK constraints are the last line of defence of the inventory invariant
-- 0 <= reserved <= stock: whatever a code path does, the database refuses to oversell.

CREATE TABLE inventory (
    product_id uuid        PRIMARY KEY CONSTRAINT inventory_product_fk REFERENCES products (id) ON DELETE CASCADE,
    stock      bigint      NOT NULL CONSTRAINT inventory_stock_not_negative CHECK (stock >= 0),
    reserved   bigint      NOT NULL DEFAULT 0 CONSTRAINT inventory_reserved_not_negative CHECK (reserved >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inventory_reserved_within_stock CHECK (reserved <= stock)
);

CREATE TABLE reservations (
    -- Chosen by the caller, so that retrying a reservation is idempotent.
    id         uuid        PRIMARY KEY,
    status     text        NOT NULL CONSTRAINT reservations_status_known CHECK (status IN ('held', 'released', 'committed', 'expired')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the expiry sweeper scans: only reservations still holding stock.
CREATE INDEX reservations_held_expiry_idx ON reservations (expires_at) WHERE status = 'held';

CREATE TABLE reservation_items (
    reservation_id uuid   NOT NULL CONSTRAINT reservation_items_reservation_fk REFERENCES reservations (id) ON DELETE CASCADE,
    product_id     uuid   NOT NULL CONSTRAINT reservation_items_product_fk REFERENCES products (id),
    quantity       bigint NOT NULL CONSTRAINT reservation_items_quantity_positive CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, product_id)
);

CREATE INDEX reservation_items_product_idx ON reservation_items (product_id);
