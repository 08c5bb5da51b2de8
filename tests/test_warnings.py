"""Warning Events per workload and hour, worked out by hand: an Event that repeats counts
what its count rose by; Normal Events, and Events about no workload, count for nothing;
a workload's quiet hours after a Warning are sent as 0."""

from datetime import UTC, datetime, timedelta

from builders import pod

from kubeopera.models import KubeEvent, ObjectRef, SeriesPoint, Topic
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope, Output
from kubeopera.streams.processors.warnings import WarningEvents
from kubeopera.streams.reference import Reference

NINE = datetime(2026, 3, 2, 9, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def event(minute: int, count: int, kind: str = "Warning", involved: str = "cart-1",
          name: str = "cart-1.17a") -> Envelope:  # fmt: skip
    involved_kind = "Pod" if involved.startswith("cart-") else "Node"
    return Envelope(
        Topic.EVENTS,
        KubeEvent(
            cluster="prod", namespace="shop", name=name, type=kind, reason="BackOff",
            involved=ObjectRef(kind=involved_kind, namespace="shop", name=involved,
                               uid=f"uid-{involved}"),
            count=count, last_time=NINE + minute * MINUTE,
        ),
    )  # fmt: skip


def points(batches: list[list[Envelope]]) -> list[tuple[int, str, float]]:
    """(hour, workload, Warnings) of every point sent, the input's end included."""
    pipeline = Pipeline([WarningEvents()], Reference(Pricer()))
    pipeline.reference.apply(
        [pod("prod", "shop", "cart-1", "n1", NINE - timedelta(hours=1), deployment="cart")]
    )
    output = Output()
    for batch in batches:
        output.extend(pipeline.run(batch)[0])
    output.extend(pipeline.finish())
    found = [m for _, m in output.messages]
    assert all(isinstance(p, SeriesPoint) for p in found)
    return [(p.window_start.hour, f"{p.workload_kind}/{p.workload}", p.value) for p in found]


def test_warnings_are_counted_by_how_much_their_count_rose() -> None:
    events = [
        event(5, 1),  # a new Warning: 1
        event(10, 2),  # repeated: +1
        event(10, 2),  # the same update again: nothing
        event(20, 5),  # +3
        event(25, 1, kind="Normal", name="cart-1.n"),  # Normal: nothing
        event(30, 4, involved="node-1", name="node-1.oom"),  # about a Node: nobody's
        event(95, 1, name="cart-1.18b"),  # 10:35, another Warning: 1
        event(210, 6),  # 12:30, the first one again: +1
    ]
    expected = [(9, "Deployment/cart", 5.0), (10, "Deployment/cart", 1.0),
                (11, "Deployment/cart", 0.0), (12, "Deployment/cart", 1.0)]  # fmt: skip
    assert points([events]) == expected
    assert points([[e] for e in events]) == expected  # however it is batched


def test_a_partition_without_warnings_ends_with_its_quiet_hours() -> None:
    """Only a Normal Event: the cluster's workloads are sent for its hour, with 0."""
    assert points([[event(5, 1, kind="Normal", name="cart-1.n")]]) == [(9, "Deployment/cart", 0.0)]


def test_a_late_warning_is_a_dead_letter_and_changes_no_hour_sent() -> None:
    """A Warning for 06:00 after the 12:30 one closed the hours before 12:00: refused,
    and it does not make the hours since 06:00 be sent (however it is batched)."""
    on_time, late = event(210, 1), event(-175, 1, name="cart-1.old")
    expected = [(12, "Deployment/cart", 1.0)]
    assert points([[on_time, late]]) == expected
    assert points([[on_time], [late]]) == expected


def test_an_event_counts_what_it_rose_by_however_long_ago_its_last_count_was() -> None:
    """count 5 at 09:05, another Event at 12:15, the first again at count 8 at 12:30:
    the first Event's old count is past the closed hours, so its update counts as new
    (once), batched in one or one by one."""
    events = [event(5, 5), event(195, 1, name="cart-1.other"), event(210, 8)]
    assert points([events]) == points([[e] for e in events])


def test_a_warning_before_its_pod_is_known_counts_for_the_pod_s_workload() -> None:
    """The Event comes before the Pod's object change (the reference has not got it
    yet): it is named when its hour closes, so it counts, batched in one or not."""
    pipeline = Pipeline([WarningEvents()], Reference(Pricer()))
    early = KubeEvent(
        cluster="prod", namespace="shop", name="cart-2.a", type="Warning", reason="BackOff",
        involved=ObjectRef(kind="Pod", namespace="shop", name="cart-2", uid="uid-cart-2"),
        last_time=NINE + 4 * MINUTE,
    )  # fmt: skip
    arrived = pod("prod", "shop", "cart-2", "n1", NINE + 5 * MINUTE, deployment="cart")
    output = Output()
    for batch in ([Envelope(Topic.EVENTS, early)], [Envelope(Topic.OBJECTS, arrived)]):
        output.extend(pipeline.run(batch)[0])
    output.extend(pipeline.finish())
    assert [(m.workload, m.value) for _, m in output.messages] == [("cart", 1.0)]
