-- Each user's postal addresses, with exactly one default while the user has any.
--
-- The service validates every field first (src/domain.rs); the constraints here are the last
-- line of defence and mirror those rules. Constraint names are spelled out because the
-- service maps them to errors (src/store.rs); renaming one here means changing it there too.

CREATE TABLE addresses (
    id             uuid        PRIMARY KEY,
    -- The owner: the authenticated caller's user id. Users live in the user service; here it
    -- is only a key, and every query filters by it.
    user_id        uuid        NOT NULL,
    recipient_name text        NOT NULL CONSTRAINT addresses_recipient_name_length CHECK (char_length(recipient_name) BETWEEN 1 AND 200),
    phone          text        NOT NULL DEFAULT '' CONSTRAINT addresses_phone_format CHECK (phone ~ '^(\+[1-9][0-9]{7,14})?$'),
    line1          text        NOT NULL CONSTRAINT addresses_line1_length CHECK (char_length(line1) BETWEEN 1 AND 200),
    line2          text        NOT NULL DEFAULT '' CONSTRAINT addresses_line2_length CHECK (char_length(line2) <= 200),
    city           text        NOT NULL CONSTRAINT addresses_city_length CHECK (char_length(city) BETWEEN 1 AND 100),
    region         text        NOT NULL DEFAULT '' CONSTRAINT addresses_region_length CHECK (char_length(region) <= 100),
    -- Empty only in countries without postal codes; the per-country formats live in the service.
    postal_code    text        NOT NULL CONSTRAINT addresses_postal_code_format CHECK (postal_code ~ '^[A-Z0-9 -]{0,20}$'),
    country_code   char(2)     NOT NULL CONSTRAINT addresses_country_code_format CHECK (country_code ~ '^[A-Z]{2}$'),
    is_default     boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A user's listing: the default first, then newest first.
CREATE INDEX addresses_user_idx ON addresses (user_id, is_default DESC, created_at DESC, id DESC);

-- At most one default per user. Not deferrable: moving the default clears the old one first.
CREATE UNIQUE INDEX addresses_one_default_per_user ON addresses (user_id) WHERE is_default;

-- At least one default per user who has addresses, checked when the transaction commits, so
-- that a transaction may pass through a state without a default (clear old, then set new).
CREATE FUNCTION addresses_check_default() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner uuid;
BEGIN
    FOREACH owner IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.user_id END,
        CASE WHEN TG_OP <> 'DELETE' THEN NEW.user_id END
    ] LOOP
        CONTINUE WHEN owner IS NULL;
        IF EXISTS (SELECT 1 FROM addresses WHERE user_id = owner)
           AND NOT EXISTS (SELECT 1 FROM addresses WHERE user_id = owner AND is_default) THEN
            RAISE EXCEPTION 'user % has addresses but no default address', owner
                USING ERRCODE = 'check_violation',
                      TABLE = 'addresses',
                      CONSTRAINT = 'addresses_default_required';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER addresses_default_required
    AFTER INSERT OR UPDATE OR DELETE ON addresses
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION addresses_check_default();
