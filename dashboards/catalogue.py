"""The four dashboards: cost overview (FinOps), workload detail, changes and drift (SRE),
pipeline health. Every query reads the documented views (``dashboards/README.md``) or
the tables the README names beside them, in the ClickHouse data source's SQL
(``kubeopera.dashboards.macros``).

The cost overview sums ``cost_by_workload_hourly`` (the hourly rollup by workload, idle
under team ``__idle__``); the workload detail reads ``v_cost_hourly`` of one namespace.
Hourly cost is filtered on whole windows, ``window_start >= $__fromTime AND
window_start < $__toTime``: an hour counts when it starts in the range, as in
``kubeopera cost``, so both give the same figures for the same range. Rates divide
hour-sums by each bucket's hours in the range (``BUCKET_HOURS``).
"""

from kubeopera.dashboards.panels import Board, Panel, Variable

HOURS = "window_start >= $__fromTime AND window_start < $__toTime"
"""The hourly windows that start in the dashboard's range."""

BUCKET_HOURS = (
    "(dateDiff('second', greatest(time, $__fromTime),"
    " least(time + INTERVAL $__interval_s second, $__toTime)) / 3600)"
)
"""Hours of a time-series bucket (``time``, its start) inside the range: the first and last
bucket may be cut by the range, and a rate over them counts only their hours in it."""


def ratio(used: str, requested: str) -> str:
    """``used / requested`` summed, NULL without requests (as the views' efficiency)."""
    return f"if(sum({requested}) > 0, sum({used}) / sum({requested}), NULL)"


CPU_EFFICIENCY = ratio("cpu_usage_core_hours", "cpu_request_core_hours")
RAM_EFFICIENCY = ratio("ram_usage_gib_hours", "ram_request_gib_hours")

_COST_SCOPE = (
    "cluster IN (${cluster:singlequote}) AND namespace IN (${namespace:singlequote})"
    " AND team IN (${team:singlequote})"
)
_PLACE = (
    "cluster IN (${cluster:singlequote})"
    " AND (namespace IN (${namespace:singlequote}) OR namespace = '')"
)
"""The chosen clusters and namespaces, and what has no namespace there (Nodes, cluster
roles, a cluster's or a team's anomalies): those show whichever namespaces are chosen."""

CLUSTER = Variable(
    "cluster", "Cluster", "SELECT DISTINCT cluster FROM v_cost_by_namespace_daily ORDER BY cluster"
)
NAMESPACE = Variable(
    "namespace",
    "Namespace",
    "SELECT DISTINCT namespace FROM v_cost_by_namespace_daily"
    " WHERE cluster IN (${cluster:singlequote}) ORDER BY namespace",
)
TEAM_VARIABLE = Variable(
    "team",
    "Team",
    "SELECT DISTINCT team FROM v_cost_by_team_daily"
    " WHERE cluster IN (${cluster:singlequote}) ORDER BY team",
)

COST_OVERVIEW = Board(
    uid="kubeopera-cost-overview",
    title="KubeOpera / Cost overview",
    description="What the fleet cost, who spent it, how much was idle, how nodes were"
    " priced, the costliest workloads and how they use what they request, and budgets.",
    tags=("kubeopera", "finops"),
    variables=(CLUSTER, NAMESPACE, TEAM_VARIABLE),
    panels=(
        Panel(
            "Total cost",
            "stat",
            f"SELECT sum(total_cost) AS total_cost FROM cost_by_workload_hourly WHERE {HOURS}"
            f" AND {_COST_SCOPE}",
            "Cost of the hours in range, idle included (USD).",
            unit="currencyUSD",
            width=6,
            height=4,
        ),
        Panel(
            "Idle cost",
            "stat",
            "SELECT sumIf(total_cost, is_idle) AS idle_cost FROM cost_by_workload_hourly"
            f" WHERE {HOURS} AND {_COST_SCOPE}",
            "Capacity that nobody requested or used (USD; negative when allocations"
            " exceed capacity).",
            unit="currencyUSD",
            width=6,
            height=4,
        ),
        Panel(
            "CPU efficiency",
            "stat",
            f"SELECT {CPU_EFFICIENCY} AS cpu_efficiency FROM cost_by_workload_hourly"
            f" WHERE {HOURS} AND {_COST_SCOPE} AND NOT is_idle",
            "CPU used over CPU requested by the workloads in range.",
            unit="percentunit",
            width=6,
            height=4,
        ),
        Panel(
            "Memory efficiency",
            "stat",
            f"SELECT {RAM_EFFICIENCY} AS ram_efficiency FROM cost_by_workload_hourly"
            f" WHERE {HOURS} AND {_COST_SCOPE} AND NOT is_idle",
            "Memory used (working set) over memory requested by the workloads in range.",
            unit="percentunit",
            width=6,
            height=4,
        ),
        Panel(
            "Cost by team",
            "timeseries",
            f"SELECT $__timeInterval(window_start) AS time, team, sum(total_cost) AS cost"
            f" FROM cost_by_workload_hourly WHERE {HOURS} AND {_COST_SCOPE}"
            " GROUP BY time, team ORDER BY time, team",
            "Cost per bucket by team (USD; idle under __idle__).",
            unit="currencyUSD",
        ),
        Panel(
            "Cost by cluster",
            "timeseries",
            f"SELECT $__timeInterval(window_start) AS time, cluster, sum(total_cost) AS cost"
            f" FROM cost_by_workload_hourly WHERE {HOURS} AND {_COST_SCOPE}"
            " GROUP BY time, cluster ORDER BY time, cluster",
            "Cost per bucket by cluster, idle included (USD).",
            unit="currencyUSD",
        ),
        Panel(
            "Cost by namespace",
            "timeseries",
            f"SELECT $__timeInterval(window_start) AS time, namespace, sum(total_cost) AS cost"
            f" FROM cost_by_workload_hourly WHERE {HOURS} AND {_COST_SCOPE}"
            " GROUP BY time, namespace ORDER BY time, namespace",
            "Cost per bucket by namespace, summed over the clusters (USD; idle under __idle__).",
            unit="currencyUSD",
        ),
        Panel(
            "Cost by price source",
            "piechart",
            "SELECT price_source, sum(total_cost) AS cost FROM cost_by_workload_hourly"
            f" WHERE {HOURS} AND {_COST_SCOPE} GROUP BY price_source ORDER BY cost DESC",
            "How the nodes behind the cost were priced: a price sheet, the market (spot),"
            " the catalogue, or OpenCost's default prices (USD).",
            unit="currencyUSD",
        ),
        Panel(
            "Idle and overcommit by cluster",
            "table",
            "SELECT cluster, sum(total_cost) AS cost, sumIf(total_cost, is_idle) AS idle_cost,"
            " sumIf(total_cost, is_idle) / sum(total_cost) AS idle_share,"
            " sum(cpu_overcommit_core_hours) AS cpu_overcommit_core_hours,"
            " sum(ram_overcommit_gib_hours) AS ram_overcommit_gib_hours"
            f" FROM cost_by_workload_hourly WHERE {HOURS} AND {_COST_SCOPE}"
            " GROUP BY cluster ORDER BY cost DESC",
            "Idle cost and its share of each cluster's cost; core-hours and GiB-hours"
            " allocated above node capacity.",
            unit="currencyUSD",
            width=24,
        ),
        Panel(
            "Cost by namespace (table)",
            "table",
            "SELECT cluster, namespace, sum(total_cost) AS total_cost, sum(cpu_cost) AS cpu_cost,"
            " sum(ram_cost) AS ram_cost, sum(gpu_cost) AS gpu_cost,"
            f" {CPU_EFFICIENCY} AS cpu_efficiency, {RAM_EFFICIENCY} AS ram_efficiency"
            f" FROM cost_by_workload_hourly WHERE {HOURS} AND {_COST_SCOPE}"
            " GROUP BY cluster, namespace ORDER BY total_cost DESC",
            "Each namespace's cost in range, as `kubeopera cost --by cluster,namespace`"
            " gives it with idle and shared namespaces not spread (USD; efficiency: usage"
            " over request).",
            unit="currencyUSD",
            width=24,
        ),
        Panel(
            "Top workloads",
            "table",
            "SELECT cluster, namespace, controller_kind, controller_name,"
            " sum(total_cost) AS total_cost,"
            f" {CPU_EFFICIENCY} AS cpu_efficiency, {RAM_EFFICIENCY} AS ram_efficiency"
            f" FROM cost_by_workload_hourly WHERE {HOURS} AND {_COST_SCOPE} AND NOT is_idle"
            " GROUP BY cluster, namespace, controller_kind, controller_name"
            " ORDER BY total_cost DESC LIMIT 50",
            "The 50 costliest workloads (top controllers) and how much of their requests they use.",
            unit="currencyUSD",
            width=24,
        ),
        Panel(
            "Budget status",
            "table",
            "SELECT budget, amount, spend, forecast, forecast_low, forecast_high,"
            " spent_share, forecast_share, as_of FROM v_budget_status"
            " ORDER BY forecast_share DESC",
            "Each budget in force: spend so far in its period and the forecast to its end"
            " with the 90 % interval (USD), as of the latest hour counted.",
            unit="currencyUSD",
            width=24,
        ),
    ),
)


def episodes(where: str) -> str:
    """Anomaly episodes (findings of kind anomaly) matching ``where`` that were open at
    some time in the range, open ones first: when each began and ended (NULL while open),
    its ``state`` (open, resolved), its subject, and what opened it (the first state
    written: the series kind, the value
    observed in its unit, the score, the summary), as ``kubeopera anomalies`` shows them.
    An episode is in range when it began before the range's end and is still open or
    ended after its start."""
    opened = "argMin(evidence, last_seen)"
    return (
        "SELECT first_seen, if(argMax(status, last_seen) = 'resolved', max(last_seen), NULL)"
        " AS ended, argMax(status, last_seen) AS state, cluster, namespace, kind, name,"
        f" JSONExtractString({opened}, 'series_kind') AS series_kind,"
        f" JSONExtractFloat({opened}, 'observed') AS observed,"
        f" JSONExtractString({opened}, 'unit') AS unit,"
        f" JSONExtractFloat({opened}, 'score') AS score,"
        " argMin(summary, last_seen) AS summary"
        f" FROM findings FINAL WHERE finding_kind = 'anomaly' AND {where}"
        " GROUP BY fingerprint, first_seen, cluster, namespace, kind, name"
        " HAVING first_seen <= $__toTime AND (state = 'open' OR ended >= $__fromTime)"
        " ORDER BY state = 'open' DESC, first_seen DESC"
    )


_WORKLOAD = (
    "cluster = ${cluster:singlequote} AND namespace = ${namespace:singlequote}"
    " AND controller_kind = splitByChar('/', ${workload:singlequote})[1]"
    " AND controller_name = substring(${workload:singlequote},"
    " position(${workload:singlequote}, '/') + 1)"
)
_SERIES_OF_WORKLOAD = _WORKLOAD.replace("controller_kind", "workload_kind").replace(
    "controller_name", "workload"
)

WORKLOAD_DETAIL = Board(
    uid="kubeopera-workload-detail",
    title="KubeOpera / Workload detail",
    description="One workload (top controller): its cost, what it requests against what"
    " it uses, its restarts, its anomalies and its changes.",
    tags=("kubeopera", "sre", "finops"),
    variables=(
        Variable(
            "cluster",
            "Cluster",
            "SELECT DISTINCT cluster FROM v_cost_by_namespace_daily ORDER BY cluster",
            multi=False,
        ),
        Variable(
            "namespace",
            "Namespace",
            "SELECT DISTINCT namespace FROM v_cost_by_namespace_daily"
            " WHERE cluster = ${cluster:singlequote} AND namespace != '__idle__'"
            " ORDER BY namespace",
            multi=False,
        ),
        Variable(
            "workload",
            "Workload",
            "SELECT DISTINCT concat(controller_kind, '/', controller_name) AS workload"
            " FROM v_cost_by_workload_daily WHERE cluster = ${cluster:singlequote}"
            " AND namespace = ${namespace:singlequote} ORDER BY workload",
            multi=False,
        ),
    ),
    panels=(
        Panel(
            "Cost",
            "timeseries",
            "SELECT $__timeInterval(window_start) AS time, sum(cpu_cost) AS cpu,"
            " sum(ram_cost) AS memory, sum(gpu_cost) AS gpu"
            f" FROM v_cost_hourly WHERE {HOURS} AND {_WORKLOAD} GROUP BY time ORDER BY time",
            "The workload's cost per bucket by resource (USD).",
            unit="currencyUSD",
        ),
        Panel(
            "CPU: requested and used",
            "timeseries",
            "SELECT $__timeInterval(window_start) AS time,"
            f" sum(cpu_request_core_hours) / {BUCKET_HOURS} AS requested,"
            f" sum(cpu_usage_core_hours) / {BUCKET_HOURS} AS used"
            f" FROM v_cost_hourly WHERE {HOURS} AND {_WORKLOAD} GROUP BY time ORDER BY time",
            "Cores requested and used by all the workload's containers, averaged over each bucket.",
            unit="short",
        ),
        Panel(
            "Memory: requested and used",
            "timeseries",
            "SELECT $__timeInterval(window_start) AS time,"
            f" sum(ram_request_gib_hours) * 1073741824 / {BUCKET_HOURS} AS requested,"
            f" sum(ram_usage_gib_hours) * 1073741824 / {BUCKET_HOURS} AS used"
            f" FROM v_cost_hourly WHERE {HOURS} AND {_WORKLOAD} GROUP BY time ORDER BY time",
            "Bytes requested and used (working set) by the workload's containers, averaged"
            " over each bucket.",
            unit="bytes",
        ),
        Panel(
            "Memory against its expected band",
            "timeseries",
            "SELECT $__timeInterval(window_start) AS time, avg(value) AS used,"
            " avg(expected) AS expected, avg(upper) AS upper"
            f" FROM series_hourly FINAL WHERE {HOURS} AND {_SERIES_OF_WORKLOAD}"
            " AND series_kind = 'memory' GROUP BY time ORDER BY time",
            "The workload's memory (bytes) and what the anomaly detector expected, with"
            " the top of its band (empty until the detector has warmed up).",
            unit="bytes",
        ),
        Panel(
            "Restarts and OOM kills",
            "timeseries",
            "SELECT $__timeInterval(window_start) AS time, series_kind, sum(value) AS count"
            f" FROM series_hourly FINAL WHERE {HOURS} AND {_SERIES_OF_WORKLOAD}"
            " AND series_kind IN ('restarts', 'oom_kills') GROUP BY time, series_kind"
            " ORDER BY time, series_kind",
            "Container restarts, and those that were OOM kills, per bucket.",
            width=24,
        ),
        Panel(
            "Anomalies",
            "table",
            episodes(
                "cluster = ${cluster:singlequote} AND namespace = ${namespace:singlequote}"
                " AND concat(kind, '/', name) = ${workload:singlequote}"
            ),
            "The workload's anomaly episodes that were open at some time in range.",
            width=24,
        ),
        Panel(
            "Changes",
            "table",
            "SELECT at, kind, name, change, path, old, new, manager FROM v_changes"
            " WHERE $__timeFilter(at) AND cluster = ${cluster:singlequote}"
            " AND namespace = ${namespace:singlequote}"
            " AND concat(top_kind, '/', top_name) = ${workload:singlequote}"
            " ORDER BY at DESC LIMIT 500",
            "What changed in the workload's objects, newest first, and which field manager"
            " changed it.",
            width=24,
        ),
    ),
)

CHANGES_AND_DRIFT = Board(
    uid="kubeopera-changes-drift",
    title="KubeOpera / Changes and drift",
    description="What changed, what drifted from its baseline, and what is anomalous now.",
    tags=("kubeopera", "sre"),
    variables=(CLUSTER, NAMESPACE),
    panels=(
        Panel(
            "Changes per hour by category",
            "timeseries",
            f"SELECT $__timeInterval(at) AS time, category, count() / {BUCKET_HOURS} AS changes"
            f" FROM v_changes WHERE $__timeFilter(at) AND {_PLACE} GROUP BY time, category"
            " ORDER BY time, category",
            "Changed fields per hour by category (image, replicas, config, ...), averaged"
            " over each bucket's hours in range.",
            width=12,
        ),
        Panel(
            "Open drift",
            "stat",
            f"SELECT uniqExact(fingerprint) AS drifted FROM v_drift_open WHERE {_PLACE}",
            "Drift findings open now: objects whose live state differs from a baseline"
            " (declared, approved or a peer cluster's).",
            width=6,
        ),
        Panel(
            "Open anomalies",
            "stat",
            f"SELECT count() AS anomalies FROM v_anomalies_open WHERE {_PLACE}",
            "Series in an anomalous episode now.",
            width=6,
        ),
        Panel(
            "Change timeline",
            "table",
            "SELECT at, cluster, namespace, top_kind, top_name, kind, name, change, path, old,"
            f" new, manager FROM v_changes WHERE $__timeFilter(at) AND {_PLACE}"
            " ORDER BY at DESC LIMIT 500",
            "The latest 500 changed fields in range, newest first, with the field manager"
            " that made each.",
            width=24,
            height=10,
        ),
        Panel(
            "Drift open",
            "table",
            "SELECT first_seen, cluster, namespace, kind, name, baseline, path, change,"
            f" expected, live FROM v_drift_open WHERE {_PLACE} ORDER BY first_seen",
            "Each drifted field: the baseline's value and the live one (JSON).",
            width=24,
        ),
        Panel(
            "Anomalies",
            "table",
            episodes(_PLACE),
            "Anomaly episodes open now (first) or open at some time in range: the value"
            " that opened each and its score.",
            width=24,
        ),
    ),
)

PIPELINE_HEALTH = Board(
    uid="kubeopera-pipeline-health",
    title="KubeOpera / Pipeline health",
    description="Is the pipeline keeping up: ingest lag, scrapes arriving per cluster,"
    " freshness, and dead letters by reason.",
    tags=("kubeopera", "operations"),
    variables=(CLUSTER,),
    panels=(
        Panel(
            "Ingest lag",
            "timeseries",
            "SELECT $__timeInterval(window_end) AS time,"
            " quantile(0.5)(dateDiff('millisecond', window_end, ingested_at) / 1000) AS p50,"
            " quantile(0.99)(dateDiff('millisecond', window_end, ingested_at) / 1000) AS p99"
            " FROM raw_node_metrics WHERE $__timeFilter(window_end)"
            " AND cluster IN (${cluster:singlequote}) GROUP BY time ORDER BY time",
            "Seconds from the end of a node scrape to its row in the store, each row as"
            " written (a scrape published again counts again; replayed or simulated"
            " history shows how long ago it was written).",
            unit="s",
        ),
        Panel(
            "Node scrapes per hour by cluster",
            "timeseries",
            f"SELECT $__timeInterval(window_start) AS time, cluster,"
            f" count() / {BUCKET_HOURS} AS scrapes"
            " FROM raw_node_metrics FINAL WHERE $__timeFilter(window_start)"
            " AND cluster IN (${cluster:singlequote}) GROUP BY time, cluster"
            " ORDER BY time, cluster",
            "Node scrapes stored per hour, averaged over each bucket's hours in range: a dip"
            " is a collector or a network gap (or fewer nodes).",
        ),
        Panel(
            "Freshness by cluster",
            "table",
            "SELECT cluster, max(window_end) AS last_scrape, max(ingested_at) AS last_written,"
            " dateDiff('second', max(window_end), now64(3, 'UTC')) AS age_s"
            " FROM raw_node_metrics WHERE cluster IN (${cluster:singlequote})"
            " GROUP BY cluster ORDER BY age_s DESC",
            "The latest scrape of each cluster, when it was written, and its age now (s).",
            unit="s",
            width=24,
        ),
        Panel(
            "Dead letters by reason",
            "table",
            "SELECT source_topic, replaceRegexpOne(error, '^line [0-9]+: ', '') AS reason,"
            " count() AS messages, min(at) AS first_at, max(at) AS last_at"
            " FROM deadletter FINAL WHERE $__timeFilter(at) GROUP BY source_topic, reason"
            " ORDER BY messages DESC LIMIT 100",
            "Messages the pipeline could not take in range, by topic and reason (a replayed"
            " file's line numbers left out), the 100 commonest.",
            width=24,
        ),
    ),
)

DASHBOARDS = (COST_OVERVIEW, WORKLOAD_DETAIL, CHANGES_AND_DRIFT, PIPELINE_HEALTH)
"""Every dashboard, in the order the report shows them."""
