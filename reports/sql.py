"""The SQL text of the reports: over the analyst views of ``v_cost_hourly`` and the
store's own tables. Every query the CLI runs is built here; ``kubeopera.reports`` runs
them. Times are UTC.
"""

from datetime import UTC, datetime

BASE_COLUMNS = ["cluster", "node", "namespace", "is_idle"]


def literal(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
"""The range of ClickHouse's ``DateTime64``: a literal outside it does not parse."""


def time_literal(instant: datetime) -> str:
    """``instant`` (naive: local time) as a ClickHouse DateTime64(3, UTC) literal; one
    outside ``DateTime64``'s range as the nearest end of it, which every stored time
    compares with as it would with the instant itself.

    >>> time_literal(datetime(2026, 3, 6, 23, 0, 0, 123456, tzinfo=UTC))
    "toDateTime64('2026-03-06 23:00:00.123', 3, 'UTC')"
    >>> time_literal(datetime(97, 9, 11, tzinfo=UTC))
    "toDateTime64('1900-01-01 00:00:00.000', 3, 'UTC')"
    """
    aware = instant if instant.tzinfo is not None else instant.astimezone()
    within = min(max(aware, EARLIEST), LATEST)
    text = within.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    return f"toDateTime64('{text}', 3, 'UTC')"


def _column(key: str) -> str:
    """A report key as a SQL expression named after the key."""
    kind, _, name = key.partition(":")
    if kind in ("label", "annotation") and name:
        return f"{kind}s[{literal(name)}] AS `{key.replace('`', '')}`"
    return key


def _between(since: datetime, until: datetime | None) -> str:
    where = f"window_start >= {time_literal(since)}"
    if until is not None:
        where += f" AND window_start < {time_literal(until)}"
    return where


def node_hours_sql(since: datetime, until: datetime | None = None) -> str:
    """Per price source: the nodes priced by it and their overcommitted node-hours.

    Columns ``price_source``, ``nodes`` (distinct cluster/node pairs) and
    ``overcommitted_node_hours`` (idle rows whose CPU or RAM allocations exceeded
    capacity), one row per source, over the windows starting in [since, until)."""
    return (
        "SELECT price_source, uniqExact(cluster, node) AS nodes, "
        "countIf(cpu_overcommit_core_hours > 0 OR ram_overcommit_gib_hours > 0) "
        "AS overcommitted_node_hours "
        f"FROM v_cost_hourly WHERE is_idle AND {_between(since, until)} "
        "GROUP BY price_source ORDER BY price_source"
    )


def foreign_prices_sql(since: datetime, until: datetime | None = None) -> str:
    """Nodes costed in the windows starting in [since, until) whose price came from
    another region's prices (the catalogue's): columns ``region`` (the node's),
    ``price_region`` and ``nodes``, one row per pair."""
    return (
        "SELECT region, price_region, uniqExact(cluster, node) AS nodes FROM node_prices FINAL "
        "WHERE price_region != '' AND region != '' AND region != price_region "
        "AND (cluster, node) IN (SELECT cluster, node FROM v_cost_hourly "
        f"WHERE is_idle AND {_between(since, until)}) "
        "GROUP BY region, price_region ORDER BY region, price_region"
    )


def cost_rows_sql(
    keys: list[str], measures: list[str], since: datetime, until: datetime | None = None
) -> str:
    """``measures`` of ``v_cost_hourly`` summed over the windows starting in
    [since, until) (no end: up to now), one row per ``cluster``, ``node``, ``namespace``,
    ``is_idle`` and key column (``label:<k>``/``annotation:<k>`` extracted under that
    name), ready for ``reports.aggregate`` (which names the keys and measures it needs)."""
    extra = [k for k in keys if k not in BASE_COLUMNS]
    group = [*BASE_COLUMNS, *[f"`{k}`" if ":" in k else k for k in extra]]
    where = _between(since, until)
    columns = ", ".join(
        [*BASE_COLUMNS, *[_column(k) for k in extra], *[f"sum({m}) AS {m}" for m in measures]]
    )
    return f"SELECT {columns} FROM v_cost_hourly WHERE {where} GROUP BY {', '.join(group)}"


COST_SPAN_SQL = (
    "SELECT if(count() = 0, NULL, min(window_start)) AS first, "
    "if(count() = 0, NULL, max(window_start)) AS last FROM cost_allocation_hourly"
)
"""One row: the first and the last hour the store holds costs of (NULL when none)."""

SCHEMA_SQL = "SELECT max(version), count() FROM schema_migrations"
"""One row: the latest migration applied and how many are."""

SAMPLE_COUNTS_SQL = (
    "SELECT uniqExact(cluster) AS clusters, uniqExact(pod_uid) AS pods, count() AS samples, "
    "(SELECT toUInt64(round(avgOrDefault(n))) FROM (SELECT uniqExact(pod_uid) AS n "
    "FROM raw_metrics GROUP BY window_start)) AS pods_at_a_time FROM raw_metrics"
)
"""One row: the clusters, pods (all that ran) and container samples in ``raw_metrics``,
and the pods of a scrape window on average (``pods_at_a_time``)."""

EXAMPLE_SQL = (
    "SELECT team, round(sum(total_cost), 2) AS usd FROM v_cost_by_team_daily "
    "GROUP BY team ORDER BY usd DESC"
)
"""Analyst SQL the demo suggests: cost in USD per team over the whole store."""


def changes_sql(since: datetime, filters: dict[str, str]) -> str:
    """The change timeline (``v_changes``) since ``since``, newest first; ``filters``
    are column -> value (``cluster``, ``namespace``, ``kind``, ``category``; ``name``
    matches the object or its top controller)."""
    where = [f"at >= {time_literal(since)}"]
    for column, value in sorted(filters.items()):
        if column == "name":
            where.append(f"(name = {literal(value)} OR top_name = {literal(value)})")
        else:
            where.append(f"{column} = {literal(value)}")
    columns = (
        "at, cluster, namespace, kind, name, top_kind, top_name, change, path, field_change, "
        "old, new, category, manager, operation"
    )
    return (
        f"SELECT {columns} FROM v_changes WHERE {' AND '.join(where)} "
        "ORDER BY at DESC, cluster, namespace, kind, name, path"
    )


def _where(filters: dict[str, str], columns: dict[str, str] | None = None) -> list[str]:
    """``column = 'value'`` for each filter, its column renamed by ``columns``."""
    return [
        f"{(columns or {}).get(column, column)} = {literal(value)}"
        for column, value in sorted(filters.items())
    ]


def open_drift_sql(filters: dict[str, str]) -> str:
    """Open drift (``v_drift_open``), one row per drifted field, matching ``filters``
    (``cluster``, ``namespace``, ``kind``, ``name``, ``baseline``), oldest drift first."""
    where = " AND ".join(["1", *_where(filters)])
    return (
        "SELECT first_seen, cluster, namespace, kind, name, baseline, path, change, expected, "
        f"live, origin FROM v_drift_open WHERE {where} "
        "ORDER BY first_seen, cluster, namespace, kind, name, baseline, path"
    )


def live_objects_sql(filters: dict[str, str]) -> str:
    """The last version of each object that is not deleted (``raw_objects``), matching
    ``filters`` (``cluster``, ``namespace``, ``kind``, ``name``): the columns of
    ``raw_objects`` but labels and annotations (which the object holds)."""
    where = " AND ".join(["1", *_where(filters)])
    columns = (
        "uid", "api_version", "resource_version", "generation", "change", "object", "owner_chain",
        "last_manager",
    )  # fmt: skip
    latest = ", ".join(f"argMax({c}, t) AS {c}" for c in columns)
    return (
        f"SELECT cluster, kind, namespace, name, max(t) AS observed_at, {latest} "
        f"FROM (SELECT *, observed_at AS t FROM raw_objects FINAL WHERE {where}) "
        "GROUP BY cluster, kind, namespace, name "
        "HAVING change != 'DELETED' ORDER BY cluster, kind, namespace, name"
    )


RECORDED_BASELINES_SQL = (
    "SELECT cluster, namespace, kind, name, baseline, recorded_at, api_version, origin, object "
    "FROM baselines FINAL ORDER BY recorded_at, cluster, namespace, kind, name, baseline"
)
"""Every drift baseline recorded (each version), oldest first."""


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")


def notable_changes_sql(since: datetime, until: datetime, limit: int) -> str:
    """The workload versions in [since, until) that were rollouts (an image changed) or
    edits by hand (a ``kubectl`` field manager), newest first, at most ``limit``: one row
    per version with ``at``, ``cluster``, ``namespace``, ``kind``, ``name``, ``manager``
    and ``detail``, its first changed field as ``field old -> new`` (an image without its
    registry path) and how many more fields changed with it."""
    kinds = ", ".join(literal(k) for k in WORKLOAD_KINDS)
    short = "replaceRegexpOne(ifNull({}, '-'), '^\"[^\"]*/', '\"')"
    first = (
        f"concat(replaceRegexpOne(path, '.*/', ''), ' ', {short.format('old')}, ' -> ', "
        f"{short.format('new')})"
    )
    return (
        "SELECT at, cluster, namespace, kind, name, manager, "
        f"concat(argMin({first}, path), if(count() > 1, concat(' (+', toString(count() - 1), "
        "' more)'), '')) AS detail "
        f"FROM v_changes WHERE change = 'MODIFIED' AND kind IN ({kinds}) "
        f"AND at >= {time_literal(since)} AND at < {time_literal(until)} "
        "GROUP BY at, cluster, namespace, kind, name, manager "
        "HAVING has(groupArray(category), 'image') OR startsWith(manager, 'kubectl') "
        f"ORDER BY at DESC, cluster, namespace, kind, name LIMIT {int(limit)}"
    )


FINDING_COLUMNS = (
    "fingerprint, finding_kind, severity, status, cluster, namespace, kind, name, "
    "first_seen, last_seen, summary, evidence, remediation"
)
"""What a ``Finding`` is read from (``v_findings``, ``findings``)."""

OPEN_FINDINGS_SQL = (
    f"SELECT {FINDING_COLUMNS} FROM v_findings WHERE status = 'open' ORDER BY fingerprint"
)
"""Every finding open now, in its latest state."""


CLUSTERS_SQL = "SELECT DISTINCT cluster FROM raw_objects ORDER BY cluster"
"""The clusters the store holds objects of."""
