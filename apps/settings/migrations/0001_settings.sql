-- The settingses of the settings service.
-- Written once by `cargo xtask new-service settings`; from now on it belongs to the service.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

CREATE TABLE settingses (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CONSTRAINT settingses_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
