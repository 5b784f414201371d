-- The tables of pkg/saga, applied by saga::migrate at every start-up. Idempotent (IF NOT EXISTS)
-- and outside the service's own sqlx migrations, so that every service running sagas gets them
-- without copying a migration file and the service's migrator never sees them. A change here
-- must stay additive and idempotent.

-- One row per saga instance: where it stands (state, phase, step), the data it carries, when it
-- is due next and which replica holds it.
CREATE TABLE IF NOT EXISTS saga_instances (
    id             uuid        PRIMARY KEY,
    -- The definition's name ("checkout").
    saga           text        NOT NULL,
    state          text        NOT NULL,
    -- 'action' while going forward, 'compensation' while undoing.
    phase          text        NOT NULL,
    -- The step to run next (or being run) in `phase`.
    step_index     integer     NOT NULL,
    -- That step's name, checked against the definition before it runs; NULL once finished.
    current_step   text,
    data           jsonb       NOT NULL,
    -- Attempts of the current step since it last made progress (the retry bound counts these).
    attempts       integer     NOT NULL DEFAULT 0,
    -- The current step has answered "wait" at least once, so it may have had an effect.
    step_waited    boolean     NOT NULL DEFAULT false,
    last_error     text,
    -- The refusal being compensated ("out_of_stock", "retries_exhausted", "aborted", ...).
    refusal_code   text,
    refusal_detail jsonb,
    -- An operator's abort that reached the instance while a step was in flight; applied by the
    -- holder as soon as that step's outcome is committed.
    abort_reason   text,
    -- Not driven before this instant: a retry's backoff or a durable timer.
    wake_at        timestamptz NOT NULL DEFAULT now(),
    -- The signal that ends the current wait early.
    wait_signal    text,
    -- The replica driving the instance, and until when its claim holds unless renewed.
    lease_owner    text,
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    CONSTRAINT saga_instances_state_check CHECK (
        state IN ('running', 'waiting', 'compensating', 'completed', 'compensated', 'stuck', 'failed')
    ),
    CONSTRAINT saga_instances_phase_check CHECK (phase IN ('action', 'compensation'))
);

-- The W3C trace context (traceparent, tracestate) of the request that created the instance:
-- every step's span is its child, whenever and wherever the step runs.
ALTER TABLE saga_instances ADD COLUMN IF NOT EXISTS traceparent text;
ALTER TABLE saga_instances ADD COLUMN IF NOT EXISTS tracestate text;

-- What the runner's claim query reads: instances still to drive, by when they are due.
CREATE INDEX IF NOT EXISTS saga_instances_due_idx
    ON saga_instances (state, wake_at)
    WHERE state IN ('running', 'waiting', 'compensating', 'stuck');
-- Listing, newest first, with and without a state filter.
CREATE INDEX IF NOT EXISTS saga_instances_created_idx
    ON saga_instances (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS saga_instances_state_created_idx
    ON saga_instances (state, created_at DESC, id DESC);

-- One row per step and phase an instance has started: how often it ran and how it ended.
CREATE TABLE IF NOT EXISTS saga_steps (
    instance_id uuid        NOT NULL REFERENCES saga_instances (id) ON DELETE CASCADE,
    step_index  integer     NOT NULL,
    phase       text        NOT NULL,
    name        text        NOT NULL,
    attempts    integer     NOT NULL,
    outcome     text        NOT NULL,
    last_error  text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (instance_id, step_index, phase)
);

-- Durable signals for waiting steps; a step consumes one in the transaction that records
-- the step's outcome.
CREATE TABLE IF NOT EXISTS saga_signals (
    id          bigserial   PRIMARY KEY,
    instance_id uuid        NOT NULL REFERENCES saga_instances (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    consumed_at timestamptz
);

CREATE INDEX IF NOT EXISTS saga_signals_pending_idx
    ON saga_signals (instance_id, name, id) WHERE consumed_at IS NULL;
