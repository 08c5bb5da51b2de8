"""The anomaly processor on the simulated fleet's ground truth and on series worked out
by hand: what the simulator injects (a cost spike, a memory leak, a restart storm) is
found in the hour it starts, raised once; a batch job that runs every weekend and the
daily ramp are not anomalies; the same ramp at 3 a.m. is one. And bad input."""

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from cli_tools import stored

from kubeopera.collectors.simulator import FleetSpec, Injection, injections, simulate
from kubeopera.models import SeriesKind, SeriesPoint, SeriesScope, Topic
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams import registry
from kubeopera.streams.decode import RawMessage
from kubeopera.streams.embedded import EmbeddedEngine
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope, Output
from kubeopera.streams.processors.anomalies import AnomalyDetection
from kubeopera.streams.reference import Reference

HOUR = timedelta(hours=1)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
FLEET = FleetSpec(
    clusters=1,
    pods_per_cluster=80,
    start=MONDAY,
    duration=timedelta(days=18),  # through two weekends: a Sunday's hours are judged
    resolution=timedelta(minutes=15),
    seed=5,
)
SERIES_OF = {"cost_spike": "cost", "memory_leak": "memory", "restart_storm": "restarts"}
"""The series each injection shows in."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet through the cost and anomaly processors: the store's folder (chDB opens
    one store per process at a time: tests open it when they read)."""
    folder = tmp_path_factory.mktemp("fleet")
    with Store(ChdbBackend(folder), raw_retention_days=0) as store:
        EmbeddedEngine(store, registry.build(["archive", "cost", "warnings", "anomalies"])).run(
            simulate(FLEET)
        )
    return folder


def opened(fleet: Path) -> pl.DataFrame:
    """Every anomaly finding's opening state, with its series kind."""
    return stored(
        fleet,
        "SELECT fingerprint, first_seen, cluster, namespace, kind, name, "
        "JSONExtractString(evidence, 'series_kind') AS series_kind, "
        "JSONExtractString(evidence, 'series') AS series FROM findings FINAL "
        "WHERE finding_kind = 'anomaly' AND status = 'open'",
    )


def hour_of(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("kind", sorted(SERIES_OF))
def test_an_injected_anomaly_is_found_in_the_hour_it_starts_once(fleet: Path, kind: str) -> None:
    (injected,) = [i for i in injections(FLEET) if i.kind == kind]
    subject = injected.cluster if kind == "cost_spike" else injected.workload
    found = opened(fleet).filter(
        (pl.col("name") == subject) & (pl.col("series_kind") == SERIES_OF[kind])
    )
    during = found.filter(
        (pl.col("first_seen") >= hour_of(injected.start)) & (pl.col("first_seen") < injected.end)
    )
    assert during["first_seen"].to_list() == [hour_of(injected.start)], found  # once, at once


def test_the_restart_storm_shows_in_its_warning_events_too(fleet: Path) -> None:
    (storm,) = [i for i in injections(FLEET) if i.kind == "restart_storm"]
    found = opened(fleet).filter(
        (pl.col("name") == storm.workload) & (pl.col("series_kind") == "warnings")
    )
    assert hour_of(storm.start) in found["first_seen"].to_list()


def test_the_weekend_batch_job_is_normal(fleet: Path) -> None:
    """No anomaly opens in its namespace, its team or for it while it runs; it did run
    (the namespace costs more then than at the same hours of the Friday before), and
    the detector did judge those hours (a Sunday's, seen three times by then)."""
    runs = [i for i in injections(FLEET) if i.kind == "weekend_batch"]
    assert len(runs) == 4  # two weekends, Saturday and Sunday
    found = opened(fleet)
    for run in runs:
        flagged = found.filter(
            pl.col("first_seen").is_between(run.start, run.end, closed="left")
            & (
                (pl.col("namespace") == run.namespace)
                | pl.col("name").is_in(["data", run.workload])
            )
        )
        assert flagged.is_empty(), flagged
    hours = stored(
        fleet,
        "SELECT window_start, value, score FROM series_hourly FINAL "
        f"WHERE series_id = 'cost/namespace/{runs[0].cluster}/{runs[0].namespace}///'",
    )
    last = runs[-1]
    during = hours.filter(pl.col("window_start").is_between(last.start, last.end, closed="left"))
    friday = hours.filter(
        pl.col("window_start").is_between(
            last.start - timedelta(days=2), last.end - timedelta(days=2), closed="left"
        )
    )
    assert during["value"].mean() > 1.2 * friday["value"].mean()  # the job ran
    assert (during["score"] > 0).all()  # and was judged


def test_every_oom_kill_is_in_its_workloads_series(fleet: Path) -> None:
    """The kernel's OOMKilling Events (one a kill) against the workloads' OOM kill series
    (restarts whose scrape says OOMKilled): the same number, and no more restarts than
    kills in any OOM series hour (a kill is a restart)."""
    kills = stored(fleet, "SELECT count() AS n FROM raw_events FINAL WHERE reason = 'OOMKilling'")
    series = stored(
        fleet,
        "SELECT o.window_start AS at, o.series_id AS id, o.value AS kills, r.value AS restarts "
        "FROM series_hourly AS o FINAL JOIN series_hourly AS r FINAL "
        "ON r.series_id = replaceOne(o.series_id, 'oom_kills/', 'restarts/') "
        "AND r.window_start = o.window_start WHERE o.series_kind = 'oom_kills' AND o.value > 0",
    )
    assert kills["n"].item() > 0
    assert series["kills"].sum() == kills["n"].item()
    assert (series["restarts"] >= series["kills"]).all()


def ramp(at: datetime) -> float:
    """A namespace's hourly cost with a daily ramp to an afternoon peak, lower at weekends,
    and a deterministic wobble of about 1 %."""
    hour = at.hour + at.minute / 60
    level = 1.0 + 0.6 * max(0.0, math.cos(2 * math.pi * (hour - 14) / 24))
    weekend = 0.8 if at.weekday() >= 5 else 1.0
    return level * weekend * (1 + 0.01 * math.sin(at.timestamp() / 7919))


def point(at: datetime, value: float) -> Envelope:
    return Envelope(
        Topic.SERIES,
        SeriesPoint(
            kind=SeriesKind.COST, scope=SeriesScope.NAMESPACE, cluster="prod",
            namespace="shop", window_start=at, value=value,
        ),
    )  # fmt: skip


def run_series(values: list[tuple[datetime, float]]) -> Output:
    pipeline = Pipeline([AnomalyDetection()], Reference(Pricer()))
    output = Output()
    for at, value in values:
        output.extend(pipeline.run([point(at, value)])[0])
    return output


def test_the_daily_ramp_is_normal_and_the_same_ramp_at_three_in_the_morning_is_not() -> None:
    weeks = [(MONDAY + n * HOUR, ramp(MONDAY + n * HOUR)) for n in range(3 * 168)]
    assert run_series(weeks).findings == []
    tuesday = MONDAY + timedelta(weeks=3, days=1)
    night = [
        (tuesday + h * HOUR, ramp(tuesday + (h + 11 if 3 <= h < 6 else h) * HOUR)) for h in range(9)
    ]  # 03:00-06:00 cost what 14:00-17:00 do
    found = run_series(weeks + night).findings
    assert [(f.status, f.first_seen, f.last_seen) for f in found] == [
        ("open", tuesday + 3 * HOUR, tuesday + 3 * HOUR),
        ("resolved", tuesday + 3 * HOUR, tuesday + 6 * HOUR),
    ]
    evidence = found[0].evidence
    assert evidence["observed"] == pytest.approx(ramp(tuesday + 14 * HOUR))
    assert evidence["observed"] > evidence["band"][1] > evidence["expected"]
    assert len(evidence["history"]) == 24  # the day to it, values to six figures
    assert evidence["history"][-1] == [
        (tuesday + 3 * HOUR).isoformat(),
        float(f"{evidence['observed']:.6g}"),
    ]


def test_an_hour_sent_twice_counts_once() -> None:
    weeks = [(MONDAY + n * HOUR, ramp(MONDAY + n * HOUR)) for n in range(48)]
    once = run_series(weeks)
    twice = run_series([v for pair in zip(weeks, weeks, strict=True) for v in pair])
    assert twice.duplicates == len(weeks)
    assert twice.rows[0][1].equals(once.rows[0][1]) if once.rows else not twice.rows


@pytest.mark.parametrize("value", ["NaN", "-1.5", "Infinity"])
def test_a_nan_or_negative_value_is_a_dead_letter_and_the_rest_goes_on(
    value: str, tmp_path: Path
) -> None:
    good = [point(MONDAY + n * HOUR, 1.0).message for n in range(3)]
    raws = [RawMessage(Topic.SERIES.value, g.model_dump_json().encode(), g.key(), 0, n)
            for n, g in enumerate(good)]  # fmt: skip
    bad = json.loads(good[1].model_dump_json())
    text = json.dumps(bad).replace('"value": 1.0', f'"value": {value}').encode()
    raws.insert(1, RawMessage(Topic.SERIES.value, text, good[1].key(), 0, 9))
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        engine = EmbeddedEngine(store, registry.build(["anomalies"]))
        engine.process_raw(raws)
        scored = store.query("SELECT count() AS n FROM series_hourly")["n"].item()
        letter = store.query("SELECT error FROM deadletter")["error"].to_list()
    assert scored == 3
    assert len(letter) == 1 and "value" in letter[0], letter


def test_an_unknown_detector_or_parameter_is_refused_with_its_reason() -> None:
    with pytest.raises(registry.ProcessorSettingsError, match="unknown detector 'prophet'"):
        registry.build(["anomalies"], {"anomalies": {"detector": "prophet"}})
    with pytest.raises(registry.ProcessorSettingsError, match="unexpected keyword"):
        registry.build(["anomalies"], {"anomalies": {"detector_params": {"alpha": 1}}})
    river = registry.build(
        ["anomalies"], {"anomalies": {"detector": "river.anomaly.HalfSpaceTrees",
                                      "detector_params": {"seed": 1}}}
    )  # fmt: skip
    assert river[0].name == "anomalies"


def _injection_kinds() -> set[str]:
    return {i.kind for i in injections(FLEET)}


def test_the_simulator_records_what_it_injects() -> None:
    found: list[Injection] = injections(FLEET)
    assert _injection_kinds() == {"cost_spike", "memory_leak", "restart_storm", "weekend_batch"}
    for injected in found:
        assert FLEET.start <= injected.start < injected.end <= FLEET.start + FLEET.duration
        if injected.kind != "weekend_batch":
            assert injected.start.weekday() < 5


def test_the_open_anomalies_view_lists_the_open_episode(tmp_path: Path) -> None:
    """Three weeks of the ramp, then a Tuesday whose 03:00 costs what 14:00 does: open
    at the end, with what was observed above the band."""
    weeks = [MONDAY + n * HOUR for n in range(3 * 168 + 24 + 4)]
    night = weeks[-1]
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        engine = EmbeddedEngine(store, registry.build(["anomalies"]))
        engine.process([(Topic.SERIES, point(at, ramp(at)).message) for at in weeks[:-1]])
        engine.process([(Topic.SERIES, point(night, ramp(night + 11 * HOUR)).message)])
        view = store.query("SELECT * FROM v_anomalies_open").to_dicts()
    assert [(r["first_seen"], r["kind"], r["name"], r["series_kind"]) for r in view] == [
        (night, "Namespace", "shop", "cost")
    ]
    assert view[0]["observed"] > view[0]["upper"] > view[0]["expected"]


def test_an_episode_left_open_by_one_embedded_run_resolves_in_the_next(tmp_path: Path) -> None:
    from kubeopera.settings import Settings

    weeks = [MONDAY + n * HOUR for n in range(3 * 168 + 24 + 4)]
    night = weeks[-1]
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        first = Settings().engine(store, processors=["anomalies"])
        first.process([(Topic.SERIES, point(at, ramp(at)).message) for at in weeks[:-1]])
        first.process([(Topic.SERIES, point(night, ramp(night + 11 * HOUR)).message)])
        second = Settings().engine(store, processors=["anomalies"])
        calm = night + HOUR
        second.process([(Topic.SERIES, point(calm, 0.0).message)])
        states = store.query(
            "SELECT status, first_seen, last_seen FROM findings ORDER BY last_seen"
        ).rows()
    assert states == [("open", night, night), ("resolved", night, calm)]
