-- Where every node-hour's price came from (price_sheet, market, catalogue,
-- catalogue_spot_estimate, default), and how far allocations went past a node's
-- capacity: allocations are never scaled down, so an overcommitted node's idle is
-- negative and its idle row carries the core- and GiB-hours allocated above capacity.
-- A node price fact may name no GPU price (NULL): the split then uses the default.

ALTER TABLE cost_allocation_hourly
    ADD COLUMN IF NOT EXISTS price_source LowCardinality(String) DEFAULT '' AFTER capacity_type;

ALTER TABLE cost_allocation_hourly
    ADD COLUMN IF NOT EXISTS cpu_overcommit_core_hours Float64 DEFAULT 0 AFTER gpu_hours;

ALTER TABLE cost_allocation_hourly
    ADD COLUMN IF NOT EXISTS ram_overcommit_gib_hours Float64 DEFAULT 0
    AFTER cpu_overcommit_core_hours;

ALTER TABLE node_prices
    ADD COLUMN IF NOT EXISTS price_source LowCardinality(String) DEFAULT '' AFTER gpu_usd_per_hour;

ALTER TABLE node_prices MODIFY COLUMN gpu_usd_per_hour Nullable(Float64);

CREATE OR REPLACE VIEW v_cost_hourly AS
SELECT id, * FROM cost_allocation_hourly FINAL;

CREATE OR REPLACE VIEW v_node_cost_daily AS
SELECT
    toDate(window_start) AS day, cluster, node,
    any(instance_type) AS instance_type, any(capacity_type) AS capacity_type,
    argMax(price_source, window_start) AS price_source,
    sum(h.total_cost) AS total_cost,
    sumIf(h.total_cost, h.is_idle) AS idle_cost,
    sum(h.cpu_overcommit_core_hours) AS cpu_overcommit_core_hours,
    sum(h.ram_overcommit_gib_hours) AS ram_overcommit_gib_hours
FROM cost_allocation_hourly AS h FINAL
GROUP BY day, cluster, node;

CREATE OR REPLACE VIEW v_overcommitted_node_hours AS
SELECT
    window_start, cluster, node, instance_type, capacity_type, price_source,
    cpu_overcommit_core_hours, ram_overcommit_gib_hours,
    cpu_core_hours AS idle_cpu_core_hours, ram_gib_hours AS idle_ram_gib_hours,
    total_cost AS idle_cost
FROM cost_allocation_hourly FINAL
WHERE is_idle AND (cpu_overcommit_core_hours > 0 OR ram_overcommit_gib_hours > 0);
