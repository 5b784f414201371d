-- The comments of the comment service as JSON documents, for when it keeps them in
-- PostgreSQL (see src/store/postgres.rs); with MONGODB_URL set they are in MongoDB instead.
-- Written once by `cargo xtask new-service comment`; from now on it belongs to the service.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

CREATE TABLE comments (
    id         uuid        PRIMARY KEY,
    document   jsonb       NOT NULL
        CONSTRAINT comments_document_object CHECK (jsonb_typeof(document) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
