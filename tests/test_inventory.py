"""The pod inventory: every version of every pod, valid from when the cluster saw it."""

from datetime import UTC, datetime, timedelta

import polars as pl
from builders import namespace, pod

from kubeopera.models import ChangeType
from kubeopera.streams.inventory import BEGINNING, END, Inventory

AT = datetime(2026, 3, 2, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def spans(inventory: Inventory, uid: str) -> list[tuple[datetime, datetime, float, str, bool]]:
    """(valid_from, valid_to, CPU request, team, running) of a pod's versions."""
    frame = inventory.versions().filter(pl.col("pod_uid") == uid).sort("valid_from")
    return frame.select("valid_from", "valid_to", "cpu_request_cores", "team", "running").rows()


def test_each_change_opens_a_version_and_the_namespace_label_applies_from_its_time() -> None:
    inventory = Inventory()
    inventory.apply(
        [
            namespace("c", "shop", AT, team="payments"),
            pod("c", "shop", "p1", "n1", AT, cpu_request=0.5),
            pod("c", "shop", "p2", "n1", AT, cpu_request=1, labels={"team": "search"}),
        ]
    )
    assert spans(inventory, "uid-p1") == [(AT, END, 0.5, "payments", True)]

    inventory.apply([pod("c", "shop", "p1", "n1", AT + 10 * MINUTE, cpu_request=0.75)])  # resized
    inventory.apply([namespace("c", "shop", AT + 20 * MINUTE, team="checkout")])
    assert spans(inventory, "uid-p1") == [
        (AT, AT + 10 * MINUTE, 0.5, "payments", True),
        (AT + 10 * MINUTE, AT + 20 * MINUTE, 0.75, "payments", True),
        (AT + 20 * MINUTE, END, 0.75, "checkout", True),
    ]
    assert spans(inventory, "uid-p2") == [  # its own label wins over the namespace's
        (AT, END, 1.0, "search", True)
    ]
    first = inventory.versions().filter(pl.col("pod_uid") == "uid-p1").sort("valid_from")
    assert first["sample_from"].to_list() == [BEGINNING, AT + 10 * MINUTE, AT + 20 * MINUTE]


def test_a_change_reported_late_slots_in_by_its_time_and_repeats_are_no_change() -> None:
    inventory = Inventory()
    inventory.apply([pod("c", "ns", "p", "n", AT + 30 * MINUTE, cpu_request=2)])
    inventory.apply([pod("c", "ns", "p", "n", AT, cpu_request=1)])  # observed earlier
    inventory.apply([pod("c", "ns", "p", "n", AT + 40 * MINUTE, cpu_request=2)])  # the same again
    assert [(s[0], s[2]) for s in spans(inventory, "uid-p")] == [
        (AT, 1.0),
        (AT + 30 * MINUTE, 2.0),
    ]


def test_deleted_pods_stop_running_and_are_forgotten_past_the_horizon() -> None:
    inventory = Inventory()
    inventory.apply([pod("c", "shop", "p1", "n1", AT, cpu_request=0.5)])
    deleted = pod("c", "shop", "p1", "n1", AT + 5 * MINUTE).model_copy(
        update={"change": ChangeType.DELETED}
    )
    inventory.apply([deleted])
    assert spans(inventory, "uid-p1") == [
        (AT, AT + 5 * MINUTE, 0.5, "", True),
        (AT + 5 * MINUTE, END, 0.5, "", False),  # its last requests, no longer running
    ]
    inventory.forget_before(AT + 5 * MINUTE)
    assert spans(inventory, "uid-p1") == [(AT + 5 * MINUTE, END, 0.5, "", False)]
    assert len(inventory) == 1  # deleted exactly then: a scrape from then on may still come
    inventory.forget_before(AT + 6 * MINUTE)
    assert inventory.versions().height == 0
    assert len(inventory) == 0


def test_same_pod_name_in_two_clusters_stays_apart() -> None:
    inventory = Inventory()
    inventory.apply(
        [pod("a", "ns", "p", "n", AT, cpu_request=1), pod("b", "ns", "p", "n", AT, cpu_request=2)]
    )
    inventory.apply([pod("a", "ns", "p", "n", AT, cpu_request=3)])  # the same instant: replaces
    frame = inventory.versions().sort("cluster")
    assert frame.select("cluster", "cpu_request_cores").rows() == [("a", 3.0), ("b", 2.0)]
