"""Bad input becomes a dead-letter row with its reason; the rest of the batch goes on."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from builders import lateness, namespace, node_price, pod, scrape

from kubeopera.models import Message, Topic
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.decode import RawMessage
from kubeopera.streams.embedded import EmbeddedEngine
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Batch, Envelope
from kubeopera.streams.processors.cost_allocation import CostAllocation, CostSettings
from kubeopera.streams.reference import Reference
from kubeopera.streams.watermark import END_OF_INPUT
from kubeopera.streams.windows import HourlyWindows

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def raw(topic: Topic, text: str | bytes, offset: int) -> RawMessage:
    value = text.encode() if isinstance(text, str) else text
    return RawMessage(topic=topic.value, value=value, key="k", partition=0, offset=offset)


def encoded(messages: list[Message]) -> list[RawMessage]:
    return [raw(t, m.model_dump_json(), i) for i, (t, m) in enumerate(messages)]


def test_each_kind_of_bad_input_is_dead_lettered_and_good_input_is_allocated(store: Store) -> None:
    good_scrape = scrape("c1", "a", START, 60, (2, 8), {("shop", "p1"): (0.5, 1)})
    negative = json.loads(good_scrape.model_dump_json())
    negative["containers"]["cpu_cores"] = [-0.5]
    not_a_number = good_scrape.model_dump_json().replace('"cpu_cores":[0.5]', '"cpu_cores":[NaN]')
    truncated = pod("c1", "shop", "p9", "a", START).model_dump_json()[:120]
    unknown_type = node_price("c1", "x", "x9.mega", START)
    ghost_pod = pod("c1", "shop", "p2", "ghost", START, cpu_request=1)
    ghost_scrape = scrape("c1", "ghost", START, 60, (4, 16), {("shop", "p2"): (1, 1)})
    unknown_type_scrape = scrape("c1", "x", START, 60, (4, 16), {})

    batch = [
        *encoded(
            [
                (Topic.PRICES, node_price("c1", "a", "m5.large", START)),
                (Topic.OBJECTS, namespace("c1", "shop", START, team="payments")),
                (
                    Topic.OBJECTS,
                    pod("c1", "shop", "p1", "a", START, cpu_request=1, memory_request_gib=1),
                ),
                (Topic.PRICES, unknown_type),
                (Topic.OBJECTS, ghost_pod),
                (Topic.METRICS, good_scrape),
                (Topic.METRICS, ghost_scrape),
                (Topic.METRICS, unknown_type_scrape),
            ]
        ),
        raw(Topic.METRICS, json.dumps(negative), 100),
        raw(Topic.METRICS, not_a_number, 101),
        raw(Topic.OBJECTS, truncated, 102),
        raw(Topic.METRICS, b"\xff\xfe garbage", 103),
        raw(
            Topic.PRICES,
            unknown_type.model_dump_json().replace('"schema_version":1', '"schema_version":7'),
            104,
        ),
    ]
    runner = EmbeddedEngine(store)
    runner.process_raw(batch)
    runner.finish()

    letters = store.query(
        "SELECT source_topic, offset, error FROM deadletter ORDER BY offset, error"
    ).to_dicts()
    reasons = {
        (row["source_topic"], row["offset"]): row["error"]
        for row in letters
        if row["offset"] >= 100
    }
    assert (
        "containers.cpu_cores.0: Input should be greater than or equal to 0"
        in reasons[(Topic.METRICS.value, 100)]
    )
    assert "containers.cpu_cores.0" in reasons[(Topic.METRICS.value, 101)]
    assert "Invalid JSON" in reasons[(Topic.OBJECTS.value, 102)]
    assert "Invalid JSON" in reasons[(Topic.METRICS.value, 103)]
    assert "schema_version: Input should be 1" in reasons[(Topic.PRICES.value, 104)]
    assert len(letters) == 5  # the undecodable ones; every node can be priced
    assert runner.stats.dead_letters == 5

    # Every scrape was allocated. a: one m5.large hour, p1 allocated 1 core of 2 and 1 GiB
    # of 8. The node of an unknown type (x) and the one nobody sent a price for (ghost):
    # OpenCost's default unit prices, 4 x 0.031611 + 16 x 0.004237 for the hour.
    nodes = store.query(
        "SELECT node, any(price_source) AS source, sum(total_cost) AS usd FROM v_cost_hourly "
        "GROUP BY node ORDER BY node"
    )
    default = 4 * 0.031611 + 16 * 0.004237
    assert nodes["node"].to_list() == ["a", "ghost", "x"]
    assert nodes["source"].to_list() == ["catalogue", "default", "default"]
    assert nodes["usd"].to_list() == pytest.approx([0.096, default, default], abs=1e-12)
    pods = store.query("SELECT DISTINCT pod FROM v_cost_hourly ORDER BY pod")["pod"].to_list()
    assert pods == ["__idle__", "p1", "p2"]
    counts = store.query("SELECT sum(messages) AS n FROM v_deadletter_by_reason").item()
    assert counts == 5


def test_late_scrapes_are_refused_with_a_reason_and_replays_count_once(store: Store) -> None:
    runner = EmbeddedEngine(store, lateness(minutes=5))
    first = scrape("c1", "a", START, 60, (2, 8), {})
    runner.process(
        [(Topic.PRICES, node_price("c1", "a", "m5.large", START)), (Topic.METRICS, first)]
    )
    runner.process([(Topic.METRICS, first)])  # redelivered: counted once
    later = scrape("c1", "a", START + timedelta(hours=1), 60, (2, 8), {})
    runner.process([(Topic.METRICS, later)])  # the watermark passes the first hour + 5 min
    assert store.query("SELECT count() FROM cost_allocation_hourly").item() > 0
    runner.process([(Topic.METRICS, first)])  # a replay of a closed hour: still a duplicate
    early = scrape("c1", "a", START - timedelta(hours=1), 60, (2, 8), {})
    runner.process([(Topic.METRICS, early)])  # new data for a closed hour: late
    runner.finish()
    assert runner.stats.duplicates == 2
    errors = store.query("SELECT error FROM deadletter")["error"].to_list()
    assert len(errors) == 1 and errors[0].startswith("late scrape")
    total = store.query("SELECT sum(total_cost) FROM v_cost_hourly").item()
    assert total == pytest.approx(2 * 0.096, abs=1e-12)


def test_window_state_survives_serialisation() -> None:
    """What a worker keeps in its changelog table resumes exactly where it stopped."""
    cost = CostAllocation(CostSettings(allowed_lateness_minutes=5))
    reference = Reference(Pricer())
    reference.apply([node_price("c1", "a", "m5.large", START)])
    first = scrape("c1", "a", START, 30, (2, 8), {("shop", "p1"): (0.5, 1)})
    windows = cost.new_state()
    cost.process(Batch([Envelope(Topic.METRICS, first)]), reference, windows)
    restored = HourlyWindows.from_bytes(windows.to_bytes(), timedelta(minutes=5))
    assert restored.to_bytes() == windows.to_bytes()
    assert restored.admit(first, None) == "duplicate"
    assert restored.close_due(END_OF_INPUT).equals(windows.close_due(END_OF_INPUT))
    assert restored.close_due(END_OF_INPUT).height == 0  # each hour is emitted once


def test_a_partition_clock_makes_a_lagging_nodes_scrape_late_but_not_a_replay() -> None:
    """An hour closes for all nodes of a partition at once: a node whose scrape comes
    after another node moved the partition's watermark past the hour is late, while a
    scrape the windows have seen stays a duplicate."""
    windows = HourlyWindows(timedelta(minutes=10))
    seen = scrape("c1", "slow", START, 1, (2, 8), {("shop", "p1"): (0.5, 1)})
    assert windows.admit(seen, None) == "new"
    watermark = START + timedelta(hours=1, minutes=10)  # another node moved past the hour
    assert windows.admit(seen, watermark) == "duplicate"
    lagging = scrape("c1", "slow", START + timedelta(minutes=30), 1, (2, 8), {})
    assert windows.admit(lagging, watermark) == "late"
    closed = START + timedelta(hours=1)
    reason = windows.late_reason(lagging, watermark)
    assert f"belongs to an hour closed at {closed.isoformat()}" in reason
    next_hour = scrape("c1", "slow", closed, 1, (2, 8), {})
    assert windows.admit(next_hour, watermark) == "new"


def test_a_republished_scrape_is_a_duplicate_or_late_whatever_the_batches() -> None:
    """A scrape published again after its hour closed: the verdict (duplicate while it is
    remembered, late after) depends on the watermark before it, not on whether the
    windows were pruned at a batch end in between."""
    old = scrape("c1", "n", START, 5, (2, 8), {})
    ahead = scrape("c1", "m", START + timedelta(hours=2, minutes=30), 5, (2, 8), {})
    verdicts = []
    for close_between in (False, True):
        windows = HourlyWindows(timedelta(minutes=10))
        assert windows.admit(old, None) == "new"
        watermark = ahead.window_end
        assert windows.admit(ahead, old.window_end) == "new"
        if close_between:  # the batch ended here
            windows.close_due(watermark)
        verdicts.append(windows.admit(old, watermark))
    assert verdicts == ["late", "late"]  # its hour closed two hours before
