"""Budgets worked out by hand: a team that costs $2 an hour against a weekly budget of
$200 (Monday 00:00 UTC to Monday): the forecast, the findings at 80 % and 100 % of the
actual and the forecast spend at the hours computed here, each once per period; the
next week resolves them and starts again. Then the command line."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from cli_tools import run_kubeopera, stored
from polars.testing import assert_frame_equal

from kubeopera.models import (
    Budget,
    BudgetPeriod,
    BudgetScope,
    SeriesKind,
    SeriesPoint,
    SeriesScope,
    Topic,
)
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope, Output
from kubeopera.streams.processors.budgets import BudgetTracking
from kubeopera.streams.reference import Reference

HOUR = timedelta(hours=1)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
BUDGET = Budget(
    scope=BudgetScope.TEAM, target="web", period=BudgetPeriod.WEEKLY, amount=200.0,
    recorded_at=MONDAY,
)  # fmt: skip


def cost(at: datetime, cluster: str, value: float) -> Envelope:
    return Envelope(
        Topic.SERIES,
        SeriesPoint(kind=SeriesKind.COST, scope=SeriesScope.TEAM, cluster=cluster, team="web",
                    window_start=at, value=value),
    )  # fmt: skip


def run(points: list[list[Envelope]]) -> Output:
    """Each list one batch, the budget known from the start."""
    pipeline = Pipeline([BudgetTracking()], Reference(Pricer()))
    pipeline.reference.apply_budgets([BUDGET])
    output = Output()
    for batch in points:
        output.extend(pipeline.run(batch)[0])
    return output


def opened(output: Output) -> dict[str, datetime]:
    """basis/threshold -> the hour the finding opened (each must open once)."""
    found = [f for f in output.findings if f.status == "open"]
    marks = [f"{f.evidence['basis']}/{f.evidence['threshold']:g}" for f in found]
    assert len(marks) == len(set(marks)), marks
    return {m: f.last_seen for m, f in zip(marks, found, strict=True)}


def test_a_steady_team_reaches_its_thresholds_at_the_hours_worked_out_by_hand() -> None:
    # $2 an hour: after k hours $2k spent. 80 % of $200 is $160: the 80th hour (k = 80),
    # which starts at hour 79; 100 %: the 100th, starting at hour 99. From the first hour
    # the forecast is $2 now plus $2 for each of the 167 hours left: $336, 168 % of the
    # budget, with no spread (no hour differed from the expected): both forecast findings
    # open at hour 0.
    output = run([[cost(MONDAY + n * HOUR, "prod", 2.0)] for n in range(120)])
    assert opened(output) == {
        "forecast/0.8": MONDAY, "forecast/1": MONDAY,
        "actual/0.8": MONDAY + 79 * HOUR, "actual/1": MONDAY + 99 * HOUR,
    }  # fmt: skip
    rows = pl.concat([block for _, block in output.rows])
    first = rows.row(0, named=True)
    assert (first["spend"], first["forecast"]) == (2.0, 336.0)
    assert (first["forecast_low"], first["forecast_high"]) == (336.0, 336.0)
    assert rows.row(79, named=True)["spend"] == 160.0
    summary = next(f for f in output.findings if f.evidence["basis"] == "actual").summary
    assert "80%" in summary and "$160.00" in summary


def test_a_team_across_clusters_adds_them_up_however_the_hours_are_batched() -> None:
    # $1.50 in prod and $0.50 in staging each hour: the same $2 an hour.
    hours = [[cost(MONDAY + n * HOUR, c, v) for c, v in (("prod", 1.5), ("staging", 0.5))]
             for n in range(120)]  # fmt: skip
    together = run([[p for hour in hours for p in hour]])
    by_hour = run(hours)
    assert opened(together) == opened(by_hour)
    assert opened(by_hour)["actual/0.8"] == MONDAY + 79 * HOUR


def test_the_next_period_resolves_the_last_ones_findings_and_starts_again() -> None:
    output = run([[cost(MONDAY + n * HOUR, "prod", 2.0)] for n in range(169)])
    resolved = [f for f in output.findings if f.status == "resolved"]
    assert sorted(f.evidence["basis"] + f"/{f.evidence['threshold']:g}" for f in resolved) == [
        "actual/0.8", "actual/1", "forecast/0.8", "forecast/1",
    ]  # fmt: skip
    assert {f.last_seen for f in resolved} == {MONDAY + 168 * HOUR}
    again = [
        f for f in output.findings if f.status == "open" and f.first_seen >= MONDAY + 168 * HOUR
    ]
    assert sorted(f.evidence["basis"] for f in again) == ["forecast", "forecast"]
    week_one = {f.fingerprint for f in output.findings if f.first_seen < MONDAY + 168 * HOUR}
    assert not week_one & {f.fingerprint for f in again}  # a new period: new findings


def test_an_hour_sent_twice_is_counted_once() -> None:
    hours = [[cost(MONDAY + n * HOUR, "prod", 2.0)] for n in range(100)]
    twice = run([h + h for h in hours])
    assert twice.duplicates == 100
    assert pl.concat([block for _, block in twice.rows])["spend"].to_list() == [
        2.0 * (n + 1) for n in range(100)
    ]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--team", "web", "--monthly", "-5"], "amount: Input should be greater than 0"),
        (["--team", "web", "--monthly", "nan"], "amount: Input should be a finite number"),
        (["--team", "web"], "give --monthly USD or --weekly USD"),
        (["--monthly", "5"], "name one of --team, --namespace CLUSTER/NAMESPACE, --cluster"),
        (["--namespace", "shop", "--weekly", "5"], "--namespace takes CLUSTER/NAMESPACE"),
        (["--team", "web", "--weekly", "5", "--thresholds", "0.8,x"], "could not convert"),
        (["--team", "web", "--weekly", "5", "--thresholds", "-1"], "thresholds: Value error"),
    ],
)
def test_a_bad_budget_is_one_line(tmp_path: Path, arguments: list[str], error: str) -> None:
    result = run_kubeopera(tmp_path, "budgets", "set", *arguments)
    assert result.returncode != 0
    assert result.stderr.startswith("kubeopera: error: ") and error in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_set_status_and_delete_from_the_command_line(tmp_path: Path) -> None:
    """On a store with a day of simulated costs: a team's status is its cost so far, the
    same as the store's hourly costs summed; a deleted budget is gone."""
    demo = run_kubeopera(
        tmp_path, "demo", "--clusters", "1", "--pods-per-cluster", "30", "--duration", "6h",
        "--resolution", "5m", "--start", "2026-03-03",
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    spent = stored(
        tmp_path, "SELECT sum(total_cost) AS c FROM cost_allocation_hourly FINAL "
        "WHERE team = 'web' AND NOT is_idle"
    )["c"].item()  # fmt: skip
    assert (
        run_kubeopera(tmp_path, "budgets", "set", "--team", "web", "--monthly", "500").returncode
        == 0
    )
    status = run_kubeopera(tmp_path, "budgets", "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    (row,) = [r for r in json.loads(status.stdout) if r["budget"] == "team/web/monthly"]
    # As of the store's latest hour of the team: March 2026, whatever month it is now.
    assert row["amount"] == 500.0
    assert row["spend"] == pytest.approx(spent, rel=1e-9)
    assert row["forecast"] >= row["spend"]
    deleted = run_kubeopera(tmp_path, "budgets", "delete", "--team", "web", "--period", "monthly")
    assert deleted.returncode == 0, deleted.stderr
    after = run_kubeopera(tmp_path, "budgets", "status", "--format", "json")
    assert "team/web/monthly" not in after.stdout


def test_the_budget_status_view_shows_each_budget_in_force_as_of_its_latest_hour(
    tmp_path: Path,
) -> None:
    from kubeopera.reports import record_budgets
    from kubeopera.sinks.clickhouse import ChdbBackend, Store
    from kubeopera.streams.embedded import EmbeddedEngine

    withdrawn = BUDGET.model_copy(update={"target": "gone", "deleted": True})
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        record_budgets(store, [BUDGET, withdrawn], MONDAY)
        engine = EmbeddedEngine(store, [BudgetTracking()])
        engine.reference.apply_budgets([BUDGET])
        engine.process(
            [
                (p.topic, p.message)
                for n in range(30)
                for p in [cost(MONDAY + n * HOUR, "prod", 2.0)]
            ]
        )
        view = store.query("SELECT * FROM v_budget_status").to_dicts()
    assert [(r["budget"], r["spend"], r["forecast"], r["as_of"]) for r in view] == [
        ("team/web/weekly", 60.0, 336.0, MONDAY + 30 * HOUR)
    ]
    assert view[0]["spent_share"] == pytest.approx(0.3)


def test_a_lagging_cluster_changes_no_earlier_hour_and_no_later_period() -> None:
    """prod reports ten hours ahead of staging, across the week's end: the spend as of
    each hour, as last written, is the in-step one (a cluster's later hours do not count
    in an earlier hour; the forecast is as far as each cluster had reported), and
    staging's last hours of the old week resolve nothing of the new week's findings nor
    open them twice."""
    hours = range(160, 180)  # Sunday 16:00 to Monday 11:00
    in_step = [[cost(MONDAY + n * HOUR, c, v) for c, v in (("prod", 1.5), ("staging", 0.5))]
               for n in hours]  # fmt: skip
    ahead = [cost(MONDAY + n * HOUR, "prod", 1.5) for n in hours]
    behind = [cost(MONDAY + n * HOUR, "staging", 0.5) for n in hours]
    lagging = [ahead[:10], *([a, b] for a, b in zip(ahead[10:], behind, strict=False)), behind[10:]]
    statuses = []
    for output in (run(in_step), run(lagging)):
        rows = pl.concat([block for _, block in output.rows])
        latest = rows.unique(["budget", "window_start"], keep="last").sort("window_start")
        statuses.append(latest.select("window_start", "period_start", "spend"))
    assert_frame_equal(statuses[1], statuses[0])
    findings = run(lagging).findings
    opened = [(f.evidence["period_start"], f.evidence["basis"], f.evidence["threshold"])
              for f in findings if f.status == "open"]  # fmt: skip
    assert len(opened) == len(set(opened))
    assert all(f.first_seen <= f.last_seen for f in findings)


def test_a_deleted_budget_resolves_its_findings() -> None:
    pipeline = Pipeline([BudgetTracking()], Reference(Pricer()))
    pipeline.reference.apply_budgets([BUDGET])
    first, _ = pipeline.run([cost(MONDAY, "prod", 2.0)])
    assert {f.status for f in first.findings} == {"open"}
    pipeline.reference.apply_budgets([BUDGET.model_copy(update={"deleted": True})])
    after, _ = pipeline.run([cost(MONDAY + HOUR, "prod", 2.0)])
    assert sorted(f.fingerprint for f in after.findings) == sorted(
        f.fingerprint for f in first.findings
    )
    assert {(f.status, f.summary.endswith("deleted")) for f in after.findings} == {
        ("resolved", True)
    }
    assert not after.rows  # no status for a budget withdrawn


def test_hours_without_cost_count_as_nothing_in_the_forecast() -> None:
    """A namespace that cost $5 an hour for its first four hours and then nothing for a
    day: the forecast learnt the day of $0 (it expects far less than $5 an hour), and
    the spend is the $20."""
    points = [cost(MONDAY + n * HOUR, "prod", 5.0) for n in range(4)]
    points.append(cost(MONDAY + 28 * HOUR, "prod", 0.01))
    rows = pl.concat([block for _, block in run([[p] for p in points]).rows])
    last = rows.row(-1, named=True)
    assert last["spend"] == pytest.approx(20.01)
    assert last["forecast"] - last["spend"] < 0.5 * 5.0 * (168 - 29)


def test_an_embedded_run_goes_on_from_what_the_store_holds(tmp_path: Path) -> None:
    """A fleet's day through the cost and budget processors, then a second embedded run
    on the same store (as a later `kubeopera replay`) with two more hours of the team's
    cost: the spend goes on from the store's, and the findings already open are not
    opened again."""
    from kubeopera.collectors.simulator import FleetSpec, simulate
    from kubeopera.reports import record_budgets
    from kubeopera.settings import Settings
    from kubeopera.sinks.clickhouse import ChdbBackend, Store

    spec = FleetSpec(clusters=1, pods_per_cluster=30, start=MONDAY, duration=timedelta(hours=8),
                     resolution=timedelta(minutes=10), seed=3)  # fmt: skip
    budget = BUDGET.model_copy(update={"target": "payments", "amount": 1.0})
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        record_budgets(store, [budget], MONDAY)
        Settings().engine(store, processors=["cost", "budgets"]).run(simulate(spec))
        spent = store.query(
            "SELECT sum(total_cost) AS c FROM cost_allocation_hourly FINAL "
            "WHERE team = 'payments' AND NOT is_idle"
        )["c"].item()
        opened = store.query("SELECT count() AS n FROM findings WHERE status = 'open'")["n"].item()
        twice = "SELECT count() AS n FROM findings WHERE status = 'open' GROUP BY fingerprint"
        later = Settings().engine(store, processors=["budgets"])
        more = [
            (Topic.SERIES, cost(MONDAY + (8 + n) * HOUR, "prod-us-east-1", 0.25).message)
            for n in range(2)
        ]
        later.process([(t, p.model_copy(update={"team": "payments"})) for t, p in more])
        status = store.query(
            "SELECT spend FROM budget_status FINAL ORDER BY window_start DESC LIMIT 1"
        )["spend"].item()
        per_finding = store.query(twice)["n"].to_list()
    assert opened >= 2  # the forecast findings of a $1 budget, at least
    assert status == pytest.approx(spent + 0.5, rel=1e-9)
    assert len(per_finding) >= opened and set(per_finding) == {1}  # none opened twice


def test_a_label_budget_adds_up_the_pods_with_the_label_across_clusters(tmp_path: Path) -> None:
    """cost.series_labels: [app]: the cost processor sends the cost of each app, and a
    budget of app=edge-proxy counts its pods in both clusters, as the store's costs
    with that label sum."""
    from kubeopera.collectors.simulator import FleetSpec, simulate
    from kubeopera.reports import budget_report, record_budgets
    from kubeopera.sinks.clickhouse import ChdbBackend, Store
    from kubeopera.streams import registry
    from kubeopera.streams.embedded import EmbeddedEngine

    spec = FleetSpec(clusters=2, pods_per_cluster=30, start=MONDAY, duration=timedelta(hours=4),
                     resolution=timedelta(minutes=10), seed=3)  # fmt: skip
    budget = Budget(scope=BudgetScope.LABEL, target="app=edge-proxy", period=BudgetPeriod.WEEKLY,
                    amount=0.01, recorded_at=MONDAY)  # fmt: skip
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        record_budgets(store, [budget], MONDAY)
        processors = registry.build(["cost", "budgets"], {"cost": {"series_labels": ["app"]}})
        engine = EmbeddedEngine(store, processors)
        engine.reference.apply_budgets([budget])
        engine.run(simulate(spec))
        spent = store.query(
            "SELECT sum(total_cost) AS c, uniqExact(cluster) AS clusters "
            "FROM cost_allocation_hourly "
            "FINAL WHERE labels['app'] = 'edge-proxy' AND NOT is_idle"
        ).row(0, named=True)
        status = store.query(
            "SELECT spend FROM budget_status FINAL ORDER BY window_start DESC LIMIT 1"
        )["spend"].item()
        findings = store.query("SELECT name, cluster FROM findings WHERE finding_kind = 'budget'")
        report = budget_report(store, MONDAY)
    assert spent["clusters"] == 2 and spent["c"] > 0
    assert status == pytest.approx(spent["c"], rel=1e-9)
    assert report["spend"].item() == pytest.approx(spent["c"], rel=1e-9)
    assert set(findings.rows()) == {("app=edge-proxy", "*")}


def test_a_label_budget_needs_its_key_in_the_settings(tmp_path: Path) -> None:
    result = run_kubeopera(tmp_path, "budgets", "set", "--label", "app=shop", "--weekly", "5")
    assert result.returncode != 0 and len(result.stderr.splitlines()) == 1
    assert "add app to cost.series_labels" in result.stderr
    configured = run_kubeopera(
        tmp_path, "budgets", "set", "--label", "app=shop", "--weekly", "5",
        extra_env={"KUBEOPERA_COST__SERIES_LABELS": '["app"]'},
    )  # fmt: skip
    assert configured.returncode == 0, configured.stderr


def test_a_budget_set_after_the_costs_shows_its_status_in_the_view_at_once(
    tmp_path: Path,
) -> None:
    """No processor saw the budget: recording it writes its status as of the store's
    latest hour, the spend of its team's allocations so far this week, as `budgets
    status` reports it; a withdrawn budget writes none."""
    from kubeopera.collectors.simulator import FleetSpec, simulate
    from kubeopera.reports import budget_report, record_budgets
    from kubeopera.settings import Settings
    from kubeopera.sinks.clickhouse import ChdbBackend, Store

    spec = FleetSpec(clusters=1, pods_per_cluster=30, start=MONDAY, duration=timedelta(hours=6),
                     resolution=timedelta(minutes=10), seed=3)  # fmt: skip
    budget = BUDGET.model_copy(update={"target": "payments", "amount": 50.0})
    gone = BUDGET.model_copy(update={"target": "web", "deleted": True})
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        Settings().engine(store, processors=["cost"]).run(simulate(spec))
        spent = store.query(
            "SELECT sum(total_cost) AS c FROM cost_allocation_hourly FINAL "
            "WHERE team = 'payments' AND NOT is_idle"
        )["c"].item()
        record_budgets(store, [budget, gone], MONDAY + spec.duration)
        view = store.query("SELECT budget, spend, forecast, as_of FROM v_budget_status").to_dicts()
        report = budget_report(store, MONDAY + spec.duration)
    assert [(r["budget"], r["as_of"]) for r in view] == [
        ("team/payments/weekly", MONDAY + spec.duration)
    ]
    assert view[0]["spend"] == pytest.approx(spent, rel=1e-9) == report["spend"].item()
    assert view[0]["forecast"] == pytest.approx(report["forecast"].item(), rel=1e-12)
