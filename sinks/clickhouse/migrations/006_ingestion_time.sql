-- When the pipeline wrote each scrape (ClickHouse's clock at insert): data freshness,
-- the latency from a collector's publish to the row, and "last seen" on dashboards.
-- Not part of the key: a replayed scrape stays one row.

ALTER TABLE raw_node_metrics
    ADD COLUMN IF NOT EXISTS ingested_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC')
    CODEC(Delta, ZSTD);
