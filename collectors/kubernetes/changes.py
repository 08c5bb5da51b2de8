"""Kubernetes objects (API JSON) to ``ObjectChange`` messages: redacted, with the owner
chain up to the top controller and the last field manager."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubeopera.collectors.kubernetes.redact import UNKEYED, Redactor
from kubeopera.collectors.kubernetes.resources import Resource
from kubeopera.models import ChangeType, ContainerResources, ObjectChange, OwnerRef, PodSummary
from kubeopera.models.quantity import parse_quantity

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


OwnerLookup = Callable[[dict[str, Any], str], dict[str, Any] | None]
"""Reads an owner (its ownerReference, the dependent's namespace) from the API: its
metadata, or None when it does not exist; raises OSError when it cannot tell now."""


class Owners:
    """Every object seen, by uid, with its own owner: enough to walk a Pod up through its
    ReplicaSet to its Deployment, or a Job to its CronJob.

    Each kind has its own watch, so a Pod can arrive before the ReplicaSet created a
    moment earlier; ``lookup`` then reads that owner from the API instead of cutting the
    chain short. Owners that do not exist are remembered (a bounded few) so an orphan's
    every update costs no request.
    """

    GONE_KEPT = 4096

    def __init__(self, lookup: OwnerLookup | None = None) -> None:
        self._by_uid: dict[str, tuple[OwnerRef, dict[str, Any] | None]] = {}
        self._lookup = lookup
        self._gone: dict[str, None] = {}  # insertion-ordered: the oldest go first

    def remember(self, kind: str, metadata: dict[str, Any]) -> None:
        uid = metadata.get("uid")
        if uid:
            ref = OwnerRef(kind=kind, name=metadata.get("name", ""), uid=uid)
            self._by_uid[uid] = (ref, controller_ref(metadata))

    def forget(self, uid: str) -> None:
        self._by_uid.pop(uid, None)

    def chain(self, metadata: dict[str, Any]) -> list[OwnerRef]:
        """Direct controller first, top controller last (an owner that cannot be found
        ends it)."""
        chain: list[OwnerRef] = []
        namespace = metadata.get("namespace", "")
        owner = controller_ref(metadata)
        while owner is not None and len(chain) < 10:  # ownership is acyclic; bound anyway
            uid = owner.get("uid", "")
            chain.append(OwnerRef(kind=owner.get("kind", ""), name=owner.get("name", ""), uid=uid))
            known = self._by_uid.get(uid) or self._look_up(owner, namespace)
            owner = known[1] if known else None
        return chain

    def _look_up(
        self, owner: dict[str, Any], namespace: str
    ) -> tuple[OwnerRef, dict[str, Any] | None] | None:
        uid = owner.get("uid", "")
        if self._lookup is None or not uid or uid in self._gone:
            return None
        try:
            found = self._lookup(owner, namespace)
        except OSError:
            return None  # unknown for now: the next change of the dependent tries again
        if found is None or found.get("uid") != uid:  # deleted, or a namesake
            self._gone[uid] = None
            if len(self._gone) > self.GONE_KEPT:
                del self._gone[next(iter(self._gone))]
            return None
        self.remember(owner.get("kind", ""), found)
        return self._by_uid[uid]


def controller_ref(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The owner reference marked ``controller``, else the first one."""
    refs = metadata.get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def last_manager(metadata: dict[str, Any]) -> str | None:
    """The field manager that wrote the object last: the entry with the latest ``time``.
    Those times have one-second resolution; on a tie the later entry wins, which may
    name either of two managers that wrote within the same second."""
    latest: tuple[str, str] | None = None
    for entry in metadata.get("managedFields") or []:
        at = entry.get("time") or ""
        if latest is None or at >= latest[0]:
            latest = (at, entry.get("manager") or "")
    return latest[1] if latest else None


def pod_summary(pod: dict[str, Any]) -> PodSummary:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return PodSummary(
        node=spec.get("nodeName"),
        phase=status.get("phase", "Pending"),
        containers=[_container(c) for c in spec.get("containers") or []],
    )


def _container(container: dict[str, Any]) -> ContainerResources:
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    # an extended resource's request defaults to its limit
    gpu = sum(parse_quantity(requests.get(g, limits.get(g, 0))) for g in GPU_RESOURCES)
    return ContainerResources(
        name=container.get("name", ""),
        cpu_request_cores=parse_quantity(requests.get("cpu", 0)),
        memory_request_bytes=parse_quantity(requests.get("memory", 0)),
        cpu_limit_cores=parse_quantity(limits["cpu"]) if "cpu" in limits else None,
        memory_limit_bytes=parse_quantity(limits["memory"]) if "memory" in limits else None,
        gpu_request=gpu,
    )


def to_change(
    cluster: str,
    resource: Resource,
    obj: dict[str, Any],
    change: ChangeType,
    observed_at: datetime,
    owners: Owners,
    redactor: Redactor = UNKEYED,
) -> ObjectChange:
    metadata = obj.get("metadata") or {}
    cleaned = redactor.redact(resource.kind, obj)
    return ObjectChange(
        cluster=cluster,
        api_version=resource.api_version,
        kind=resource.kind,
        namespace=metadata.get("namespace", ""),
        name=metadata["name"],
        uid=metadata["uid"],
        resource_version=metadata.get("resourceVersion", ""),
        generation=metadata.get("generation"),
        observed_at=observed_at,
        change=change,
        object=cleaned,
        labels=metadata.get("labels") or {},
        annotations=cleaned["metadata"]["annotations"],
        owner_chain=owners.chain(metadata),
        last_manager=last_manager(metadata),
        pod=pod_summary(obj) if resource.kind == "Pod" else None,
    )
