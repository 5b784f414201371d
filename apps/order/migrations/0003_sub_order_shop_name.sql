-- The shop's name as it was at checkout, kept with each sub-order so that the buyer's order,
-- the seller's list and the events say whose part it is without asking the shop service.
-- Sub-orders recorded before it was kept have it empty.
ALTER TABLE sub_orders ADD COLUMN shop_name text NOT NULL DEFAULT '';
