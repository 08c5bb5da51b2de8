-- Whose prices a node was costed at: the node's own region (a price sheet, a market
-- price), the catalogue's region (us-east-1 on-demand prices) or none (OpenCost's
-- default unit prices). A node outside the catalogue's region priced from it is told
-- apart in reports, which say how to give regional prices.

ALTER TABLE node_prices
    ADD COLUMN IF NOT EXISTS price_region LowCardinality(String) DEFAULT '' AFTER price_source;
