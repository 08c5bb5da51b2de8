"""Bad input becomes a dead-letter row with its reason; the rest of the batch goes on."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from builders import namespace, node_price, pod, scrape

from kubeopera.models import Message, Topic
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.decode import RawMessage
from kubeopera.streams.runner import EmbeddedRunner
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
    runner = EmbeddedRunner(store)
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
    runner = EmbeddedRunner(store, allowed_lateness=timedelta(minutes=5))
    first = scrape("c1", "a", START, 60, (2, 8), {})
    runner.process(
        [(Topic.PRICES, node_price("c1", "a", "m5.large", START)), (Topic.METRICS, first)]
    )
    runner.process([(Topic.METRICS, first)])  # redelivered: counted once
    later = scrape("c1", "a", START + timedelta(hours=1), 60, (2, 8), {})
    runner.process([(Topic.METRICS, later)])  # the watermark passes the first hour + 5 min
    assert runner.windows.closed_until == START + timedelta(hours=1)
    runner.process([(Topic.METRICS, first)])  # a replay of a closed hour: still a duplicate
    early = scrape("c1", "a", START - timedelta(hours=1), 60, (2, 8), {})
    runner.process([(Topic.METRICS, early)])  # new data for a closed hour: late
    runner.finish()
    assert runner.stats.duplicates == 2
    errors = store.query("SELECT error FROM deadletter")["error"].to_list()
    assert len(errors) == 1 and errors[0].startswith("late scrape")
    total = store.query("SELECT sum(total_cost) FROM v_cost_hourly").item()
    assert total == pytest.approx(2 * 0.096, abs=1e-12)


def test_window_state_survives_serialisation(store: Store) -> None:
    """What a worker keeps in its changelog table resumes exactly where it stopped."""
    runner = EmbeddedRunner(store, allowed_lateness=timedelta(minutes=5))
    first = scrape("c1", "a", START, 30, (2, 8), {})
    runner.process(
        [(Topic.PRICES, node_price("c1", "a", "m5.large", START)), (Topic.METRICS, first)]
    )
    restored = HourlyWindows.from_bytes(runner.windows.to_bytes(), timedelta(minutes=5))
    assert restored.to_bytes() == runner.windows.to_bytes()
    assert restored.admit(first) == "duplicate"
    assert restored.close_all().equals(runner.windows.close_all())


def test_a_wider_clock_makes_a_lagging_nodes_scrape_late_but_not_a_replay() -> None:
    """The worker closes an hour for all nodes of a partition at once: a node whose own
    windows never saw that hour is still late for it, while a scrape it has seen stays a
    duplicate (a replay after a restart is never mistaken for late data)."""
    windows = HourlyWindows(timedelta(minutes=10))
    seen = scrape("c1", "slow", START, 1, (2, 8), {("shop", "p1"): (0.5, 1)})
    assert windows.screen(seen) == (True, None)
    closed = START + timedelta(hours=1)  # another node of the partition moved past it
    assert windows.screen(seen, closed_until=closed) == (False, None)
    lagging = scrape("c1", "slow", START + timedelta(minutes=30), 1, (2, 8), {})
    use, reason = windows.screen(lagging, closed_until=closed)
    assert not use and reason is not None
    assert f"belongs to an hour closed at {closed.isoformat()}" in reason
    next_hour = scrape("c1", "slow", closed, 1, (2, 8), {})
    assert windows.screen(next_hour, closed_until=closed) == (True, None)


def test_a_replay_from_an_old_committed_offset_is_a_duplicate_not_late() -> None:
    """A worker catching up can process hours of scrapes between two offset commits; a
    restart then replays scrapes whose hours closed and were forgotten since. Their
    offsets say they are replays: duplicates, not late data."""
    windows = HourlyWindows(timedelta(minutes=10))
    first = scrape("c1", "n", START, 1, (2, 8), {})
    assert windows.screen(first, offset=10) == (True, None)
    for hour in range(1, 4):  # the node's clock moves three hours on
        later = scrape("c1", "n", START + timedelta(hours=hour), 1, (2, 8), {})
        assert windows.screen(later, offset=10 + hour) == (True, None)
        windows.close_due()
    restored = HourlyWindows.from_bytes(windows.to_bytes(), timedelta(minutes=10))
    assert restored.screen(first, offset=10) == (False, None)  # a replay: no dead letter
    assert restored.duplicates == windows.duplicates + 1
    unseen = scrape("c1", "n", START + timedelta(minutes=30), 1, (2, 8), {})
    use, reason = restored.screen(unseen, offset=14)  # new data for a closed hour: late
    assert not use and reason is not None and reason.startswith("late scrape")
    assert restored.screen(unseen, offset=14) == (False, None)  # and its replay is not
