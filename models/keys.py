"""Strings every stage spells the same way: topic message keys and the idle marker."""

IDLE = "__idle__"
"""The namespace and pod of a node's idle rows in ``cost_allocation_hourly`` (node cost
minus what its containers were allocated), and the group they form in reports."""
UNALLOCATED = "__unallocated__"
"""The group of allocations that lack the report key (a label, a team, a controller), as
OpenCost names it."""


def node_key(cluster: str, node: str) -> str:
    """The message key of a node's scrapes and prices (topics ``metrics`` and ``prices``),
    ``cluster/node``: all of a node's messages go to one partition, in order."""
    return f"{cluster}/{node}"


def object_key(cluster: str, kind: str, namespace: str, name: str) -> str:
    """The message key of an object's changes (topic ``objects``),
    ``cluster/kind/namespace/name`` (namespace empty for cluster-scoped objects): the key
    that compaction keeps the latest change of."""
    return f"{cluster}/{kind}/{namespace}/{name}"
