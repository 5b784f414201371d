-- The reviews of the comment service, for when it keeps them in PostgreSQL (see
-- src/store/postgres.rs); with MONGODB_URL set they are in MongoDB instead.
-- A migration that has run is never edited: add the next one (0002_....sql) instead.

-- One review per customer and product. What the author wrote (title, body), the seller's
-- reply and the moderation reason are the JSON document; what is filtered, sorted or counted
-- on is in columns of its own.
CREATE TABLE reviews (
    id            uuid        PRIMARY KEY,
    product_id    uuid        NOT NULL,
    author_id     uuid        NOT NULL,
    rating        smallint    NOT NULL CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5),
    status        text        NOT NULL
        CONSTRAINT reviews_status_known CHECK (status IN ('published', 'pending', 'hidden')),
    verified      boolean     NOT NULL DEFAULT false,
    helpful_count bigint      NOT NULL DEFAULT 0 CONSTRAINT reviews_helpful_count_positive CHECK (helpful_count >= 0),
    open_reports  bigint      NOT NULL DEFAULT 0 CONSTRAINT reviews_open_reports_positive CHECK (open_reports >= 0),
    document      jsonb       NOT NULL
        CONSTRAINT reviews_document_object CHECK (jsonb_typeof(document) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_one_per_author_and_product UNIQUE (product_id, author_id)
);

-- The public listings, one index per sort, each holding only published reviews.
CREATE INDEX reviews_newest ON reviews (product_id, id DESC) WHERE status = 'published';
CREATE INDEX reviews_most_helpful ON reviews (product_id, helpful_count DESC, id DESC)
    WHERE status = 'published';
CREATE INDEX reviews_by_rating ON reviews (product_id, rating, id DESC) WHERE status = 'published';
-- The moderators' queues and the verified-purchase updates.
CREATE INDEX reviews_queue ON reviews (status, id);
CREATE INDEX reviews_reported ON reviews (id) WHERE status = 'published' AND open_reports > 0;
CREATE INDEX reviews_author ON reviews (author_id, product_id);

-- The published reviews of each product in figures, changed by the same transaction as the
-- review (an `UPDATE ... SET x = x + delta`, which serialises concurrent writers on the row),
-- never recomputed on a read.
CREATE TABLE review_summaries (
    product_id   uuid   PRIMARY KEY,
    review_count bigint NOT NULL DEFAULT 0,
    rating_total bigint NOT NULL DEFAULT 0,
    stars_1      bigint NOT NULL DEFAULT 0,
    stars_2      bigint NOT NULL DEFAULT 0,
    stars_3      bigint NOT NULL DEFAULT 0,
    stars_4      bigint NOT NULL DEFAULT 0,
    stars_5      bigint NOT NULL DEFAULT 0,
    CONSTRAINT review_summaries_consistent CHECK (
        review_count >= 0 AND stars_1 >= 0 AND stars_2 >= 0 AND stars_3 >= 0 AND stars_4 >= 0
        AND stars_5 >= 0 AND review_count = stars_1 + stars_2 + stars_3 + stars_4 + stars_5
        AND rating_total = stars_1 + 2 * stars_2 + 3 * stars_3 + 4 * stars_4 + 5 * stars_5
    )
);

-- One helpful vote per customer and review.
CREATE TABLE review_votes (
    review_id  uuid        NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, user_id)
);

-- One report per customer and review.
CREATE TABLE review_reports (
    review_id  uuid        NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL,
    reason     text        NOT NULL,
    note       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, user_id)
);

-- Every status change of a review: who made it and why. Kept when the review is deleted.
CREATE TABLE review_history (
    id          bigserial   PRIMARY KEY,
    review_id   uuid        NOT NULL,
    from_status text,
    to_status   text,
    actor       text        NOT NULL CONSTRAINT review_history_actor_known CHECK (actor IN ('author', 'admin', 'rules')),
    actor_id    uuid,
    reason      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_history_review ON review_history (review_id, id);

-- The verified-purchase read model, fed by the order events: the orders and the products
-- in them. An order verifies its lines for its customer once it is paid (or a line was
-- delivered) until it is cancelled or refunded; a void is final.
CREATE TABLE purchase_orders (
    order_id uuid    PRIMARY KEY,
    -- Unknown until an event that carries the whole order (order.paid, order.cancelled,
    -- order.refunded) arrives; suborder.delivered carries only the sub-order.
    user_id  uuid,
    paid     boolean NOT NULL DEFAULT false,
    voided   boolean NOT NULL DEFAULT false
);
CREATE INDEX purchase_orders_user ON purchase_orders (user_id);

CREATE TABLE purchase_lines (
    order_id   uuid    NOT NULL REFERENCES purchase_orders (order_id),
    product_id uuid    NOT NULL,
    delivered  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX purchase_lines_product ON purchase_lines (product_id);
