-- Vouchers, the redemptions orders hold of them, and each user's uses of each voucher.
--
-- The usage limits are enforced here, not by reading and then writing: the service takes a use
-- with one conditional UPDATE of the voucher row and one conditional upsert of the user's row
-- of voucher_user_uses, which PostgreSQL re-evaluates on the latest row version after waiting
-- for a concurrent writer, so concurrent reservations cannot take more uses than there are.
-- Whatever a code path does, a CHECK keeps used_count + reserved_count within usage_limit and
-- no count below zero.

CREATE TABLE vouchers (
    id                       uuid        PRIMARY KEY,
    -- As created; `code_key` is what lookups and uniqueness use, so "SAVE10" and "save10" are
    -- one code.
    code                     text        NOT NULL CONSTRAINT vouchers_code_format CHECK (code ~ '^[A-Za-z0-9_-]{3,32}$'),
    code_key                 text        NOT NULL GENERATED ALWAYS AS (lower(code)) STORED,
    description              text        NOT NULL DEFAULT '' CONSTRAINT vouchers_description_length CHECK (char_length(description) <= 500),
    -- NULL: platform-wide.
    shop_id                  uuid,
    kind                     text        NOT NULL CONSTRAINT vouchers_kind_known CHECK (kind IN ('percent', 'fixed')),
    percent_off              integer     NOT NULL DEFAULT 0,
    amount_off_minor_units   bigint      NOT NULL DEFAULT 0,
    currency                 text        NOT NULL CONSTRAINT vouchers_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    min_order_minor_units    bigint      NOT NULL DEFAULT 0 CONSTRAINT vouchers_min_order_not_negative CHECK (min_order_minor_units >= 0),
    max_discount_minor_units bigint      NOT NULL DEFAULT 0 CONSTRAINT vouchers_max_discount_not_negative CHECK (max_discount_minor_units >= 0),
    valid_from               timestamptz NOT NULL,
    -- NULL: no end.
    valid_until              timestamptz,
    -- 0: unlimited.
    usage_limit              integer     NOT NULL DEFAULT 0 CONSTRAINT vouchers_usage_limit_not_negative CHECK (usage_limit >= 0),
    per_user_limit           integer     NOT NULL DEFAULT 0 CONSTRAINT vouchers_per_user_limit_not_negative CHECK (per_user_limit >= 0),
    used_count               integer     NOT NULL DEFAULT 0 CONSTRAINT vouchers_used_count_not_negative CHECK (used_count >= 0),
    reserved_count           integer     NOT NULL DEFAULT 0 CONSTRAINT vouchers_reserved_count_not_negative CHECK (reserved_count >= 0),
    status                   text        NOT NULL DEFAULT 'active' CONSTRAINT vouchers_status_known CHECK (status IN ('active', 'disabled')),
    created_by               text        NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vouchers_percent_off_range CHECK (
        (kind = 'percent' AND percent_off BETWEEN 1 AND 100 AND amount_off_minor_units = 0)
        OR (kind = 'fixed' AND percent_off = 0)
    ),
    CONSTRAINT vouchers_amount_off_positive CHECK (
        (kind = 'fixed' AND amount_off_minor_units > 0) OR kind = 'percent'
    ),
    CONSTRAINT vouchers_valid_until_after_valid_from CHECK (valid_until IS NULL OR valid_until > valid_from),
    CONSTRAINT vouchers_usage_within_limit CHECK (usage_limit = 0 OR used_count + reserved_count <= usage_limit)
);

CREATE UNIQUE INDEX vouchers_code_key ON vouchers (code_key);
-- Listings of one shop, newest first.
CREATE INDEX vouchers_shop_idx ON vouchers (shop_id, id);

CREATE TABLE redemptions (
    -- Chosen by the caller (the checkout's order id), so that retrying a reservation is
    -- idempotent: one order redeems at most one voucher.
    order_id               uuid        PRIMARY KEY,
    voucher_id             uuid        NOT NULL CONSTRAINT redemptions_voucher_fk REFERENCES vouchers (id),
    user_id                uuid        NOT NULL,
    amount_minor_units     bigint      NOT NULL CONSTRAINT redemptions_amount_not_negative CHECK (amount_minor_units >= 0),
    currency               text        NOT NULL,
    status                 text        NOT NULL CONSTRAINT redemptions_status_known CHECK (status IN ('held', 'committed', 'released', 'expired')),
    expires_at             timestamptz NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- What the expiry sweeper scans: only redemptions still holding a use.
CREATE INDEX redemptions_held_expiry_idx ON redemptions (expires_at) WHERE status = 'held';
CREATE INDEX redemptions_voucher_idx ON redemptions (voucher_id);

-- How many uses (held or committed) each user has of each voucher: the per-user limit is a
-- conditional upsert on this row, so concurrent reservations of one user serialise on it.
CREATE TABLE voucher_user_uses (
    voucher_id uuid    NOT NULL CONSTRAINT voucher_user_uses_voucher_fk REFERENCES vouchers (id),
    user_id    uuid    NOT NULL,
    uses       integer NOT NULL CONSTRAINT voucher_user_uses_not_negative CHECK (uses >= 0),
    PRIMARY KEY (voucher_id, user_id)
);
