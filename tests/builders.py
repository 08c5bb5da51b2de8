"""Small constructors for contract messages, so tests read as the fleet they describe."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from kubeopera.models import (
    CapacityType,
    ChangeType,
    ContainerResources,
    ContainerSamples,
    MetricBatch,
    NodeCapacity,
    NodePrice,
    NodeUsage,
    ObjectChange,
    OwnerRef,
    PodSummary,
)
from kubeopera.models.catalogue import Catalogue
from kubeopera.models.price_sheet import PriceSheet
from kubeopera.streams.cost import allocate
from kubeopera.streams.frames import samples_frame, scrapes_frame
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Processor
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import build

GIB = 1024**3


def node_price(
    cluster: str,
    node: str,
    instance_type: str,
    at: datetime,
    *,
    spot_usd_per_hour: float | None = None,
) -> NodePrice:
    return NodePrice(
        cluster=cluster,
        node=node,
        instance_type=instance_type,
        region="us-east-1",
        zone="us-east-1a",
        capacity_type=CapacityType.SPOT
        if spot_usd_per_hour is not None
        else CapacityType.ON_DEMAND,
        usd_per_hour=spot_usd_per_hour,
        observed_at=at,
    )


def namespace(cluster: str, name: str, at: datetime, **labels: str) -> ObjectChange:
    return ObjectChange(
        cluster=cluster,
        api_version="v1",
        kind="Namespace",
        name=name,
        uid=f"ns-{name}",
        observed_at=at,
        change=ChangeType.ADDED,
        labels=labels,
    )


def pod(
    cluster: str,
    namespace: str,
    name: str,
    node: str,
    at: datetime,
    *,
    cpu_request: float = 0.0,
    memory_request_gib: float = 0.0,
    gpus: float = 0.0,
    deployment: str | None = None,
    labels: dict[str, str] | None = None,
) -> ObjectChange:
    owners = (
        [
            OwnerRef(kind="ReplicaSet", name=f"{deployment}-7d9f"),
            OwnerRef(kind="Deployment", name=deployment),
        ]
        if deployment
        else []
    )
    return ObjectChange(
        cluster=cluster,
        api_version="v1",
        kind="Pod",
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        observed_at=at,
        change=ChangeType.ADDED,
        labels=labels or {},
        owner_chain=owners,
        pod=PodSummary(
            node=node,
            phase="Running",
            containers=[
                ContainerResources(
                    name="app",
                    cpu_request_cores=cpu_request,
                    memory_request_bytes=memory_request_gib * GIB,
                    gpu_request=gpus,
                )
            ],
        ),
    )


def scrape(
    cluster: str,
    node: str,
    start: datetime,
    minutes: int,
    capacity: tuple[float, float],
    usage: dict[tuple[str, str], tuple[float, float]],
    gpus: float = 0.0,
) -> MetricBatch:
    """One node scrape; ``usage`` maps (namespace, pod) to (cores, working-set GiB)."""
    pods = sorted(usage)
    return MetricBatch(
        cluster=cluster,
        node=node,
        window_start=start,
        window_end=start + timedelta(minutes=minutes),
        node_usage=NodeUsage(
            cpu_cores=sum(c for c, _ in usage.values()),
            memory_bytes=sum(m for _, m in usage.values()) * GIB,
        ),
        node_capacity=NodeCapacity(
            cpu_cores=capacity[0], memory_bytes=capacity[1] * GIB, gpus=gpus
        ),
        containers=ContainerSamples(
            namespace=[ns for ns, _ in pods],
            pod=[name for _, name in pods],
            pod_uid=[f"uid-{name}" for _, name in pods],
            container=["app"] * len(pods),
            cpu_cores=[usage[p][0] for p in pods],
            memory_working_set_bytes=[usage[p][1] * GIB for p in pods],
            memory_rss_bytes=[usage[p][1] * GIB * 0.9 for p in pods],
            restarts=[0] * len(pods),
            cpu_throttled_ratio=[None] * len(pods),
        ),
    )


def allocate_messages(
    messages: Iterable[object], catalogue: Catalogue, sheet: PriceSheet | None = None
) -> pl.DataFrame:
    """Cost rows of a message list, straight through the pure processors (no runner)."""
    messages = list(messages)
    reference = Reference(Pricer(catalogue, sheet=sheet))
    reference.apply_prices(m for m in messages if isinstance(m, NodePrice))
    reference.apply_changes(m for m in messages if isinstance(m, ObjectChange))
    batches = [m for m in messages if isinstance(m, MetricBatch)]
    return allocate(
        samples_frame(batches),
        scrapes_frame(batches),
        reference.pricing(),
        reference.versions(),
        reference.pricer.defaults,
    )


def lateness(minutes: float) -> list[Processor[Any]]:
    """The default processors, the cost processor with ``minutes`` of allowed lateness."""
    return build(sections={"cost": {"allowed_lateness_minutes": minutes}})
