-- Hourly cost allocation: one row per container-hour and one idle row per node-hour
-- (namespace = pod = '__idle__'). Rows are written once their hour has closed;
-- `samples` is the version, so a replayed row replaces its first copy.

CREATE TABLE IF NOT EXISTS cost_allocation_hourly
(
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    cluster LowCardinality(String),
    node LowCardinality(String),
    namespace LowCardinality(String),
    pod String,
    pod_uid String,
    container LowCardinality(String),
    controller_kind LowCardinality(String),
    controller_name String,
    team LowCardinality(String),
    labels Map(LowCardinality(String), String),
    annotations Map(LowCardinality(String), String),
    instance_type LowCardinality(String),
    capacity_type LowCardinality(String),
    is_idle Bool,
    samples UInt32,
    hours Float64,
    cpu_request_core_hours Float64,
    cpu_usage_core_hours Float64,
    cpu_core_hours Float64,
    ram_request_gib_hours Float64,
    ram_usage_gib_hours Float64,
    ram_gib_hours Float64,
    gpu_hours Float64,
    cpu_cost Float64,
    ram_cost Float64,
    gpu_cost Float64,
    total_cost Float64,
    id UInt64 MATERIALIZED cityHash64(cluster, namespace, window_start, node, pod, pod_uid, container)
)
ENGINE = ReplacingMergeTree(samples)
PARTITION BY toYYYYMM(window_start)
ORDER BY (cluster, namespace, window_start, node, pod, pod_uid, container);

-- Daily rollups, filled by materialized views on every insert of hourly rows.
CREATE TABLE IF NOT EXISTS cost_by_namespace_daily
(
    day Date,
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    cpu_core_hours Float64,
    cpu_request_core_hours Float64,
    cpu_usage_core_hours Float64,
    ram_gib_hours Float64,
    ram_request_gib_hours Float64,
    ram_usage_gib_hours Float64,
    gpu_hours Float64,
    cpu_cost Float64,
    ram_cost Float64,
    gpu_cost Float64,
    total_cost Float64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (cluster, namespace, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_by_namespace_daily_mv TO cost_by_namespace_daily AS
SELECT
    toDate(window_start) AS day, cluster, namespace,
    sum(cpu_core_hours) AS cpu_core_hours,
    sum(cpu_request_core_hours) AS cpu_request_core_hours,
    sum(cpu_usage_core_hours) AS cpu_usage_core_hours,
    sum(ram_gib_hours) AS ram_gib_hours,
    sum(ram_request_gib_hours) AS ram_request_gib_hours,
    sum(ram_usage_gib_hours) AS ram_usage_gib_hours,
    sum(gpu_hours) AS gpu_hours,
    sum(cpu_cost) AS cpu_cost,
    sum(ram_cost) AS ram_cost,
    sum(gpu_cost) AS gpu_cost,
    sum(total_cost) AS total_cost
FROM cost_allocation_hourly
GROUP BY day, cluster, namespace;

CREATE TABLE IF NOT EXISTS cost_by_team_daily
(
    day Date,
    cluster LowCardinality(String),
    team LowCardinality(String),
    cpu_core_hours Float64,
    ram_gib_hours Float64,
    gpu_hours Float64,
    cpu_cost Float64,
    ram_cost Float64,
    gpu_cost Float64,
    total_cost Float64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (cluster, team, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_by_team_daily_mv TO cost_by_team_daily AS
SELECT
    toDate(window_start) AS day, cluster,
    if(is_idle, '__idle__', team) AS team,
    sum(cpu_core_hours) AS cpu_core_hours,
    sum(ram_gib_hours) AS ram_gib_hours,
    sum(gpu_hours) AS gpu_hours,
    sum(cpu_cost) AS cpu_cost,
    sum(ram_cost) AS ram_cost,
    sum(gpu_cost) AS gpu_cost,
    sum(total_cost) AS total_cost
FROM cost_allocation_hourly
GROUP BY day, cluster, team;
