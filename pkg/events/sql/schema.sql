-- The tables of pkg/events, applied by events::migrate at every start-up. Idempotent (IF NOT
-- EXISTS) and outside the service's own sqlx migrations, so that every service gets them
-- without copying a migration file and the service's migrator never sees them. A change here
-- must stay additive and idempotent.

-- Events written in the same transaction as the change they describe; the relay publishes
-- them in `position` order and keeps them for a while after (published_at) for re-publishing.
CREATE TABLE IF NOT EXISTS events_outbox (
    -- UUID v7; the Nats-Msg-Id and the event id.
    id           uuid        PRIMARY KEY,
    -- Insertion order. Per aggregate it is commit order, because a change locks its aggregate's
    -- row before it appends its event.
    position     bigserial   NOT NULL CONSTRAINT events_outbox_position_key UNIQUE,
    aggregate_id text        NOT NULL,
    event_name   text        NOT NULL,
    subject      text        NOT NULL,
    -- Canonical proto3 JSON of the payload.
    payload      jsonb       NOT NULL,
    -- NATS headers as a JSON object of strings (Nats-Msg-Id is added when publishing).
    headers      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- What the relay reads: only rows still to publish.
CREATE INDEX IF NOT EXISTS events_outbox_pending_idx
    ON events_outbox (position) WHERE published_at IS NULL;
-- What pruning and `cargo xtask events republish --since` scan.
CREATE INDEX IF NOT EXISTS events_outbox_created_idx ON events_outbox (created_at);

-- Events a consumer has already applied, written in the consumer's own transaction.
CREATE TABLE IF NOT EXISTS events_inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
