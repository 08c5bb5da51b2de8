"""The dashboards as code: the committed JSON is what the code builds, it reads back
through grafana-foundation-sdk's own types, the data source's macros expand as the
plugin expands them, and every panel's SQL runs on the real engine (chDB) over a demo's
store, returning what its panel needs and the figures `kubeopera cost` gives."""

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from cli_tools import run_kubeopera
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from kubeopera.dashboards import DASHBOARDS, Board, Panel, TimeRange, expand, interval_for
from kubeopera.dashboards.clickhouse_query import ClickHouseQuery, register
from kubeopera.dashboards.grafana import dashboard_json, rendered
from kubeopera.models.keys import IDLE
from kubeopera.reports.cost import cost_report
from kubeopera.sinks.clickhouse import ChdbBackend, Store

ROOT = Path(__file__).resolve().parents[1]
JAN_5 = datetime(2026, 1, 5, tzinfo=UTC)  # 1767571200 in Unix seconds
DAY = TimeRange(JAN_5, JAN_5 + timedelta(days=1))


# --- the committed JSON and Grafana's schema -------------------------------------------


def test_the_committed_json_is_what_the_code_builds() -> None:
    committed = sorted(p.name for p in (ROOT / "dashboards" / "json").glob("*.json"))
    assert committed == sorted(f"{b.uid}.json" for b in DASHBOARDS)
    for board in DASHBOARDS:
        text = (ROOT / "dashboards" / "json" / f"{board.uid}.json").read_text()
        assert text == rendered(board), f"stale: run `kubeopera dashboards build` ({board.uid})"


@pytest.mark.slow
def test_kubeopera_dashboards_build_writes_the_committed_files(tmp_path: Path) -> None:
    done = run_kubeopera(None, "dashboards", "build", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    for board in DASHBOARDS:
        written = (tmp_path / "out" / f"{board.uid}.json").read_text()
        assert written == (ROOT / "dashboards" / "json" / f"{board.uid}.json").read_text()


@pytest.mark.parametrize("board", DASHBOARDS, ids=lambda b: b.uid)
def test_the_json_reads_back_through_the_sdk_types_unchanged(board: Board) -> None:
    register()
    data = dashboard_json(board)
    model = Dashboard.from_json(data)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == data
    targets = [t for p in model.panels or [] for t in getattr(p, "targets", None) or []]
    assert len(targets) == len(board.panels)
    assert all(isinstance(t, ClickHouseQuery) for t in targets)
    ids = [p["id"] for p in data["panels"]]
    assert ids == list(range(1, len(board.panels) + 1))
    for panel in data["panels"]:  # laid out inside the 24-column grid
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == {
            "type": "grafana-clickhouse-datasource",
            "uid": "kubeopera-clickhouse",
        }


def test_a_time_series_panel_asks_the_plugin_for_time_series_and_a_table_for_a_table() -> None:
    by_title = {p["title"]: p for p in dashboard_json(DASHBOARDS[0])["panels"]}
    series = by_title["Cost by team"]["targets"][0]
    assert (series["editorType"], series["queryType"], series["format"]) == ("sql", "timeSeries", 0)
    rows = by_title["Top workloads"]["targets"][0]
    assert (rows["queryType"], rows["format"]) == ("table", 1)
    variables = dashboard_json(DASHBOARDS[0])["templating"]["list"]
    assert [(v["name"], v["multi"], v["includeAll"]) for v in variables] == [
        ("cluster", True, True),
        ("namespace", True, True),
        ("team", True, True),
    ]


def test_panels_that_would_pass_the_grid_edge_are_refused() -> None:
    wide = Panel("wide", "table", "SELECT 1", "", width=24)
    board = Board("x-board", "x", "", (), (), (Panel("half", "table", "SELECT 1", ""), wide))
    with pytest.raises(ValueError, match="would pass the grid's edge"):
        dashboard_json(board)


# --- the ClickHouse data source's macros ------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__timeFilter(t)", "t >= toDateTime(1767571200) AND t <= toDateTime(1767657600)"),
        (
            "$__timeFilter_ms(t)",
            "t >= fromUnixTimestamp64Milli(1767571200000)"
            " AND t <= fromUnixTimestamp64Milli(1767657600000)",
        ),
        ("$__dateFilter(d)", "d >= toDate('2026-01-05') AND d <= toDate('2026-01-06')"),
        (
            "$__dt(d, t)",
            "(d >= toDate('2026-01-05') AND d <= toDate('2026-01-06'))"
            " AND (t >= toDateTime(1767571200) AND t <= toDateTime(1767657600))",
        ),
        ("$__fromTime < $__toTime", "toDateTime(1767571200) < toDateTime(1767657600)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1767571200000)"),
        ("$__timeInterval(t)", "toStartOfInterval(toDateTime(t), INTERVAL 7200 second)"),
        (
            "$__timeInterval_ms(t)",
            "toStartOfInterval(toDateTime64(t, 3), INTERVAL 7200000 millisecond)",
        ),
        ("x / ($__interval_s / 3600)", "x / (7200 / 3600)"),
    ],
)
def test_macros_expand_as_the_plugin_expands_them(sql: str, expected: str) -> None:
    assert expand(sql, DAY, {}, 7200) == expected


def test_variables_are_quoted_and_all_is_every_value() -> None:
    sql = "c IN (${c:singlequote}) AND n = ${n:singlequote} AND r = $r AND s = ${s}"
    values = {"c": ["a", "it's"], "n": ["x"], "r": ["1", "2"], "s": ["y"]}
    assert expand(sql, DAY, values, 60) == "c IN ('a','it\\'s') AND n = 'x' AND r = 1,2 AND s = y"
    assert expand("c IN (${c:singlequote})", DAY, {"c": []}, 60) == "c IN ('')"


def test_a_macro_the_plugin_lacks_or_a_wrong_argument_count_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\$__timeGroup is not a macro"):
        expand("$__timeGroup(t, '1h')", DAY, {}, 60)
    with pytest.raises(ValueError, match="takes 1 argument"):
        expand("$__timeFilter(a, b)", DAY, {}, 60)
    with pytest.raises(KeyError):
        expand("${nowhere:singlequote}", DAY, {}, 60)


def test_the_interval_is_the_range_over_the_points_rounded_up_to_an_hour_or_more() -> None:
    assert interval_for(DAY) == 3600  # 86.4 s a point: an hour, the data's finest
    assert interval_for(TimeRange(JAN_5, JAN_5 + timedelta(days=500))) == 43200  # exactly 12 h
    assert interval_for(TimeRange(JAN_5, JAN_5 + timedelta(days=600))) == 86400  # 51,840 s
    assert interval_for(TimeRange(JAN_5, JAN_5 + timedelta(days=5000))) == 7 * 86400


# --- every panel's SQL on a demo's store ------------------------------------------------

NUMERIC = ("Float", "UInt", "Int", "Decimal")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-cluster, ten-day demo (long enough for anomalies), and two malformed
    messages replayed through the pipeline so that there are dead letters."""
    home = tmp_path_factory.mktemp("demo")
    env = {"KUBEOPERA_HOME": str(home)}
    demo = ["demo", "--clusters", "1", "--duration", "10d", "--resolution", "15m"]
    assert run_kubeopera(None, *demo, extra_env=env).returncode == 0
    bad = home / "bad.jsonl"
    bad.write_text(
        '{"topic": "kubeopera.metrics.v1", "value": {"cluster": "c1"}}\n'
        '{"topic": "kubeopera.objects.v1", "value": {"kind": "Pod"}}\n'
    )
    assert run_kubeopera(None, "replay", str(bad), extra_env=env).returncode == 0
    return home


@pytest.fixture
def demo_store(demo_home: Path) -> Iterator[Store]:
    with Store(ChdbBackend(demo_home / "clickhouse"), 0) as store:
        yield store


def _span(store: Store) -> TimeRange:
    row = store.query("SELECT min(window_start) AS a, max(window_start) AS b FROM v_cost_hourly")
    return TimeRange(row["a"][0], row["b"][0] + timedelta(hours=1))


def _values(store: Store, board: Board, span: TimeRange) -> dict[str, list[str]]:
    """The variables as a dashboard opened with All (multi) or a choice: the workload
    detail shows a workload that had an anomaly and changes."""
    if board.uid == "kubeopera-workload-detail":
        picked = store.query(
            "SELECT f.cluster, f.namespace, f.kind, f.name FROM v_findings AS f"
            " INNER JOIN v_changes AS c ON c.cluster = f.cluster AND c.namespace = f.namespace"
            " AND c.top_kind = f.kind AND c.top_name = f.name WHERE f.finding_kind = 'anomaly'"
            " GROUP BY ALL ORDER BY count() DESC LIMIT 1"
        ).row(0)
        return {
            "cluster": [picked[0]],
            "namespace": [picked[1]],
            "workload": [f"{picked[2]}/{picked[3]}"],
        }
    values: dict[str, list[str]] = {}
    for variable in board.variables:
        values[variable.name] = (
            store.query(expand(variable.sql, span, values, 3600)).to_series(0).to_list()
        )
        assert values[variable.name], f"{board.uid}: variable {variable.name} has no values"
    return values


def _types(store: Store, sql: str) -> list[tuple[str, str]]:
    described = store.query(f"DESCRIBE TABLE ({sql})")
    return list(zip(described["name"].to_list(), described["type"].to_list(), strict=True))


def _base(clickhouse_type: str) -> str:
    for wrapper in ("LowCardinality(", "Nullable("):
        if clickhouse_type.startswith(wrapper):
            clickhouse_type = clickhouse_type.removeprefix(wrapper).removesuffix(")")
    return clickhouse_type


def _check_shape(panel: Panel, types: list[tuple[str, str]], frame: pl.DataFrame) -> None:
    kinds = [_base(t) for _, t in types]
    numeric = [k.startswith(NUMERIC) for k in kinds]
    if panel.kind == "timeseries":  # the plugin's long frame: time, labels, values
        assert kinds[0].startswith("DateTime"), (panel.title, kinds)
        assert all(
            k.startswith(("String", "DateTime")) or n for k, n in zip(kinds, numeric, strict=True)
        )
        assert any(numeric), (panel.title, kinds)
        times = frame.to_series(0)
        assert times.is_sorted(), f"{panel.title}: the plugin needs rows in time order"
    elif panel.kind == "stat":
        assert frame.height == 1 and all(numeric), (panel.title, kinds)
    elif panel.kind in ("piechart", "barchart"):
        assert kinds[0] == "String" and all(numeric[1:]) and len(kinds) >= 2, (panel.title, kinds)


@pytest.mark.slow
@pytest.mark.parametrize("board", DASHBOARDS, ids=lambda b: b.uid)
def test_every_panel_runs_and_returns_what_its_panel_needs(demo_store: Store, board: Board) -> None:
    span = _span(demo_store)
    values = _values(demo_store, board, span)
    for panel in board.panels:
        sql = expand(panel.sql, span, values, interval_for(span))
        frame = demo_store.query(sql)
        assert frame.height > 0, f"{board.uid}: {panel.title!r} is empty on the demo's data"
        _check_shape(panel, _types(demo_store, sql), frame)


def _panel(board: Board, title: str) -> Panel:
    return next(p for p in board.panels if p.title == title)


@pytest.mark.slow
def test_the_cost_overview_gives_the_figures_of_kubeopera_cost(demo_store: Store) -> None:
    board = DASHBOARDS[0]
    end = _span(demo_store).end
    window = TimeRange(end - timedelta(days=7), end)  # `--window 7d` seen at the span's end
    values = _values(demo_store, board, window)

    def run(title: str) -> pl.DataFrame:
        return demo_store.query(expand(_panel(board, title).sql, window, values, 3600))

    by_namespace = cost_report(demo_store, "cluster,namespace", window.start, window.end)
    table = run("Cost by namespace (table)")
    assert table.height == by_namespace.height
    expected = {(r["cluster"], r["namespace"]): r for r in by_namespace.to_dicts()}
    for row in table.to_dicts():
        want = expected[(row["cluster"], row["namespace"])]
        for column in ("total_cost", "cpu_cost", "ram_cost", "gpu_cost"):
            assert math.isclose(row[column], want[column], rel_tol=1e-9, abs_tol=1e-9), column
        if row["namespace"] != IDLE:
            assert math.isclose(row["cpu_efficiency"], want["cpu_efficiency"], rel_tol=1e-9)

    total = run("Total cost")["total_cost"][0]
    assert math.isclose(total, by_namespace["total_cost"].sum(), rel_tol=1e-9)
    idle = run("Idle cost")["idle_cost"][0]
    assert math.isclose(
        idle, by_namespace.filter(pl.col("namespace") == IDLE)["total_cost"].sum(), rel_tol=1e-9
    )

    budgets = run("Budget status")
    assert budgets.height == 2 and budgets["spend"].null_count() == 0  # the demo's two

    by_team = cost_report(demo_store, "team", window.start, window.end)
    series = run("Cost by team").group_by("team").agg(pl.col("cost").sum())
    got = dict(series.iter_rows())
    assert got.keys() == set(by_team["team"].to_list())
    for team, cost in by_team.select("team", "total_cost").iter_rows():
        assert math.isclose(got[team], cost, rel_tol=1e-9), team
