-- The settings of the platform and its shops: each key's current value per scope, and every
-- change ever made to it.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

-- One row per key and scope. `version` counts the changes (1 is the first value);
-- `published_version` is the version last copied into the JetStream key-value bucket, so a
-- row with published_version < version is still to be copied (the relay retries it until it
-- is: a crash between the commit and the copy loses nothing).
CREATE TABLE settings (
    scope             text        NOT NULL CONSTRAINT settings_scope_length CHECK (char_length(scope) BETWEEN 1 AND 64),
    key               text        NOT NULL CONSTRAINT settings_key_length CHECK (char_length(key) BETWEEN 1 AND 100),
    value             jsonb       NOT NULL,
    version           bigint      NOT NULL CONSTRAINT settings_version_positive CHECK (version >= 1),
    published_version bigint      NOT NULL DEFAULT 0,
    updated_by        text        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX settings_unpublished ON settings (scope, key) WHERE published_version < version;

-- The audit history: who changed what, when, from what to what, and why. Written in the
-- same transaction as the change.
CREATE TABLE setting_history (
    scope      text        NOT NULL,
    key        text        NOT NULL,
    version    bigint      NOT NULL,
    old_value  jsonb,
    new_value  jsonb       NOT NULL,
    changed_by text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    reason     text        NOT NULL CONSTRAINT setting_history_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500),
    PRIMARY KEY (scope, key, version)
);
