-- Stable analyst-facing views (documented in dashboards/README.md). Grafana and
-- `kubeopera sql` read these, never the tables behind them.

CREATE OR REPLACE VIEW v_cost_hourly AS
SELECT id, * FROM cost_allocation_hourly FINAL;

CREATE OR REPLACE VIEW v_cost_by_namespace_daily AS
SELECT *,
    if(cpu_request_core_hours > 0, cpu_usage_core_hours / cpu_request_core_hours, NULL) AS cpu_efficiency,
    if(ram_request_gib_hours > 0, ram_usage_gib_hours / ram_request_gib_hours, NULL) AS ram_efficiency
FROM
(
    SELECT
        day, cluster, namespace,
        sum(total_cost) AS total_cost,
        sum(cpu_cost) AS cpu_cost,
        sum(ram_cost) AS ram_cost,
        sum(gpu_cost) AS gpu_cost,
        sum(cpu_core_hours) AS cpu_core_hours,
        sum(cpu_request_core_hours) AS cpu_request_core_hours,
        sum(cpu_usage_core_hours) AS cpu_usage_core_hours,
        sum(ram_gib_hours) AS ram_gib_hours,
        sum(ram_request_gib_hours) AS ram_request_gib_hours,
        sum(ram_usage_gib_hours) AS ram_usage_gib_hours
    FROM cost_by_namespace_daily
    GROUP BY day, cluster, namespace
);

CREATE OR REPLACE VIEW v_cost_by_team_daily AS
SELECT
    day, cluster, team,
    sum(total_cost) AS total_cost,
    sum(cpu_cost) AS cpu_cost,
    sum(ram_cost) AS ram_cost,
    sum(gpu_cost) AS gpu_cost
FROM cost_by_team_daily
GROUP BY day, cluster, team;

CREATE OR REPLACE VIEW v_idle_by_cluster_daily AS
SELECT day, cluster, sum(total_cost) AS idle_cost
FROM cost_by_namespace_daily
WHERE namespace = '__idle__'
GROUP BY day, cluster;

CREATE OR REPLACE VIEW v_cost_by_workload_daily AS
SELECT *,
    if(cpu_request_core_hours > 0, cpu_usage_core_hours / cpu_request_core_hours, NULL) AS cpu_efficiency,
    if(ram_request_gib_hours > 0, ram_usage_gib_hours / ram_request_gib_hours, NULL) AS ram_efficiency
FROM
(
    SELECT
        toDate(window_start) AS day, cluster, namespace, controller_kind, controller_name,
        sum(total_cost) AS total_cost,
        sum(cpu_usage_core_hours) AS cpu_usage_core_hours,
        sum(cpu_request_core_hours) AS cpu_request_core_hours,
        sum(ram_usage_gib_hours) AS ram_usage_gib_hours,
        sum(ram_request_gib_hours) AS ram_request_gib_hours
    FROM cost_allocation_hourly FINAL
    WHERE NOT is_idle
    GROUP BY day, cluster, namespace, controller_kind, controller_name
);

CREATE OR REPLACE VIEW v_node_cost_daily AS
SELECT
    toDate(window_start) AS day, cluster, node,
    any(instance_type) AS instance_type, any(capacity_type) AS capacity_type,
    sum(h.total_cost) AS total_cost,
    sumIf(h.total_cost, h.is_idle) AS idle_cost
FROM cost_allocation_hourly AS h FINAL
GROUP BY day, cluster, node;

CREATE OR REPLACE VIEW v_deadletter_by_reason AS
SELECT source_topic, error, count() AS messages, min(at) AS first_at, max(at) AS last_at
FROM deadletter FINAL
GROUP BY source_topic, error;
