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
from kubeopera.reports.anomalies import anomalies
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
    overrides = by_title["Top workloads"]["fieldConfig"]["overrides"]
    assert {"matcher": {"id": "byRegexp", "options": ".*_(efficiency|share)$"},
            "properties": [{"id": "unit", "value": "percentunit"}]} in overrides  # fmt: skip
    assert by_title["Top workloads"]["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    series = by_title["Cost by team"]["targets"][0]
    assert (series["editorType"], series["queryType"], series["format"]) == ("sql", "timeseries", 0)
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


def test_variables_take_grafanas_formats_and_the_plugins_own() -> None:
    sql = "c IN (${c:singlequote}) AND n = ${n:singlequote} AND r = ${r:csv} AND p IN ($p)"
    values = {"c": ["a", "it's"], "n": "x", "r": ["1", "2"], "p": ["u", "v"]}
    expected = "c IN ('a','it\\'s') AND n = 'x' AND r = 1,2 AND p IN ('u','v')"
    assert expand(sql, DAY, values, 60) == expected
    assert expand("n = $n", DAY, {"n": "x"}, 60) == "n = x"  # one value: as it is
    assert expand("c IN (${c:singlequote})", DAY, {"c": []}, 60) == "c IN ('')"


def test_macro_arguments_may_nest_parentheses_and_spaces() -> None:
    expected = (
        "toDateTime(at, 'UTC') >= toDateTime(1767571200)"
        " AND toDateTime(at, 'UTC') <= toDateTime(1767657600)"
    )
    assert expand("$__timeFilter( toDateTime(at, 'UTC') )", DAY, {}, 60) == expected
    assert expand("$__fromTime()", DAY, {}, 60) == "toDateTime(1767571200)"


def test_a_macro_the_dashboards_do_not_use_or_a_wrong_call_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\$__timeGroup is not a macro the dashboards may"):
        expand("$__timeGroup(t, '1h')", DAY, {}, 60)
    with pytest.raises(ValueError, match="takes 1 argument"):
        expand("$__timeFilter(a, b)", DAY, {}, 60)
    with pytest.raises(ValueError, match="unclosed"):
        expand("$__timeFilter(toDateTime(a)", DAY, {}, 60)
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
    """From the demo's first hour to now (the demo ends at today's midnight; its dead
    letters were written now), as a dashboard that shows it all."""
    first = store.query("SELECT min(window_start) AS a FROM v_cost_hourly")["a"][0]
    return TimeRange(first, datetime.now(UTC).replace(microsecond=0))


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

    def run(title: str) -> pl.DataFrame:
        return _run(demo_store, board, title, window, 3600)

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


def _run(store: Store, board: Board, title: str, span: TimeRange, interval: int) -> pl.DataFrame:
    return store.query(
        expand(_panel(board, title).sql, span, _values(store, board, span), interval)
    )


@pytest.mark.slow
def test_a_rate_over_buckets_cut_by_the_range_counts_only_their_hours_in_it(
    demo_store: Store,
) -> None:
    board = DASHBOARDS[1]
    whole = _span(demo_store)
    cut = TimeRange(whole.start + timedelta(hours=3), whole.start + timedelta(days=2, hours=1))
    cluster, namespace, workload = (v[0] for v in _values(demo_store, board, whole).values())
    kind, _, name = workload.partition("/")
    hourly = demo_store.query(
        "SELECT window_start, sum(cpu_request_core_hours) AS requested FROM v_cost_hourly"
        f" WHERE cluster = '{cluster}' AND namespace = '{namespace}'"
        f" AND controller_kind = '{kind}' AND controller_name = '{name}'"
        f" AND window_start >= '{cut.start:%Y-%m-%d %H:%M:%S}'"
        f" AND window_start < '{cut.end:%Y-%m-%d %H:%M:%S}' GROUP BY window_start"
    )
    six_hours = 6 * 3600
    expected: dict[datetime, float] = {}
    for at, requested in hourly.iter_rows():
        bucket = datetime.fromtimestamp(at.timestamp() // six_hours * six_hours, UTC)
        expected[bucket] = expected.get(bucket, 0.0) + requested
    for bucket in expected:  # hours of the bucket inside the range
        inside = min(bucket + timedelta(hours=6), cut.end) - max(bucket, cut.start)
        expected[bucket] /= inside / timedelta(hours=1)
    query = _panel(board, "CPU: requested and used").sql
    values = {"cluster": [cluster], "namespace": [namespace], "workload": [workload]}
    got = demo_store.query(expand(query, cut, values, six_hours))
    assert dict(zip(got["time"].to_list(), got["requested"].to_list(), strict=True)) == (
        pytest.approx(expected, rel=1e-9)
    )
    assert cut.start.hour % 6 != 0  # the first bucket is cut indeed


@pytest.mark.slow
def test_the_anomaly_table_holds_the_episodes_open_at_some_time_in_range(
    demo_store: Store,
) -> None:
    board = DASHBOARDS[2]
    episodes = demo_store.query(
        "SELECT first_seen, JSONExtractString(evidence, 'series_kind') AS series_kind, kind,"
        " name, status, last_seen FROM v_findings"
        " WHERE finding_kind = 'anomaly'"
    ).to_dicts()
    assert episodes
    whole = _span(demo_store)
    for start in (whole.start, whole.start + timedelta(days=4), whole.end - timedelta(hours=6)):
        window = TimeRange(start, start + timedelta(hours=6))
        open_at_some_time = {  # an episode is [first_seen, resolved] or [first_seen, now)
            (e["first_seen"], e["series_kind"], e["kind"], e["name"])
            for e in episodes
            if e["first_seen"] <= window.end
            and (e["status"] == "open" or e["last_seen"] >= window.start)
        }
        table = _run(demo_store, board, "Anomalies", window, 3600)
        shown = set(table.select("first_seen", "series_kind", "kind", "name").iter_rows())
        assert shown == open_at_some_time and table.height == len(shown)
    # what opened each episode, as `kubeopera anomalies` reports it, not its last state
    table = _run(demo_store, board, "Anomalies", whole, 3600)
    listed = anomalies(demo_store, whole.start)
    opening = {
        (r["began"], r["series_kind"], r["kind"], r["name"]): r["observed"]
        for r in listed.to_dicts()
    }
    assert table.height == len(opening) > 0
    for row in table.to_dicts():
        key = (row["first_seen"], row["series_kind"], row["kind"], row["name"])
        assert row["observed"] == opening[key]


@pytest.mark.slow
def test_changes_without_a_namespace_count_and_the_rate_adds_back_to_the_changes(
    demo_store: Store,
) -> None:
    board = DASHBOARDS[2]
    span = _span(demo_store)
    everything = demo_store.query(
        "SELECT count() AS n, countIf(namespace = '') AS cluster_scoped FROM v_changes"
        f" WHERE at >= '{span.start:%Y-%m-%d %H:%M:%S}' AND at <= '{span.end:%Y-%m-%d %H:%M:%S}'"
    ).row(0, named=True)
    assert everything["cluster_scoped"] > 0  # Nodes, Namespaces: no namespace
    interval = interval_for(span)
    rates = _run(demo_store, board, "Changes per hour by category", span, interval)
    hours_in = {
        t: (min(t + timedelta(seconds=interval), span.end) - max(t, span.start))
        / timedelta(hours=1)
        for t in rates["time"].unique().to_list()
    }
    counted = sum(r * hours_in[t] for t, r in rates.select("time", "changes").iter_rows())
    assert counted == pytest.approx(everything["n"], rel=1e-9)


@pytest.mark.slow
def test_dead_letters_group_by_reason_without_line_numbers(demo_store: Store) -> None:
    span = _span(demo_store)
    table = _run(demo_store, DASHBOARDS[3], "Dead letters by reason", span, 3600)
    assert table["messages"].sum() == 2
    assert not any(reason.startswith("line ") for reason in table["reason"].to_list())


@pytest.mark.slow
def test_efficiency_without_requests_is_empty_not_infinite(demo_store: Store) -> None:
    board = DASHBOARDS[0]
    span = _span(demo_store)
    top = _run(demo_store, board, "Top workloads", span, 3600)
    for column in ("cpu_efficiency", "ram_efficiency"):
        finite = top[column].drop_nulls()
        assert finite.is_finite().all() and not finite.is_nan().any(), column
    by_namespace = cost_report(demo_store, "cluster,namespace", span.start, span.end)
    table = _run(demo_store, board, "Cost by namespace (table)", span, 3600)
    got = {(r["cluster"], r["namespace"]): r["cpu_efficiency"] for r in table.to_dicts()}
    for row in by_namespace.to_dicts():  # None where the report has none (idle: no requests)
        want, have = row["cpu_efficiency"], got[(row["cluster"], row["namespace"])]
        assert (want is None and have is None) or have == pytest.approx(want, rel=1e-9)
