"""The Kafka engine's guard against holes in a partition's offsets (``OffsetOrder``):
every case worked out by hand on (partition, offset) pairs."""

from kubeopera.streams.offset_order import OffsetOrder

Event = tuple[str, int]


SAVED = {"metrics-9": 120, "metrics-10": 117, "objects-0": 5}  # where the saved state stands


def order(compacted: frozenset[str] = frozenset()) -> OffsetOrder[Event, str]:
    return OffsetOrder(lambda e: e, lambda p: p in compacted, SAVED.get)


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
    assert guard.next == {"metrics-9": 120, "metrics-10": 119}


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


def test_a_new_assignment_asks_again_where_each_partition_stands() -> None:
    guard = order()
    guard.take([("metrics-9", 164)])
    guard.sought({"metrics-9"})
    SAVED["metrics-9"] = 164  # another worker took it on meanwhile, and saved its state
    try:
        guard.start()
        assert guard.rewound == set()
        assert guard.take([("metrics-9", 164)]) == ([("metrics-9", 164)], set())
    finally:
        SAVED["metrics-9"] = 120


def test_without_saved_state_the_first_event_sets_where_a_partition_stands() -> None:
    guard = order()
    assert guard.take([("events-3", 40), ("events-3", 41)]) == (
        [("events-3", 40), ("events-3", 41)],
        set(),
    )
    assert guard.take([("events-3", 45)]) == ([], {"events-3"})
