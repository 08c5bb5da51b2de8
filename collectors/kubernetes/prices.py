"""Node price facts from a Node's well-known labels (the pipeline prices them from its
catalogue or price sheet)."""

from datetime import datetime
from typing import Any

from kubeopera.models import CapacityType, NodePrice

INSTANCE_TYPE = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
REGION = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
CAPACITY = (
    "karpenter.sh/capacity-type",  # on-demand | spot
    "eks.amazonaws.com/capacityType",  # ON_DEMAND | SPOT
    "cloud.google.com/gke-spot",  # "true"
    "kubernetes.azure.com/scalesetpriority",  # spot
)


def node_price(cluster: str, node: dict[str, Any], observed_at: datetime) -> NodePrice:
    labels = (node.get("metadata") or {}).get("labels") or {}
    spot = any(str(labels.get(label, "")).lower() in ("spot", "true") for label in CAPACITY)
    return NodePrice(
        cluster=cluster,
        node=node["metadata"]["name"],
        instance_type=_first(labels, INSTANCE_TYPE),
        region=_first(labels, REGION),
        zone=_first(labels, ZONE),
        capacity_type=CapacityType.SPOT if spot else CapacityType.ON_DEMAND,
        observed_at=observed_at,
    )


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str:
    return next((labels[n] for n in names if labels.get(n)), "")
