-- The voucher code the checkout request named (empty: the cart's), kept apart from the code
-- the order used, so that a repeat of the request with its Idempotency-Key is recognised as
-- the same request, and another request with the key is refused.
ALTER TABLE orders ADD COLUMN requested_voucher_code text NOT NULL DEFAULT '';
