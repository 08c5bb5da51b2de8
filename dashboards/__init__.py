"""Grafana dashboards as code over the ClickHouse data source, and the panel catalogue
the HTML report shares with them.

``DASHBOARDS`` holds the boards (``panels.Board``); ``macros.expand`` turns a panel's SQL
into what the data source runs; ``grafana.dashboard_json`` builds a board's Grafana JSON
with grafana-foundation-sdk (committed under ``dashboards/json/``).
"""

from kubeopera.dashboards.catalogue import DASHBOARDS
from kubeopera.dashboards.macros import TimeRange, expand, interval_for
from kubeopera.dashboards.panels import Board, Panel, PanelKind, Variable

__all__ = [
    "DASHBOARDS",
    "Board",
    "Panel",
    "PanelKind",
    "TimeRange",
    "Variable",
    "expand",
    "interval_for",
]
