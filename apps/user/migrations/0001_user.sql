-- The users of the user service, as JSON documents (see store.rs).
-- Written once by `cargo xtask new-service user`; from now on it belongs to the service.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

CREATE TABLE users_documents (
    id         uuid        PRIMARY KEY,
    document   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
