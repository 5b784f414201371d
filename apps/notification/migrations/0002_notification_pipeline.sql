-- The notification pipeline: who to write to, whose orders, what each user wants, and every
-- notification made from an event (in-app ones are read from here, email ones are sent from
-- here). The generated example table goes: it never held anything.
-- A migration that has run is never edited: add the next one instead.

DROP TABLE notifications;

-- The email of every account, from user.registered: later events carry only user ids.
CREATE TABLE recipients (
    user_id    uuid        PRIMARY KEY,
    email      text        NOT NULL CONSTRAINT recipients_email_length CHECK (char_length(email) BETWEEN 3 AND 320),
    -- A BCP 47 tag; the templates of its primary language are used, English when there are none.
    language   text        NOT NULL DEFAULT 'en',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Whose order it is: sub-order events carry only the order id.
CREATE TABLE orders (
    order_id   uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    currency   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A user's choices; a kind and channel without a row is on.
CREATE TABLE notification_preferences (
    user_id    uuid        NOT NULL,
    kind       text        NOT NULL,
    channel    text        NOT NULL CONSTRAINT notification_preferences_channel CHECK (channel IN ('email', 'in_app')),
    enabled    boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind, channel)
);

CREATE TABLE notifications (
    id              uuid        PRIMARY KEY,
    -- The event it was made from: one notification per event, kind and channel.
    event_id        uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    kind            text        NOT NULL,
    channel         text        NOT NULL CONSTRAINT notifications_channel CHECK (channel IN ('email', 'in_app')),
    -- Email: pending -> sent | failed (attempts exhausted) | expired (a link past its expiry).
    -- In-app: delivered from the start.
    status          text        NOT NULL CONSTRAINT notifications_status CHECK (status IN ('pending', 'sent', 'failed', 'expired', 'delivered')),
    -- Email: the address it goes to.
    recipient       text,
    language        text        NOT NULL DEFAULT 'en',
    -- What it is about (an order id), '' when nothing.
    subject_id      text        NOT NULL DEFAULT '',
    -- In-app: what the user reads.
    title           text        NOT NULL DEFAULT '',
    body            text        NOT NULL DEFAULT '',
    -- Email: what the templates are rendered from. NULL for link emails, whose token is never
    -- stored: their consumer sends them while it holds the event.
    payload         jsonb,
    -- Link emails: when the link stops working; not sent after that.
    expires_at      timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Set while a sender holds the row; a crashed sender's lease runs out and another takes it.
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    read_at         timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_once_per_event UNIQUE (event_id, kind, channel)
);

CREATE INDEX notifications_pending_email ON notifications (next_attempt_at)
    WHERE channel = 'email' AND status = 'pending';
CREATE INDEX notifications_in_app_by_user ON notifications (user_id, id DESC)
    WHERE channel = 'in_app';
