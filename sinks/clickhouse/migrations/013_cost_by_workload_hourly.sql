-- Hourly cost by workload: what the dashboards sum over a month without reading every
-- container-hour (a workload's containers and a node's idle collapse into one row of its
-- hour). Filled by a materialized view on every insert of hourly rows, deduplicated as
-- the daily rollups are (004); rows of one key may repeat until merged, so read it with
-- sum(). Idle rows carry team '__idle__', as the team rollup does.

CREATE TABLE IF NOT EXISTS cost_by_workload_hourly
(
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    cluster LowCardinality(String),
    namespace LowCardinality(String),
    team LowCardinality(String),
    controller_kind LowCardinality(String),
    controller_name String,
    price_source LowCardinality(String),
    is_idle Bool,
    cpu_request_core_hours Float64,
    cpu_usage_core_hours Float64,
    ram_request_gib_hours Float64,
    ram_usage_gib_hours Float64,
    cpu_overcommit_core_hours Float64,
    ram_overcommit_gib_hours Float64,
    cpu_cost Float64,
    ram_cost Float64,
    gpu_cost Float64,
    total_cost Float64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (cluster, namespace, window_start, team, controller_kind, controller_name, price_source, is_idle)
SETTINGS non_replicated_deduplication_window = 100000;

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_by_workload_hourly_mv TO cost_by_workload_hourly AS
SELECT
    window_start, cluster, namespace, if(is_idle, '__idle__', team) AS team,
    controller_kind, controller_name, price_source, is_idle,
    sum(cpu_request_core_hours) AS cpu_request_core_hours,
    sum(cpu_usage_core_hours) AS cpu_usage_core_hours,
    sum(ram_request_gib_hours) AS ram_request_gib_hours,
    sum(ram_usage_gib_hours) AS ram_usage_gib_hours,
    sum(cpu_overcommit_core_hours) AS cpu_overcommit_core_hours,
    sum(ram_overcommit_gib_hours) AS ram_overcommit_gib_hours,
    sum(cpu_cost) AS cpu_cost,
    sum(ram_cost) AS ram_cost,
    sum(gpu_cost) AS gpu_cost,
    sum(total_cost) AS total_cost
FROM cost_allocation_hourly
GROUP BY window_start, cluster, namespace, team, controller_kind, controller_name, price_source,
    is_idle;

-- What the store held before this migration.
INSERT INTO cost_by_workload_hourly
SELECT
    window_start, cluster, namespace, if(is_idle, '__idle__', team) AS team,
    controller_kind, controller_name, price_source, is_idle,
    sum(cpu_request_core_hours), sum(cpu_usage_core_hours), sum(ram_request_gib_hours),
    sum(ram_usage_gib_hours), sum(cpu_overcommit_core_hours), sum(ram_overcommit_gib_hours),
    sum(cpu_cost), sum(ram_cost), sum(gpu_cost), sum(total_cost)
FROM cost_allocation_hourly FINAL
GROUP BY window_start, cluster, namespace, team, controller_kind, controller_name, price_source,
    is_idle;
