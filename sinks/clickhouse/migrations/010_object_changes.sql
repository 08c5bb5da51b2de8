-- The change timeline: one row per changed field of an object version (the changes
-- processor, streams/processors/change_timeline.py). A replayed version writes rows
-- whose key the table already holds, and ReplacingMergeTree keeps one.

CREATE TABLE IF NOT EXISTS object_changes
(
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    kind LowCardinality(String),
    name String,
    uid String,
    observed_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    resource_version String,
    change LowCardinality(String),
    path String,
    field_change LowCardinality(String),
    old Nullable(String),
    new Nullable(String),
    category LowCardinality(String),
    manager LowCardinality(String),
    operation LowCardinality(String),
    top_kind LowCardinality(String),
    top_name String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(observed_at)
ORDER BY (cluster, namespace, kind, name, observed_at, uid, resource_version, path);
