-- Key rotation without failed requests for the keys kept in the database.
--
-- A key is published (in the JWKS) from the moment it is inserted, but signs only from
-- `signs_from`: inserted with `signs_from` in the future (`auth-service rotate-signing-key`),
-- every verifier knows the key before any token names it. The newest active key whose
-- `signs_from` has come signs; the key it supersedes stays published for an access-token
-- lifetime (and the replicas' refresh interval) after that, so the tokens it signed keep
-- verifying until they expire (see src/keys.rs and docs/runbooks/key-rotation.md).
ALTER TABLE signing_keys ADD COLUMN signs_from timestamptz;
UPDATE signing_keys SET signs_from = created_at;
ALTER TABLE signing_keys
    ALTER COLUMN signs_from SET NOT NULL,
    ALTER COLUMN signs_from SET DEFAULT now();
