"""Each partition's offsets taken in order, with no hole: what the Kafka engine hands the
pipeline.

The pipeline takes an offset at or below its partition clock's for a replay (counted
as a duplicate, not processed), so it must never see an offset past one it has not
received: the missing one, arriving later, would be skipped as a replay and lost. Faust
now and then skipped events around a rebalance (a worker received ``metrics[9]`` from
offset 164 while it stood at 120), so the engine passes every batch through
``OffsetOrder.take`` first: an event past a hole is held back (not acked) with the rest
of its partition's batch, and the partition is to be read again from the hole.
Compacted topics have real holes; their events are taken as they come.
"""

from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

E = TypeVar("E")
P = TypeVar("P", bound=Hashable)


class OffsetOrder(Generic[E, P]):
    """``where(event)`` gives an event's partition and offset; ``compacted(partition)``
    whether its topic may have real holes; ``resume(partition)`` the offset the pipeline
    takes next in a partition it has state for (its saved clock's offset + 1; None
    without state: the first event received sets where the partition stands).

    >>> order = OffsetOrder(lambda e: e, lambda p: False, lambda p: 120)
    >>> order.take([("m0", 118), ("m0", 120), ("m0", 164), ("m0", 165)])
    ([('m0', 118), ('m0', 120)], {'m0'})
    >>> order.next
    {'m0': 121}
    """

    def __init__(
        self,
        where: Callable[[E], tuple[P, int]],
        compacted: Callable[[P], bool],
        resume: Callable[[P], int | None],
    ):
        self.where = where
        self.compacted = compacted
        self.resume = resume
        self.next: dict[P, int] = {}  # per partition: the offset the pipeline takes next
        self.rewound: set[P] = set()  # sought back to a hole that has not arrived yet

    def start(self) -> None:
        """Partitions were (re)assigned: where each stands is asked again."""
        self.next.clear()
        self.rewound.clear()

    def take(self, events: Iterable[E]) -> tuple[list[E], set[P]]:
        """The events that continue their partition: replays (below ``next``: the pipeline
        counts them as duplicates) and the next offsets. Returns them, and the partitions
        to read again from ``next`` (a hole first seen here; a partition already sought
        back drops what is past its hole until the hole arrives)."""
        kept, holes = [], set()
        for event in events:
            partition, offset = self.where(event)
            if partition not in self.next and (resumed := self.resume(partition)) is not None:
                self.next[partition] = resumed
            expected = self.next.get(partition)
            if partition in holes:
                continue
            if expected is None or offset <= expected or self.compacted(partition):
                kept.append(event)
                if expected is None or offset >= expected:
                    self.next[partition] = offset + 1
                    self.rewound.discard(partition)
            else:
                holes.add(partition)
        return kept, holes - self.rewound

    def sought(self, partitions: set[P]) -> None:
        """``partitions`` are being read again from ``next``."""
        self.rewound |= partitions
