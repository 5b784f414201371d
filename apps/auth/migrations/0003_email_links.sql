-- Email verification and password reset: the tokens of the links auth has emailed.
--
-- A token is 32 random bytes handed out once, in an event for the notification service to
-- email; only its SHA-256 is kept here, so a copy of this table opens nothing. A row is bound
-- to its account and to the address it was sent to: a verification link verifies that
-- address only while it is still the account's. `used_at` makes a token single-use,
-- `revoked_at` is set when a newer reset link supersedes it. Rows are kept for a while after
-- they stop working (they are what request limits count) and deleted by the service later.

ALTER TABLE accounts ADD COLUMN email_verified_at timestamptz;
-- Whoever changes an account's email (no route does yet) must set email_verified_at to NULL
-- in the same statement.

CREATE TABLE email_link_tokens (
    -- SHA-256 of the token, lower-case hex.
    token_hash text        PRIMARY KEY
        CONSTRAINT email_link_tokens_hash_hex CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    purpose    text        NOT NULL
        CONSTRAINT email_link_tokens_purpose_known CHECK (purpose IN ('verify_email', 'reset_password')),
    account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The address the link was sent to, as the account had it then.
    email      text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,
    CONSTRAINT email_link_tokens_expire_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX email_link_tokens_account ON email_link_tokens (account_id, purpose, created_at);
