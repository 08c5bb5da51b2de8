"""What a dashboard is made of, independent of Grafana: boards, their variables and
panels, each panel one query in the ClickHouse data source's SQL.

The Grafana JSON (``kubeopera.dashboards.grafana``) and the HTML report
(``kubeopera.reports.html``) are both built from these, so a panel's SQL is written
once and means the same in both.
"""

import re
from dataclasses import dataclass
from typing import Literal

PanelKind = Literal["stat", "timeseries", "table", "piechart", "barchart"]
"""How a panel shows its query: one number (``stat``), lines over time
(``timeseries``: a time column, label columns, numeric columns), rows (``table``), or
shares of a whole (``piechart``, ``barchart``: a label column then a numeric one)."""


COLUMN_UNITS = ((r".*_(efficiency|share)$", "percentunit"), (r".*_hours$", "short"))
"""Columns whose unit is not their panel's, by name (Grafana ``byRegexp`` overrides):
efficiencies and shares are ratios, core-hours and GiB-hours plain numbers."""


def column_unit(column: str, panel_unit: str) -> str:
    """The unit of ``column`` in a panel of ``panel_unit`` (``COLUMN_UNITS``).

    >>> column_unit("cpu_efficiency", "currencyUSD"), column_unit("total_cost", "currencyUSD")
    ('percentunit', 'currencyUSD')
    """
    return next((u for pattern, u in COLUMN_UNITS if re.fullmatch(pattern, column)), panel_unit)


@dataclass(frozen=True)
class Variable:
    """A dashboard variable queried from ClickHouse (Grafana's ``query`` variable).

    ``sql`` returns the values in its first column; it may use the macros and the
    variables before it. ``multi`` variables offer All (every value) and are used in
    panels as ``IN (${name:singlequote})``; a single-value variable as
    ``= ${name:singlequote}``.
    """

    name: str
    label: str
    sql: str
    multi: bool = True


@dataclass(frozen=True)
class Panel:
    """One panel: a title, what it shows, and the SQL behind it.

    ``unit`` is a Grafana unit id (``currencyUSD``, ``bytes``, ``short``,
    ``percentunit``, ``s``); ``width`` and ``height`` are grid units (24 across).
    """

    title: str
    kind: PanelKind
    sql: str
    description: str
    unit: str = "short"
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Board:
    """A dashboard: its stable ``uid`` (Grafana's, 8-40 characters), title, who reads
    it, variables (in order: a later one may use an earlier one) and panels (laid out
    left to right, top to bottom)."""

    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]
    default_range: str = "now-7d"
