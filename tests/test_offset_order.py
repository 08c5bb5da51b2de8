"""The Kafka engine's guard against holes in a partition's offsets (``OffsetOrder``):
every case worked out by hand on (partition, offset) pairs."""

from kubeopera.streams.offset_order import OffsetOrder

Event = tuple[str, int]


def order(compacted: frozenset[str] = frozenset()) -> OffsetOrder[Event, str]:
    guard: OffsetOrder[Event, str] = OffsetOrder(lambda e: e, lambda p: p in compacted)
    guard.start({"metrics-9": 120, "metrics-10": 117, "objects-0": 5})
    return guard


def test_offsets_in_order_and_replays_are_taken() -> None:
    guard = order()
    events = [("metrics-9", 118), ("metrics-9", 119), ("metrics-9", 120), ("metrics-9", 121)]
    assert guard.take(events) == (events, set())
    assert guard.next["metrics-9"] == 122


def test_an_event_past_a_hole_is_held_back_with_the_rest_of_its_partition() -> None:
    guard = order()
    batch = [("metrics-9", 164), ("metrics-10", 117), ("metrics-9", 120), ("metrics-10", 118)]
    kept, holes = guard.take(batch)
    assert kept == [("metrics-10", 117), ("metrics-10", 118)]  # 120 came after the hole
    assert holes == {"metrics-9"}
    assert guard.next == {"metrics-9": 120, "metrics-10": 119, "objects-0": 5}


def test_a_partition_sought_back_waits_for_its_hole_without_asking_again() -> None:
    guard = order()
    assert guard.take([("metrics-9", 164)]) == ([], {"metrics-9"})
    guard.sought({"metrics-9"})
    assert guard.take([("metrics-9", 165)]) == ([], set())  # fetched before the seek
    arrived = [("metrics-9", 120), ("metrics-9", 121)]
    assert guard.take(arrived) == (arrived, set())
    assert guard.take([("metrics-9", 164)]) == ([], {"metrics-9"})  # a new hole: 122..163


def test_a_compacted_topic_has_real_holes() -> None:
    guard = order(compacted=frozenset({"objects-0"}))
    kept, holes = guard.take([("objects-0", 9), ("objects-0", 12)])
    assert kept == [("objects-0", 9), ("objects-0", 12)] and holes == set()
    assert guard.next["objects-0"] == 13


def test_a_new_assignment_starts_over() -> None:
    guard = order()
    guard.take([("metrics-9", 164)])
    guard.sought({"metrics-9"})
    guard.start({"metrics-9": 164})
    assert guard.rewound == set()
    assert guard.take([("metrics-9", 164)]) == ([("metrics-9", 164)], set())
