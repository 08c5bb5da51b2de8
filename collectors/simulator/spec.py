"""What to simulate: `FleetSpec`, refused on construction when a value makes no sense.

Validation lives with the spec so that a bad value fails with a one-line reason before
any cluster is built, and so the rest of the package can trust every field.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubeopera.collectors.simulator.fleet import POOLS, pick_type
from kubeopera.models.catalogue import Catalogue

HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    """What to simulate; checked on construction so a bad value fails before any work.

    ``pods_per_cluster`` is a target: system pods (DaemonSets on every node, DNS,
    monitoring) set a floor below which a cluster cannot shrink.
    """

    clusters: int = 3
    pods_per_cluster: int = 170
    start: datetime
    duration: timedelta = timedelta(hours=24)
    resolution: timedelta = timedelta(minutes=1)
    seed: int = 42
    catalogue: Catalogue | None = None
    spot_fraction: float = 0.3

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem is not None:
            raise ValueError(f"invalid FleetSpec: {problem}")
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def steps(self) -> int:
        return self.duration // self.resolution

    def resolved_catalogue(self) -> Catalogue:
        return self.catalogue if self.catalogue is not None else Catalogue.builtin()

    def _problem(self) -> str | None:  # noqa: PLR0911 - one early return per rule reads best
        if not _whole(self.clusters) or self.clusters < 1:
            return f"clusters must be a whole number >= 1, got {self.clusters!r}"
        if not _whole(self.pods_per_cluster) or self.pods_per_cluster < 1:
            return f"pods_per_cluster must be a whole number >= 1, got {self.pods_per_cluster!r}"
        if not isinstance(self.start, datetime) or self.start.utcoffset() is None:
            return f"start must be a timezone-aware UTC datetime, got {self.start!r}"
        res = self.resolution
        if (
            not isinstance(res, timedelta)
            or res <= timedelta(0)
            or res % timedelta(seconds=1)
            or HOUR % res
        ):
            return (
                f"resolution must be whole seconds that divide one hour (1m, 5m, 15m...), got {res}"
            )
        if (self.start - EPOCH) % res:
            return f"start {self.start.isoformat()} is not aligned to the {res} resolution"
        if not isinstance(self.duration, timedelta) or self.duration <= timedelta(0):
            return f"duration must be positive, got {self.duration}"
        if self.duration % res:
            return f"duration {self.duration} is not a whole number of {res} steps"
        if not _whole(self.seed) or self.seed < 0:
            return f"seed must be a whole number >= 0, got {self.seed!r}"
        if not isinstance(self.spot_fraction, int | float) or not 0 <= self.spot_fraction <= 1:
            return f"spot_fraction must be between 0 and 1, got {self.spot_fraction!r}"
        if self.catalogue is not None and not isinstance(self.catalogue, Catalogue):
            return f"catalogue must be a Catalogue or None, got {type(self.catalogue).__name__}"
        catalogue = self.resolved_catalogue()
        for pool in POOLS:
            if pick_type(catalogue, pool.candidates) is None:
                wanted = ", ".join(pool.candidates)
                return f"catalogue {catalogue.source} prices none of {wanted} (pool {pool.name})"
        return None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
