"""Kubernetes objects (API JSON) to ``ObjectChange`` messages: redacted, with the owner
chain up to the top controller and the last field manager."""

import json
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from kubeopera.collectors.kubernetes.redact import UNKEYED, Redactor
from kubeopera.collectors.kubernetes.resources import Resource
from kubeopera.models import ChangeType, ContainerResources, ObjectChange, OwnerRef, PodSummary
from kubeopera.models.field_paths import MERGE_KEYS, escaped, item
from kubeopera.models.objects import FieldManager
from kubeopera.models.quantity import parse_quantity

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


OwnerLookup = Callable[[dict[str, Any], str], dict[str, Any] | None]
"""Reads an owner (its ownerReference, the dependent's namespace) from the API: its
metadata, or None when it does not exist; raises OSError when it cannot tell now."""


class Chain(NamedTuple):
    refs: list[OwnerRef]
    """Direct controller first, top controller last."""
    awaiting: str | None
    """The uid of the last owner in ``refs`` when a failed lookup left its own owners
    unknown for now (the chain may go on above it); None when the chain is whole."""


class Owners:
    """Every object seen, by uid, with its own owner: enough to walk a Pod up through its
    ReplicaSet to its Deployment, or a Job to its CronJob.

    Each kind has its own watch, so a Pod can arrive before the ReplicaSet created a
    moment earlier; ``lookup`` then reads that owner from the API instead of cutting the
    chain short. Owners that do not exist are remembered (a bounded few) so an orphan's
    every update costs no request. When a lookup fails (a network error), the change is
    published with the chain known so far and held (a bounded few) until that owner
    arrives; ``completed`` then hands it back with its chain completed.
    """

    GONE_KEPT = 4096
    HELD_KEPT = 1024  # a pod's change takes about 14 KB in memory: 14 MB at most

    def __init__(self, lookup: OwnerLookup | None = None) -> None:
        self._by_uid: dict[str, tuple[OwnerRef, dict[str, Any] | None]] = {}
        self._lookup = lookup
        self._gone: dict[str, None] = {}  # insertion-ordered: the oldest go first
        self._held: dict[str, tuple[str, ObjectChange]] = {}  # uid -> (awaited, change)
        self._awaited: dict[str, dict[str, None]] = {}  # owner uid -> uids held for it
        self._arrived: deque[str] = deque()  # uids of held changes whose owner arrived

    def remember(self, kind: str, metadata: dict[str, Any]) -> None:
        uid = metadata.get("uid")
        if uid:
            ref = OwnerRef(kind=kind, name=metadata.get("name", ""), uid=uid)
            self._by_uid[uid] = (ref, controller_ref(metadata))
            self._arrived.extend(self._awaited.pop(uid, ()))

    def forget(self, uid: str) -> None:
        self._by_uid.pop(uid, None)

    def chain(self, metadata: dict[str, Any]) -> Chain:
        """The owners above ``metadata``: an owner that does not exist ends the chain; one
        the API cannot be asked about now cuts it, and the chain awaits that owner."""
        refs: list[OwnerRef] = []
        namespace = metadata.get("namespace", "")
        owner = controller_ref(metadata)
        while owner is not None and len(refs) < 10:  # ownership is acyclic; bound anyway
            uid = owner.get("uid", "")
            refs.append(OwnerRef(kind=owner.get("kind", ""), name=owner.get("name", ""), uid=uid))
            try:
                known = self._by_uid.get(uid) or self._look_up(owner, namespace)
            except OSError:
                return Chain(refs, uid)  # unknown for now: the owner's arrival completes it
            owner = known[1] if known else None
        return Chain(refs, None)

    def hold(self, change: ObjectChange, awaiting: str | None) -> None:
        """Keep ``change`` until the owner ``awaiting`` arrives; with None (its chain is
        whole), or when the object was deleted, drop what was kept for the object."""
        self._release(change.uid)
        if awaiting is None or change.change == ChangeType.DELETED:
            return
        self._held[change.uid] = (awaiting, change)
        self._awaited.setdefault(awaiting, {})[change.uid] = None
        if len(self._held) > self.HELD_KEPT:  # the oldest waits for its next change instead
            self._release(next(iter(self._held)))

    def completed(self, at: datetime) -> list[ObjectChange]:
        """The held changes whose awaited owner has arrived since, again as RESYNC at
        ``at`` with their chain completed; one whose chain comes out as it was published
        (the owner has no owner of its own) is not published again."""
        completed: list[ObjectChange] = []
        while self._arrived:
            held = self._held.get(self._arrived.popleft())
            if held is None:  # deleted, or changed again with a whole chain, meanwhile
                continue
            change = held[1]
            chain = self.chain(change.object["metadata"])
            if chain.refs != change.owner_chain:
                update = {"change": ChangeType.RESYNC, "observed_at": at, "owner_chain": chain.refs}
                change = ObjectChange.model_validate(change.model_dump() | update)
                completed.append(change)
            self.hold(change, chain.awaiting)
        return completed

    def _release(self, uid: str) -> None:
        held = self._held.pop(uid, None)
        if held is not None:
            waiting = self._awaited.get(held[0], {})
            waiting.pop(uid, None)
            if not waiting:
                self._awaited.pop(held[0], None)

    def _look_up(
        self, owner: dict[str, Any], namespace: str
    ) -> tuple[OwnerRef, dict[str, Any] | None] | None:
        """The owner read from the API, or None when it is gone; raises OSError when the
        API cannot tell now."""
        uid = owner.get("uid", "")
        if self._lookup is None or not uid or uid in self._gone:
            return None
        found = self._lookup(owner, namespace)
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


def field_managers(metadata: dict[str, Any]) -> list[FieldManager]:
    """Who manages which fields (``managedFields``), the fields as the timeline names
    them: ``fieldsV1``'s ``f:spec``/``f:replicas`` is ``/spec/replicas``, its
    ``k:{"name":"app"}`` under ``f:containers`` is ``[name=app]``; an item of a set
    (``v:``, named by its value) is ``[value]``, so no value is published."""
    return [
        FieldManager(
            manager=entry.get("manager") or "",
            operation=entry.get("operation") or "",
            subresource=entry.get("subresource") or "",
            time=entry.get("time"),
            fields=sorted(_owned("", "", entry.get("fieldsV1") or {})),
        )
        for entry in metadata.get("managedFields") or []
    ]


def _owned(path: str, field: str, node: dict[str, Any]) -> Iterator[str]:
    """The paths of the fields a ``fieldsV1`` node sets (its leaves, and itself when it
    has a ``.`` member)."""
    if not node or "." in node:
        yield path
    for member, inner in node.items():
        if member.startswith("f:"):
            yield from _owned(f"{path}/{escaped(member[2:])}", member[2:], inner or {})
        elif member.startswith("k:"):
            yield from _owned(f"{path}/{_keyed_item(field, member[2:])}", "", inner or {})
        elif member.startswith("i:"):
            yield from _owned(f"{path}/{escaped(member[2:])}", "", inner or {})
        elif member.startswith("v:"):  # an item of a set, by its value: not published
            yield from _owned(f"{path}/[value]", "", inner or {})


def _keyed_item(field: str, key_json: str) -> str:
    """``k:{"containerPort":80,"protocol":"TCP"}`` as the item's segment, by the list's
    merge key where the keys include it."""
    try:
        keys = json.loads(key_json)
    except ValueError:
        return escaped(key_json)
    if not isinstance(keys, dict) or not keys:
        return escaped(key_json)
    key = next((k for k in MERGE_KEYS.get(field, ()) if k in keys), next(iter(keys)))
    return item(key, keys[key])


def pod_summary(pod: dict[str, Any]) -> PodSummary:
    """Node, phase and the containers that run for the pod's life: its containers and
    its native sidecars, init containers with ``restartPolicy: Always`` (Kubernetes
    1.29+, as Istio and Linkerd inject them), whose requests count like a container's
    (KEP-753; ``PodRequests`` in k8s.io/component-helpers/resource). Init containers
    that run to completion before the others start are left out, as OpenCost leaves
    them out (opencost/opencost issue #3956, pull request #4002)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return PodSummary(
        node=spec.get("nodeName"),
        phase=status.get("phase", "Pending"),
        containers=[_container(c) for c in [*(spec.get("containers") or []), *sidecars]],
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
    """The change as published; one whose owner chain a failed lookup cut is also held
    by ``owners``, to be published again when that owner arrives."""
    metadata = obj.get("metadata") or {}
    cleaned = redactor.redact(resource.kind, obj)
    chain = owners.chain(metadata)
    published = ObjectChange(
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
        labels=cleaned["metadata"].get("labels") or {},
        annotations=cleaned["metadata"]["annotations"],
        owner_chain=chain.refs,
        last_manager=last_manager(metadata),
        field_managers=field_managers(metadata),
        pod=pod_summary(obj) if resource.kind == "Pod" else None,
    )
    owners.hold(published, chain.awaiting)
    return published
