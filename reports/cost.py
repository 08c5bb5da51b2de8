"""Cost reports read from the store: allocation by any key, and how the nodes were priced."""

from datetime import datetime

import polars as pl

from kubeopera.reports.aggregate import INPUT_MEASURES, Sharing, aggregate, key_columns
from kubeopera.reports.sql import COST_SPAN_SQL, cost_rows_sql, foreign_prices_sql, node_hours_sql
from kubeopera.sinks.clickhouse import Store

NO_SHARING = Sharing()
REPORT_COLUMNS = [
    "total_cost",
    "cpu_cost",
    "ram_cost",
    "gpu_cost",
    "idle_cost",
    "shared_cost",
    "cpu_efficiency",
    "ram_efficiency",
]
"""The measures of a cost report, after its key columns: costs in USD, efficiencies as
usage / request (null without requests)."""


def cost_report(
    store: Store,
    by: str,
    since: datetime,
    until: datetime | None = None,
    sharing: Sharing = NO_SHARING,
) -> pl.DataFrame:
    """Cost per group of ``by`` between ``since`` and ``until`` (now), largest first.

    One row per group: the key columns of ``by`` (``key_columns``; strings, idle rows
    under ``IDLE``) then ``REPORT_COLUMNS``, costs in USD over the hourly windows
    starting in [since, until) (UTC), idle and shared namespaces spread as ``sharing``
    says (``aggregate``). No rows in the window: an empty frame of those columns.
    Raises ``ValueError`` for an unknown key, ``ClickHouseError`` when the store fails.
    """
    keys = key_columns(by)
    rows = store.query(cost_rows_sql(keys, INPUT_MEASURES, since, until))
    if rows.is_empty():
        return pl.DataFrame(
            schema={**{k: pl.String for k in keys}, **{c: pl.Float64 for c in REPORT_COLUMNS}}
        )
    return aggregate(rows, by, sharing).select(*keys, *REPORT_COLUMNS)


def pricing_notes(store: Store, since: datetime, until: datetime | None = None) -> list[str]:
    """Lines a cost report ends with: how its nodes were priced, and how many
    node-hours were overcommitted (allocations above capacity: negative idle).

    Over the windows starting in [since, until) (now). Without cost rows there, one line
    says so: the store holds none at all, or which hours it holds. Raises
    ``ClickHouseError`` when the store fails."""
    sources = store.query(node_hours_sql(since, until))
    if sources.is_empty():
        return [_no_data(store, since)]
    counts = ", ".join(f"{r['price_source']} {r['nodes']}" for r in sources.to_dicts())
    lines = [f"Nodes by price source: {counts}."]
    defaulted = sources.filter(pl.col("price_source") == "default")["nodes"].sum()
    if defaulted:
        lines.append(
            f"{defaulted} node{'s' if defaulted != 1 else ''} priced at OpenCost's default "
            "unit prices (no price sheet, market price or catalogue entry): set "
            "pricing.price_sheet_path to price them."
        )
    for row in store.query(foreign_prices_sql(since, until)).to_dicts():
        lines.append(
            f"{row['nodes']} node{'s' if row['nodes'] != 1 else ''} in {row['region']} priced "
            f"at the catalogue's {row['price_region']} on-demand rates: give {row['region']} "
            "prices in a price sheet (pricing.price_sheet_path, rows with that Region)."
        )
    overcommitted = sources["overcommitted_node_hours"].sum()
    if overcommitted:
        lines.append(
            f"{overcommitted} overcommitted node-hour{'s' if overcommitted != 1 else ''} "
            "(allocations above capacity, idle below zero): "
            "SELECT * FROM v_overcommitted_node_hours"
        )
    return lines


def _no_data(store: Store, since: datetime) -> str:
    """What to say of a report window without cost rows: whether the store holds none
    at all, or which span it holds."""
    first, last = store.query(COST_SPAN_SQL).row(0)
    if first is None:
        return (
            "The store holds no cost data yet: kubeopera demo, kubeopera replay FILE or "
            "kubeopera worker fill it."
        )
    return (
        f"No cost data since {since:%Y-%m-%d %H:%M} UTC; the store holds hours from "
        f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC: widen --window."
    )
