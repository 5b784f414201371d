-- Accounts, their roles and password hashes, and the token signing keys of the auth service.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.
-- The events outbox tables are created by `events::migrate`, not here.

CREATE TABLE accounts (
    id            uuid        PRIMARY KEY,
    -- Lower case, trimmed: the service normalises addresses before it stores or looks them up.
    email         text        NOT NULL
        CONSTRAINT accounts_email_key UNIQUE
        CONSTRAINT accounts_email_normalised CHECK (email = lower(btrim(email)) AND char_length(email) BETWEEN 3 AND 254),
    -- A PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
    password_hash text        NOT NULL,
    -- An account always keeps at least one role, and only the platform's roles.
    roles         text[]      NOT NULL
        CONSTRAINT accounts_roles_not_empty CHECK (cardinality(roles) > 0)
        CONSTRAINT accounts_roles_known CHECK (roles <@ ARRAY['customer', 'seller', 'admin']::text[]),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Ed25519 keys that sign access tokens when no key file is configured (a dev convenience:
-- production mounts the private key as a secret file).
CREATE TABLE signing_keys (
    kid             text        PRIMARY KEY,
    -- PKCS#8 PEM.
    private_key_pem text        NOT NULL,
    -- The public key, base64url without padding (the JWK's "x").
    public_key_x    text        NOT NULL,
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);
