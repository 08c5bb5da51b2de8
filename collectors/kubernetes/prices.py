"""Node price facts from a Node's well-known labels (the pipeline prices them from its
catalogue or price sheet)."""

from datetime import datetime
from typing import Any

from kubeopera.models import CapacityType, NodePrice

INSTANCE_TYPE = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
REGION = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
SPOT_LABELS: tuple[tuple[str, frozenset[str]], ...] = (
    # Karpenter's well-known label (AWS, Azure): spot | on-demand | reserved. OpenCost
    # checks it too: pkg/cloud/models/models.go, KarpenterCapacitySpotTypeValue.
    ("karpenter.sh/capacity-type", frozenset({"spot"})),
    # EKS managed node groups: SPOT | ON_DEMAND | CAPACITY_BLOCK (the node group's
    # capacityType, AWS CDK aws_eks.CapacityType); OpenCost pkg/cloud/aws/provider.go.
    ("eks.amazonaws.com/capacityType", frozenset({"SPOT"})),
    # Self-managed AWS node groups: OpenCost's AWS provider tests "EC2Spot"
    # (pkg/cloud/aws/provider.go, awsKey.Features); AWS's EKS and EC2 Spot workshops
    # label their eksctl spot node groups "Ec2Spot" (on-demand ones "OnDemand").
    ("lifecycle", frozenset({"EC2Spot", "Ec2Spot"})),
    # eksctl's self-managed node groups label each node with the instance's own EC2
    # lifecycle (spot | on-demand | scheduled): pkg/nodebootstrap/assets/scripts/
    # bootstrap.helper.sh, node-lifecycle=${INSTANCE_LIFECYCLE}.
    ("node-lifecycle", frozenset({"spot"})),
    # terraform-aws-modules/eks, examples/self_managed_node_group: spot | normal.
    ("node.kubernetes.io/lifecycle", frozenset({"spot"})),
    # Spot.io Ocean labels every node it manages: od | spot ("Labels and Taints").
    ("spotinst.io/node-lifecycle", frozenset({"spot"})),
    # GKE Spot VMs and the older preemptible VMs ("Spot VMs", "Preemptible VMs" in the
    # GKE docs); OpenCost pkg/cloud/gcp/provider.go, GKESpotLabel / GKEPreemptibleLabel.
    ("cloud.google.com/gke-spot", frozenset({"true"})),
    ("cloud.google.com/gke-preemptible", frozenset({"true"})),
    # AKS Spot node pools ("Add an Azure Spot node pool" in the AKS docs); OpenCost
    # pkg/cloud/azure/provider.go, defaultSpotLabel / defaultSpotLabelValue.
    ("kubernetes.azure.com/scalesetpriority", frozenset({"spot"})),
)
"""Each label that marks a spot (preemptible) node, with exactly the values its source
documents for spot, compared as written: any other value (``ON_DEMAND``, ``on-demand``,
``od``, ``normal``, ``false``) is not spot."""


def node_price(cluster: str, node: dict[str, Any], observed_at: datetime) -> NodePrice:
    labels = (node.get("metadata") or {}).get("labels") or {}
    spot = any(labels.get(label) in values for label, values in SPOT_LABELS)
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
