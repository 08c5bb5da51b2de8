"""Seeded fleet simulator: the streams a fleet's collectors would publish, without a fleet.

Demos, tests and benchmarks need realistic input at any scale, and the same input twice.
`simulate` plays N clusters step by step from one seed: inventory, rollouts, manual
edits, incidents, per-node usage scrapes and, for the anomaly detectors, a cost spike, a
memory leak, a restart storm and a weekend batch job (normal), recorded by `injections`.
State is kept per object and never per step, so memory grows with the fleet and not
with the duration.

The public API is `FleetSpec`, `Message`, `simulate`, `injections` and `Injection`; the
modules behind it, from the bottom up:

- ``fleet``: the catalogue of fleet shapes (clusters, pools, teams, workload templates)
- ``kube``: how Kubernetes spells uids, name suffixes, quantities and timestamps
- ``spec``: `FleetSpec` and its validation
- ``state``: the per-object records (containers, nodes, workloads, pods, event series)
- ``usage``: the vectorised usage model behind the MetricBatch scrapes
- ``manifests``: rendering Node, Namespace, workload, ReplicaSet and Pod manifests
- ``cluster``: one cluster's live objects, scheduler and collector
- ``inventory``: what a cluster runs when the simulation starts
- ``changes``: what happens to it over the run
- ``run``: `simulate`, every cluster in lockstep
- ``replay``: one simulated cluster written into a real API server for the real
  collector to watch (``kubeopera demo --cluster``; needs the Kubernetes client)
"""

from kubeopera.collectors.simulator.run import injections, simulate
from kubeopera.collectors.simulator.spec import FleetSpec
from kubeopera.collectors.simulator.state import Injection
from kubeopera.models import Message

__all__ = ["FleetSpec", "Injection", "Message", "injections", "simulate"]
