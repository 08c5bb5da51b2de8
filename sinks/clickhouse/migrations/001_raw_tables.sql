-- Raw inputs as they arrived. ReplacingMergeTree on the natural key: a replayed message
-- replaces its first copy instead of adding a second. Retention (TTL) is applied at
-- start-up from settings (storage.raw_retention_days).

CREATE TABLE IF NOT EXISTS raw_metrics
(
    cluster LowCardinality(String),
    node LowCardinality(String),
    namespace LowCardinality(String),
    pod String,
    pod_uid String,
    container LowCardinality(String),
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    window_end DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    cpu_cores Float64 CODEC(Gorilla, ZSTD),
    memory_working_set_bytes Float64 CODEC(Gorilla, ZSTD),
    memory_rss_bytes Float64 CODEC(Gorilla, ZSTD),
    restarts UInt32 CODEC(T64, ZSTD),
    cpu_throttled_ratio Nullable(Float64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (cluster, namespace, pod, container, window_start, pod_uid);

CREATE TABLE IF NOT EXISTS raw_node_metrics
(
    cluster LowCardinality(String),
    node LowCardinality(String),
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    window_end DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    capacity_cpu Float64,
    capacity_memory_bytes Float64,
    capacity_gpus Float64,
    usage_cpu Float64 CODEC(Gorilla, ZSTD),
    usage_memory_bytes Float64 CODEC(Gorilla, ZSTD)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (cluster, node, window_start);

CREATE TABLE IF NOT EXISTS raw_objects
(
    cluster LowCardinality(String),
    kind LowCardinality(String),
    namespace LowCardinality(String),
    name String,
    uid String,
    api_version LowCardinality(String),
    resource_version String,
    generation Nullable(Int64),
    observed_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    change LowCardinality(String),
    object String CODEC(ZSTD(3)),
    labels Map(LowCardinality(String), String),
    annotations Map(LowCardinality(String), String),
    owner_chain String,
    last_manager LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(observed_at)
ORDER BY (cluster, namespace, kind, name, observed_at, uid, change);

CREATE TABLE IF NOT EXISTS raw_events
(
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    name String,
    uid String,
    type LowCardinality(String),
    reason LowCardinality(String),
    message String,
    involved_kind LowCardinality(String),
    involved_name String,
    involved_uid String,
    source_component LowCardinality(String),
    source_host String,
    count UInt32,
    first_time Nullable(DateTime64(3, 'UTC')),
    last_time DateTime64(3, 'UTC') CODEC(Delta, ZSTD)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(last_time)
ORDER BY (cluster, namespace, involved_kind, involved_name, last_time, uid, count);

CREATE TABLE IF NOT EXISTS node_prices
(
    cluster LowCardinality(String),
    node LowCardinality(String),
    instance_type LowCardinality(String),
    capacity_type LowCardinality(String),
    region LowCardinality(String),
    zone LowCardinality(String),
    usd_per_hour Nullable(Float64),
    cpu_usd_per_core_hour Nullable(Float64),
    ram_usd_per_gib_hour Nullable(Float64),
    gpu_usd_per_hour Float64,
    observed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (cluster, node, observed_at);

CREATE TABLE IF NOT EXISTS deadletter
(
    at DateTime64(3, 'UTC'),
    source_topic LowCardinality(String),
    partition Int32,
    offset Int64,
    key String,
    raw String CODEC(ZSTD(3)),
    error String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (source_topic, partition, offset, at, cityHash64(raw));
