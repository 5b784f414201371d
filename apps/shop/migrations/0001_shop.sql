-- Shops: who owns each, how buyers find it (its slug), what it prices in, and whether it
-- trades; and the history of every status change.
--
-- The service validates every field first (src/domain.rs); the constraints here are the last
-- line of defence and mirror those rules. Constraint names are spelled out because the
-- service maps them to errors (src/store.rs); renaming one here means changing it there too.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

CREATE TABLE shops (
    id            uuid        PRIMARY KEY,
    -- The seller who opened it. Users live in the auth and user services; here it is a key.
    owner_id      uuid        NOT NULL,
    name          text        NOT NULL CONSTRAINT shops_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    slug          text        NOT NULL
        CONSTRAINT shops_slug_key UNIQUE
        CONSTRAINT shops_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) BETWEEN 3 AND 48),
    description   text        NOT NULL DEFAULT '' CONSTRAINT shops_description_length CHECK (char_length(description) <= 2000),
    logo_url      text        NOT NULL DEFAULT '' CONSTRAINT shops_logo_url_length CHECK (char_length(logo_url) <= 2048),
    contact_email text        NOT NULL CONSTRAINT shops_contact_email_format CHECK (contact_email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' AND char_length(contact_email) <= 254),
    currency      char(3)     NOT NULL CONSTRAINT shops_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    status        text        NOT NULL DEFAULT 'pending'
        CONSTRAINT shops_status_known CHECK (status IN ('pending', 'active', 'suspended', 'closed')),
    -- Why an admin suspended it; empty in every other status.
    status_reason text        NOT NULL DEFAULT ''
        CONSTRAINT shops_status_reason_length CHECK (char_length(status_reason) <= 500),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A seller's own shops, in id (creation) order.
CREATE INDEX shops_owner_idx ON shops (owner_id, id);
-- The public listing and the admins' listing by status, in id order.
CREATE INDEX shops_status_idx ON shops (status, id);

-- Every status change, as it happened: who changed it, from what, to what, and why.
CREATE TABLE shop_status_changes (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop_id         uuid        NOT NULL CONSTRAINT shop_status_changes_shop_fk REFERENCES shops (id),
    previous_status text        NOT NULL,
    status          text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    -- The user id of the admin or owner who changed it.
    changed_by      text        NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX shop_status_changes_shop_idx ON shop_status_changes (shop_id, id);
