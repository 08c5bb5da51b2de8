"""SQL the commands run over the analyst views."""

from datetime import UTC, datetime

MEASURES = [
    "cpu_cost",
    "ram_cost",
    "gpu_cost",
    "total_cost",
    "cpu_core_hours",
    "cpu_request_core_hours",
    "cpu_usage_core_hours",
    "ram_gib_hours",
    "ram_request_gib_hours",
    "ram_usage_gib_hours",
    "gpu_hours",
]

BASE_COLUMNS = ["cluster", "node", "namespace", "is_idle"]


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _time(instant: datetime) -> str:
    text = instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    return f"toDateTime64('{text}', 3, 'UTC')"


def _column(key: str) -> str:
    """A report key as a SQL expression named after the key."""
    kind, _, name = key.partition(":")
    if kind in ("label", "annotation") and name:
        return f"{kind}s[{_literal(name)}] AS `{key.replace('`', '')}`"
    return key


def cost_rows_sql(keys: list[str], since: datetime, until: datetime | None = None) -> str:
    """Cost rows summed over time per container and key (``v_cost_hourly``), ready for
    ``streams.aggregate``; ``keys`` come from ``streams.aggregate.key_columns``."""
    extra = [k for k in keys if k not in BASE_COLUMNS]
    group = [*BASE_COLUMNS, *[f"`{k}`" if ":" in k else k for k in extra]]
    where = f"window_start >= {_time(since)}"
    if until is not None:
        where += f" AND window_start < {_time(until)}"
    columns = ", ".join(
        [*BASE_COLUMNS, *[_column(k) for k in extra], *[f"sum({m}) AS {m}" for m in MEASURES]]
    )
    return f"SELECT {columns} FROM v_cost_hourly WHERE {where} GROUP BY {', '.join(group)}"
