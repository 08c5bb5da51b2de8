"""The HTML report (``kubeopera report``) as a person meets it: opened by headless Chromium
(Playwright driving Debian's chromium) with the network cut off. No console errors; every
chart has drawn the traces the SQL it shows returns; the totals shown equal SQL over the
store; a header click sorts its table; each panel's SQL is one click away; a window
without data says so and draws no axes; the command and the demo write it."""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from cli_tools import run_kubeopera, stored
from playwright.sync_api import Browser, Locator, Page, Route, sync_playwright

from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.dashboards import DASHBOARDS, TimeRange
from kubeopera.reports.html import NO_DATA, ReportSummary, write_report
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine

pytestmark = pytest.mark.slow  # a simulated fleet through the embedded pipeline, a browser

CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright cannot download its own here
START = datetime(2026, 3, 2, tzinfo=UTC)
SPEC = FleetSpec(
    clusters=2,
    pods_per_cluster=40,
    start=START,
    duration=timedelta(hours=6),
    resolution=timedelta(minutes=5),
    seed=7,
)
WINDOW = TimeRange(START, START + SPEC.duration)
EMPTY = TimeRange(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 8, tzinfo=UTC))
HOURS = "window_start >= toDateTime({0}) AND window_start < toDateTime({1})"
CHARTS = ("timeseries", "piechart", "barchart")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated fleet through the embedded pipeline (every default processor): the
    store's folder, closed (chDB opens one store per process at a time)."""
    folder = tmp_path_factory.mktemp("report") / "clickhouse"
    with Store(ChdbBackend(folder), raw_retention_days=0) as store:
        EmbeddedEngine(store).run(simulate(SPEC))
    return folder


def report_of(fleet: Path, window: TimeRange, path: Path) -> ReportSummary:
    with Store(ChdbBackend(fleet), raw_retention_days=0) as store:
        return write_report(store, window, path)


def hours(window: TimeRange) -> str:
    """The hourly windows that start in ``window``, as SQL over ``v_cost_hourly``."""
    return HOURS.format(int(window.start.timestamp()), int(window.end.timestamp()))


@dataclass
class Opened:
    """A report loaded in a page; what its console said and what it tried to fetch."""

    page: Page
    problems: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


def open_report(browser: Browser, path: Path) -> Opened:
    """``path`` in a new page, every request but the file itself refused (offline); waits
    until every chart has its SVG."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    opened = Opened(page)
    page.on(
        "console",
        lambda m: (
            opened.problems.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))

    def route(request: Route) -> None:
        if request.request.url == path.as_uri():
            request.continue_()
        else:
            opened.fetched.append(request.request.url)
            request.abort()

    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('div.chart')].every(c => c.querySelector('svg'))"
    )
    return opened


@pytest.fixture(scope="module")
def written(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportSummary]:
    path = tmp_path_factory.mktemp("html") / "report.html"
    return path, report_of(fleet, WINDOW, path)


@pytest.fixture(scope="module")
def shown(browser: Browser, written: tuple[Path, ReportSummary]) -> Iterator[Opened]:
    opened = open_report(browser, written[0])
    yield opened
    opened.page.close()


def expected_traces(kind: str, rows: pl.DataFrame) -> int:
    """What a chart of ``kind`` must draw of its SQL's ``rows``: a line per value of the
    string columns and numeric column that has a value; a slice per positive value; a
    bar per row."""
    numeric = [c for c in rows.columns[1:] if rows.schema[c].is_numeric()]
    if kind == "piechart":
        return sum(1 for v in rows[numeric[0]].to_list() if v is not None and v > 0)
    if kind == "barchart":
        return rows.height
    labels = [c for c in rows.columns[1:] if rows.schema[c] == pl.String]
    groups = rows.group_by(labels) if labels else [((), rows)]
    return sum(
        1
        for _, group in groups
        for column in numeric
        if any(v is not None and not math.isnan(v) for v in group[column].to_list())
    )


DRAWN_JS = """article => {
  const chart = article.querySelector('div.chart');
  if (!chart) return null;
  const lines = [...chart.querySelectorAll('.scatterlayer .trace')];
  return {
    lines: lines.length,
    drawn: lines.filter(t =>
      [...t.querySelectorAll('path.js-line')].some(p => (p.getAttribute('d') || '') !== '')
      || t.querySelectorAll('path.point').length > 0).length,
    slices: chart.querySelectorAll('.pielayer .slice path.surface').length,
    bars: chart.querySelectorAll('.barlayer .point').length,
  };
}"""


def test_every_chart_draws_what_its_sql_returns(fleet: Path, shown: Opened, tmp_path: Path) -> None:
    """Each chart panel's SQL (as shown under it) is run here; the chart has drawn one
    trace per series that SQL returns, and a panel whose SQL returns nothing to draw
    says so instead. The page asked for nothing but itself and logged no error."""
    articles = shown.page.locator("article.panel")
    assert articles.count() == sum(len(b.panels) for b in DASHBOARDS)
    charts = 0
    for index in range(articles.count()):
        article = articles.nth(index)
        kind = article.get_attribute("data-kind")
        if kind not in CHARTS:
            continue
        title = article.get_attribute("data-title")
        sql = article.locator("details.sql code").text_content() or ""
        expected = expected_traces(kind, stored(fleet, sql))
        drawn = article.evaluate(DRAWN_JS)
        if expected == 0:
            assert drawn is None, title
            assert article.locator("p.no-data").text_content() == NO_DATA
            continue
        charts += 1
        assert drawn is not None, f"{title}: no chart for {expected} series"
        if kind == "timeseries":
            assert drawn["lines"] == drawn["drawn"] == expected, (title, drawn, expected)
        else:
            assert drawn["slices" if kind == "piechart" else "bars"] == expected, title
    assert charts >= 8  # the fleet has cost, usage, changes and scrapes to draw
    screenshot = tmp_path / "report.png"
    shown.page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot of the report: {screenshot}")
    assert screenshot.stat().st_size > 0
    assert shown.problems == []
    assert shown.fetched == []


def stat(shown: Opened, board: str, title: str) -> tuple[float, str]:
    """A stat panel's raw value and its text."""
    element = shown.page.locator(f"section#{board} article[data-title='{title}'] p.stat")
    return float(element.get_attribute("data-value") or "nan"), element.inner_text()


def test_the_totals_shown_equal_sql_over_the_store(fleet: Path, shown: Opened) -> None:
    total, idle = stored(
        fleet,
        "SELECT sum(total_cost), sumIf(total_cost, is_idle) FROM v_cost_hourly "
        f"WHERE {hours(WINDOW)}",
    ).row(0)
    assert total > 0 and idle != 0
    overview = DASHBOARDS[0].uid
    for title, expected in (("Total cost", total), ("Idle cost", idle)):
        value, text = stat(shown, overview, title)
        assert value == pytest.approx(expected, rel=1e-12), title
        assert text == f"{'-' if expected < 0 else ''}${abs(expected):,.2f}", title


def test_the_workload_detail_shows_the_costliest_workload(
    fleet: Path, shown: Opened, written: tuple[Path, ReportSummary]
) -> None:
    cluster, namespace, kind, name = stored(
        fleet,
        "SELECT cluster, namespace, controller_kind, controller_name FROM v_cost_hourly "
        f"WHERE NOT is_idle AND {hours(WINDOW)} GROUP BY ALL ORDER BY sum(total_cost) DESC "
        "LIMIT 1",
    ).row(0)
    note = shown.page.locator(f"section#{DASHBOARDS[1].uid} p.note").inner_text()
    assert note.startswith(f"{kind}/{name} in {cluster}/{namespace}: the costliest")
    assert str(written[1].workload) == f"{kind}/{name} in {cluster}/{namespace}"


def column(table: Locator, index: int) -> list[str]:
    """The sort keys of a table's column, top to bottom."""
    cells = table.locator(f"tbody tr td:nth-child({index + 1})")
    return [cells.nth(i).get_attribute("data-sort") or "" for i in range(cells.count())]


def test_a_click_on_a_header_sorts_the_table(shown: Opened) -> None:
    table = shown.page.locator("article[data-title='Cost by namespace (table)'] table")
    headers = [h.strip(" ↕▲▼") for h in table.locator("thead th").all_inner_texts()]
    cost, namespace = headers.index("total_cost"), headers.index("namespace")
    costs = [float(v) for v in column(table, cost)]
    assert len(costs) > 3 and costs != sorted(costs)  # largest first, as the SQL orders
    header = table.locator("thead th").nth(cost)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert [float(v) for v in column(table, cost)] == sorted(costs)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert [float(v) for v in column(table, cost)] == sorted(costs, reverse=True)
    names = column(table, namespace)
    table.locator("thead th").nth(namespace).locator("button").click()
    assert column(table, namespace) == sorted(names)
    assert header.get_attribute("aria-sort") == "none"


def test_each_panel_shows_its_sql_on_demand(shown: Opened) -> None:
    panel = shown.page.locator("article[data-title='Total cost']")
    code = panel.locator("details.sql code")
    assert not code.is_visible()
    panel.locator("details.sql summary").click()
    assert code.is_visible()
    start, end = (int(t.timestamp()) for t in (WINDOW.start, WINDOW.end))
    written = next(p.sql for p in DASHBOARDS[0].panels if p.title == "Total cost")
    assert code.inner_text().startswith(written.split(" WHERE ")[0])  # up to the macros
    assert f"window_start >= toDateTime({start}) AND window_start < toDateTime({end})" in (
        code.inner_text()
    )
    with_sql = shown.page.locator("article.panel:has(details.sql code)")
    assert with_sql.count() == shown.page.locator("article.panel").count()


class Sources(HTMLParser):
    """Every ``src`` and ``href`` of a page, and its Content-Security-Policy."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.policy = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if found.get("http-equiv") == "Content-Security-Policy":
            self.policy = found.get("content") or ""


def test_the_page_needs_nothing_from_the_network(written: tuple[Path, ReportSummary]) -> None:
    html = written[0].read_text(encoding="utf-8")
    sources = Sources()
    sources.feed(html)
    assert sources.links and all(link.startswith("#") for link in sources.links)
    assert "default-src 'none'" in sources.policy
    assert html.count("* plotly.js v") == 1  # inlined once, whatever the charts


def test_a_window_without_data_says_so_and_draws_no_axes(
    fleet: Path, browser: Browser, tmp_path: Path
) -> None:
    summary = report_of(fleet, EMPTY, tmp_path / "empty.html")
    assert summary.cost_rows == 0 and summary.workload is None
    first, last = stored(
        fleet, "SELECT min(window_start), max(window_start) FROM v_cost_hourly"
    ).row(0)
    opened = open_report(browser, tmp_path / "empty.html")
    page = opened.page
    assert page.locator("#no-cost-data").inner_text() == (
        "No cost data from 2020-01-01 00:00 to 2020-01-08 00:00 UTC: the store holds hours "
        f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC."
    )
    assert page.locator("div.chart, svg.main-svg, .xaxislayer-above").count() == 0
    for kind in CHARTS:
        panels = page.locator(f"article[data-kind='{kind}']")
        said = panels.locator("p.no-data").all_inner_texts()
        assert said == [NO_DATA] * panels.count()
    assert page.locator(f"section#{DASHBOARDS[1].uid} p.note").inner_text() == (
        "No workload had cost in this window."
    )
    assert opened.problems == [] and opened.fetched == []
    page.close()


def test_an_empty_store_says_it_holds_no_cost_yet(store: Store, tmp_path: Path) -> None:
    write_report(store, WINDOW, tmp_path / "r.html")
    assert "the store holds no cost data yet" in (tmp_path / "r.html").read_text()


def test_the_command_writes_the_report_and_says_what_it_holds(fleet: Path, tmp_path: Path) -> None:
    days = (datetime.now(UTC) - START).days + 2
    result = run_kubeopera(fleet, "report", "--window", f"{days}d", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Report: {tmp_path / 'report.html'}"
    assert lines[1].startswith("4 dashboards, ") and " written in " in lines[1]
    assert lines[2].startswith("Store: embedded ClickHouse (chDB)")
    assert "<title>KubeOpera report" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "7x"], "invalid duration '7x'"),
        (["--window", "100000w"], "reaches back before 1900-01-01"),
        (["-o", "/nonexistent/folder/report.html"], "No such file or directory"),
    ],
)
def test_bad_input_is_one_line(fleet: Path, args: list[str], message: str) -> None:
    result = run_kubeopera(fleet, "report", *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kubeopera: error:") and message in lines[0]


def test_the_demo_writes_the_report_into_the_data_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_kubeopera(
        None,
        *("demo", "--clusters", "1", "--pods-per-cluster", "20", "--duration", "2h"),
        extra_env={"KUBEOPERA_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert f"Report: {home / 'report.html'} " in result.stdout
    assert "Total cost" in (home / "report.html").read_text()
