"""The boards as Grafana dashboard JSON, built with grafana-foundation-sdk (the build
for Grafana 11.6) over the ClickHouse data source.

Every panel and variable reads the data source ``DATASOURCE_UID``, which
``deploy/grafana/provisioning`` and ``kubeopera dashboards push`` create. The JSON of
each board is committed as ``dashboards/json/<uid>.json`` (``write_all``); a test fails
when it is stale.
"""

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import barchart, dashboard, piechart, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DynamicConfigValue,
    VariableRefresh,
    VariableSort,
)

from kubeopera.dashboards.catalogue import DASHBOARDS
from kubeopera.dashboards.clickhouse_query import DATASOURCE_TYPE, ClickHouseQueryBuilder
from kubeopera.dashboards.panels import COLUMN_UNITS, Board, Panel, Variable

DATASOURCE_UID = "kubeopera-clickhouse"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
JSON_FOLDER = Path("dashboards/json")
"""Where the generated dashboards are committed, from the repository's root."""

GRID_WIDTH = 24
PanelBuilder = stat.Panel | timeseries.Panel | table.Panel | piechart.Panel | barchart.Panel


def dashboard_json(board: Board) -> dict[str, Any]:
    """``board`` as Grafana's dashboard model (a JSON object: uid, title, templating,
    panels with their ClickHouse targets), ready for ``POST /api/dashboards/db`` or a
    provisioning folder.

    Raises ``ValueError`` when the panels do not fill whole rows of the 24-column grid
    (the SDK would place the next panel past the edge)."""
    _check_rows(board)
    builder = (
        dashboard.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(list(board.tags))
        .timezone("utc")
        .time(board.default_range, "now")
        .refresh("5m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .editable()
    )
    for variable in board.variables:
        builder = builder.with_variable(_variable(variable))
    for number, panel in enumerate(board.panels, start=1):
        builder = builder.with_panel(_panel(panel).id(number))
    encoded: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return encoded


def rendered(board: Board) -> str:
    """The committed text of ``board``'s JSON (sorted keys, two-space indent, newline)."""
    return json.dumps(dashboard_json(board), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    """Write every board's JSON into ``folder`` as ``<uid>.json``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for board in DASHBOARDS:
        path = folder / f"{board.uid}.json"
        path.write_text(rendered(board))
        paths.append(path)
    return paths


def _check_rows(board: Board) -> None:
    x = 0
    for panel in board.panels:
        if x + panel.width > GRID_WIDTH:
            raise ValueError(
                f"{board.uid}: panel {panel.title!r} ({panel.width} wide) starts at column"
                f" {x} and would pass the grid's edge"
            )
        x = (x + panel.width) % GRID_WIDTH


def _variable(variable: Variable) -> dashboard.QueryVariable:
    built = (
        dashboard.QueryVariable(variable.name)
        .label(variable.label)
        .datasource(DATASOURCE)
        .query(variable.sql)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(variable.multi)
        .include_all(variable.multi)
    )
    return built


def _panel(panel: Panel) -> PanelBuilder:
    query = ClickHouseQueryBuilder(panel.sql, DATASOURCE).ref_id("A")
    built: PanelBuilder
    match panel.kind:
        case "timeseries":
            built = timeseries.Panel().with_target(query.time_series()).interval("1h")
        case "stat":
            built = stat.Panel().with_target(query)
        case "table":
            built = table.Panel().with_target(query)
            for pattern, unit in COLUMN_UNITS:
                if unit != panel.unit:
                    unit_value = DynamicConfigValue(id_val="unit", value=unit)
                    built = built.override_by_regexp(pattern, [unit_value])
        case "piechart":
            every_row = ReduceDataOptions().values(True).calcs(["lastNotNull"])
            built = piechart.Panel().with_target(query).reduce_options(every_row)
        case "barchart":
            built = barchart.Panel().with_target(query)
    return (
        built.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
    )
