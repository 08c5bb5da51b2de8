"""The pod inventory: the per-container view follows every change, incrementally."""

from datetime import UTC, datetime, timedelta

from builders import namespace, pod

from kubeopera.models import ChangeType
from kubeopera.streams.inventory import Inventory

AT = datetime(2026, 3, 2, tzinfo=UTC)


def view(inventory: Inventory) -> dict[str, tuple[float, str]]:
    frame = inventory.containers()
    return {r["pod_uid"]: (r["cpu_request_cores"], r["team"]) for r in frame.to_dicts()}


def test_adds_updates_relabels_deletes_and_forgets() -> None:
    inventory = Inventory()
    inventory.apply(
        [
            namespace("c", "shop", AT, team="payments"),
            pod("c", "shop", "p1", "n1", AT, cpu_request=0.5),
            pod("c", "shop", "p2", "n1", AT, cpu_request=1, labels={"team": "search"}),
        ]
    )
    assert view(inventory) == {"uid-p1": (0.5, "payments"), "uid-p2": (1.0, "search")}

    inventory.apply([pod("c", "shop", "p1", "n1", AT, cpu_request=0.75)])  # resized
    assert view(inventory)["uid-p1"] == (0.75, "payments")

    inventory.apply([namespace("c", "shop", AT, team="checkout")])  # the namespace changes hands
    assert view(inventory) == {"uid-p1": (0.75, "checkout"), "uid-p2": (1.0, "search")}

    deleted = pod("c", "shop", "p1", "n1", AT + timedelta(minutes=5)).model_copy(
        update={"change": ChangeType.DELETED}
    )
    inventory.apply([deleted])
    assert view(inventory)["uid-p1"] == (0.75, "checkout")  # its late windows still price
    inventory.forget_deleted(AT + timedelta(minutes=5))
    assert "uid-p1" in view(inventory)  # deleted exactly then: not before
    inventory.forget_deleted(AT + timedelta(minutes=6))
    assert view(inventory) == {"uid-p2": (1.0, "search")}
    assert len(inventory) == 1


def test_same_pod_name_in_two_clusters_stays_apart() -> None:
    inventory = Inventory()
    inventory.apply(
        [pod("a", "ns", "p", "n", AT, cpu_request=1), pod("b", "ns", "p", "n", AT, cpu_request=2)]
    )
    inventory.apply([pod("a", "ns", "p", "n", AT, cpu_request=3)])
    frame = inventory.containers().sort("cluster")
    assert frame.select("cluster", "cpu_request_cores").rows() == [("a", 3.0), ("b", 2.0)]
