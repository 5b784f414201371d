-- Payment methods, payments, the ledger of provider calls, the callers' idempotency keys, and
-- what the simulated provider did per key.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.
--
-- No table holds a card number or a CVC: a payment method keeps the brand, the last four
-- digits, the expiry and the provider's token for the card.

CREATE TABLE payment_methods (
    -- "pm_" and a UUID v7.
    id             text        PRIMARY KEY CONSTRAINT payment_methods_id_format CHECK (id ~ '^pm_[0-9a-f-]{36}$'),
    user_id        uuid        NOT NULL,
    brand          text        NOT NULL CONSTRAINT payment_methods_brand_known CHECK (brand IN ('visa', 'mastercard', 'amex', 'discover', 'unknown')),
    last4          text        NOT NULL CONSTRAINT payment_methods_last4_format CHECK (last4 ~ '^[0-9]{4}$'),
    exp_month      integer     NOT NULL CONSTRAINT payment_methods_exp_month_range CHECK (exp_month BETWEEN 1 AND 12),
    exp_year       integer     NOT NULL CONSTRAINT payment_methods_exp_year_range CHECK (exp_year BETWEEN 2000 AND 2100),
    -- What the provider gave for the card; authorisations name the card with it.
    provider_token text        NOT NULL CONSTRAINT payment_methods_provider_token_present CHECK (provider_token <> ''),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_methods_user_idx ON payment_methods (user_id);

CREATE TABLE payments (
    -- A UUID v7: ids sort in creation order, which listings use.
    id                    uuid        PRIMARY KEY,
    order_id              uuid        NOT NULL,
    user_id               uuid        NOT NULL,
    payment_method_id     text        NOT NULL CONSTRAINT payments_payment_method_fk REFERENCES payment_methods (id),
    brand                 text        NOT NULL,
    last4                 text        NOT NULL,
    currency              text        NOT NULL CONSTRAINT payments_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor_units    bigint      NOT NULL CONSTRAINT payments_amount_positive CHECK (amount_minor_units > 0),
    captured_minor_units  bigint      NOT NULL DEFAULT 0,
    refunded_minor_units  bigint      NOT NULL DEFAULT 0,
    status                text        NOT NULL CONSTRAINT payments_status_known CHECK (status IN ('authorized', 'captured', 'partially_refunded', 'refunded', 'voided', 'failed')),
    failure_code          text        NOT NULL DEFAULT '',
    failure_message       text        NOT NULL DEFAULT '',
    provider_reference    text        NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- Never more captured than authorised, nor more refunded than captured.
    CONSTRAINT payments_captured_within_amount CHECK (captured_minor_units BETWEEN 0 AND amount_minor_units),
    CONSTRAINT payments_refunded_within_captured CHECK (refunded_minor_units BETWEEN 0 AND captured_minor_units),
    -- The amounts agree with the status.
    CONSTRAINT payments_status_amounts CHECK (
        CASE status
            WHEN 'authorized' THEN captured_minor_units = 0
            WHEN 'voided' THEN captured_minor_units = 0
            WHEN 'failed' THEN captured_minor_units = 0
            WHEN 'captured' THEN captured_minor_units > 0 AND refunded_minor_units = 0
            WHEN 'partially_refunded' THEN refunded_minor_units > 0 AND refunded_minor_units < captured_minor_units
            WHEN 'refunded' THEN captured_minor_units > 0 AND refunded_minor_units = captured_minor_units
        END
    ),
    -- A failed payment says why; no other does.
    CONSTRAINT payments_failure_code CHECK (
        (status = 'failed' AND failure_code IN ('card_declined', 'insufficient_funds'))
        OR (status <> 'failed' AND failure_code = '')
    )
);

-- Listings: newest first, of one order or of all.
CREATE INDEX payments_order_idx ON payments (order_id, id);

-- Every call made to the provider, whatever its outcome. `payment_id` is the payment the call
-- was for; an authorisation that ended in a processing error has no payment row (yet: a retry
-- with the same key makes it with this id), so there is no foreign key.
CREATE TABLE payment_ledger (
    id                  uuid        PRIMARY KEY,
    payment_id          uuid        NOT NULL,
    operation           text        NOT NULL CONSTRAINT payment_ledger_operation_known CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    idempotency_key     text        NOT NULL,
    currency            text        NOT NULL CONSTRAINT payment_ledger_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor_units  bigint      NOT NULL CONSTRAINT payment_ledger_amount_not_negative CHECK (amount_minor_units >= 0),
    outcome             text        NOT NULL CONSTRAINT payment_ledger_outcome_known CHECK (outcome IN ('succeeded', 'declined', 'error')),
    provider_reference  text        NOT NULL DEFAULT '',
    message             text        NOT NULL DEFAULT '',
    at                  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX payment_ledger_payment_idx ON payment_ledger (payment_id, at, id);

-- The callers' keys. A row is inserted (and committed) before the provider is called, so a
-- call cut short by a crash leaves its key `in_progress`; the request that finishes it holds
-- the row locked from before the provider call until its result commits, so one key reaches
-- the provider at most once at a time, and never again once `completed`.
CREATE TABLE idempotency_keys (
    idempotency_key     text        PRIMARY KEY,
    operation           text        NOT NULL CONSTRAINT idempotency_keys_operation_known CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    -- SHA-256 (hex) of the operation and the request fields that matter.
    request_fingerprint text        NOT NULL CONSTRAINT idempotency_keys_fingerprint_format CHECK (request_fingerprint ~ '^[0-9a-f]{64}$'),
    -- The payment the operation is for (for an authorisation, the one it makes).
    payment_id          uuid        NOT NULL,
    state               text        NOT NULL CONSTRAINT idempotency_keys_state_known CHECK (state IN ('in_progress', 'completed')),
    -- The answer of the completed operation, as the contract's Payment in JSON.
    response            jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    CONSTRAINT idempotency_keys_completed_has_response CHECK ((state = 'completed') = (response IS NOT NULL AND completed_at IS NOT NULL))
);

-- The simulated provider's own memory: what it answered per idempotency key, so that a key it
-- has seen is answered the same way again and never charges twice (as a real processor does
-- with the key an adapter passes on). Processing errors are not remembered: they are retryable.
-- A real provider adapter keeps nothing here.
CREATE TABLE simulated_provider_operations (
    idempotency_key    text        PRIMARY KEY,
    operation          text        NOT NULL,
    currency           text        NOT NULL,
    amount_minor_units bigint      NOT NULL,
    outcome            text        NOT NULL CONSTRAINT simulated_provider_operations_outcome_known CHECK (outcome IN ('succeeded', 'declined')),
    reference          text        NOT NULL,
    decline_code       text        NOT NULL DEFAULT '',
    message            text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now()
);
