-- Not every usage source reports RSS: metrics.k8s.io gives the working set only. A
-- missing value is NULL, never a zero that would read as "uses no memory".

ALTER TABLE raw_metrics
    MODIFY COLUMN memory_rss_bytes Nullable(Float64) CODEC(Gorilla, ZSTD);
