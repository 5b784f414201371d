-- A committed redemption may be returned: its order was cancelled, and its use was given back
-- (used_count and the user's uses went down by one in the same transaction). The status CHECK
-- learns the new end state; every stored status is one of the old ones, so the constraint
-- holds on the rows already there.

ALTER TABLE redemptions
    DROP CONSTRAINT redemptions_status_known,
    ADD CONSTRAINT redemptions_status_known
        CHECK (status IN ('held', 'committed', 'released', 'expired', 'returned'));
