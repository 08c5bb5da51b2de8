"""The entry point: `simulate` advances every cluster in lockstep, one list per step.

Kept apart from the clusters so the order of a step's messages is stated in one place,
and so a paused generator holds no step's messages alive.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta

from kubeopera.collectors.simulator.changes import Scenario
from kubeopera.collectors.simulator.cluster import Cluster, Out
from kubeopera.collectors.simulator.inventory import build
from kubeopera.collectors.simulator.spec import FleetSpec
from kubeopera.collectors.simulator.state import Injection
from kubeopera.models import Message
from kubeopera.models.catalogue import Catalogue


def simulate(spec: FleetSpec) -> Iterator[list[Message]]:
    """One list per time step, in event-time order. Step 0 also carries the initial
    inventory (NodePrice + Node/Namespace/workload/Pod ObjectChange ADDED).

    Within a step: prices and nodes, namespaces, workloads, pods, events, then one
    MetricBatch per node for the window [t, t + resolution).
    """
    catalogue = spec.resolved_catalogue()
    scenarios = [_cluster(spec, index, catalogue) for index in range(spec.clusters)]
    for step in range(spec.steps):
        yield _step(scenarios, step, spec.start + step * spec.resolution, spec.resolution)


def injections(spec: FleetSpec) -> list[Injection]:
    """What ``simulate(spec)`` injects for the anomaly detectors, with its times (the
    same plan: the clusters are built as it builds them)."""
    catalogue = spec.resolved_catalogue()
    return [i for n in range(spec.clusters) for i in _cluster(spec, n, catalogue).injections]


def _cluster(spec: FleetSpec, index: int, catalogue: Catalogue) -> Scenario:
    """A cluster with its inventory built and its scenario planned, in that order."""
    cluster = Cluster(spec, index, catalogue)
    build(cluster)
    return Scenario(cluster)


def _step(
    scenarios: list[Scenario], step: int, t: datetime, resolution: timedelta
) -> list[Message]:
    """Built outside the generator's frame, so a paused generator holds no step alive."""
    out = Out()
    for scenario in scenarios:
        scenario.advance(step, t, out)
    messages = out.messages()
    for scenario in scenarios:
        messages.extend(scenario.cluster.metrics(t + resolution))
    return messages
