-- The profiles of the user service, one JSON document per account (see src/store/postgres.rs).
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

-- Trigram indexes make substring search ("contains") use an index; pg_trgm is a trusted
-- extension, so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE profiles (
    user_id     uuid        PRIMARY KEY,
    document    jsonb       NOT NULL
        CONSTRAINT profiles_document_is_an_object CHECK (jsonb_typeof(document) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- What SearchUsers matches: the searchable fields, lower case, one per line. A query
    -- cannot contain a line break, so it never matches across two fields.
    search_text text        NOT NULL GENERATED ALWAYS AS (
        lower(
            coalesce(document->>'email', '') || E'\n' ||
            coalesce(document->>'username', '') || E'\n' ||
            coalesce(document->>'first_name', '') || E'\n' ||
            coalesce(document->>'last_name', '')
        )
    ) STORED
);

-- A username is unique when set; the empty string means "none" and may repeat.
CREATE UNIQUE INDEX profiles_username_key ON profiles ((lower(document->>'username')))
    WHERE document->>'username' <> '';

CREATE INDEX profiles_search_text_idx ON profiles USING gin (search_text gin_trgm_ops);
