-- A committed reservation may be restocked: its order was cancelled before it shipped, and
-- what it sold is back on hand. The status CHECK learns the new end state; every stored
-- status is one of the old ones, so the constraint holds on the rows already there.

ALTER TABLE reservations
    DROP CONSTRAINT reservations_status_known,
    ADD CONSTRAINT reservations_status_known
        CHECK (status IN ('held', 'released', 'committed', 'expired', 'restocked'));
