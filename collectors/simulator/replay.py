"""The simulated cluster written into a real Kubernetes API server, for the real collector
to watch (``kubeopera demo --cluster``).

Objects go in by server-side apply under the field manager the simulator names, their
status through the status subresource; deletions take effect at once, since no kubelet
or garbage collector runs there. Events become core/v1 Events. The server assigns its
own uids, so the simulator's are mapped to them: in owner references, in the objects
Events are about, and in the pods of every metrics scrape.

Each step waits until the collector has reported everything the step wrote, then hands
on the collector's messages with the step's scrapes: a scrape never arrives before the
pods it measures, as in a live cluster. The collector's clock is the simulation's: what
it observes during a step is observed at that step's time, so the pipeline costs each
scrape with the pod versions of its time, as it does for a live cluster.
"""

import math
import threading
from collections import Counter
from collections.abc import Generator, Iterable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubeopera.collectors.kubernetes.api import send
from kubeopera.collectors.kubernetes.collector import Collector
from kubeopera.collectors.kubernetes.resources import EVENTS, known
from kubeopera.collectors.simulator.kube import stamp
from kubeopera.models import (
    Baseline,
    ChangeType,
    KubeEvent,
    Message,
    MetricBatch,
    ObjectChange,
)

APPLY = "application/apply-patch+yaml"  # JSON is YAML: a dict body goes as JSON
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation")


class ReplayError(RuntimeError):
    """The API server refused a write, or the collector did not report it in time."""


@dataclass(frozen=True)
class Written:
    """What the collector must report before a write counts as seen: the object's
    resourceVersion (an Event's count), or infinity for a deletion."""

    uid: str
    version: float


@dataclass
class Replay:
    """Writes one simulated cluster's object changes and Events into the API server."""

    api: ApiClient
    uids: dict[str, str] = field(default_factory=dict)  # the simulator's -> the server's
    writes: int = 0  # requests made
    reported: Counter[str] = field(default_factory=Counter)  # the collector's, by topic

    def apply(self, change: ObjectChange) -> Written:
        resource = known(change.api_version, change.kind)
        if resource is None:
            raise ReplayError(f"cannot write a {change.api_version} {change.kind}")
        path = resource.object_path(change.name, change.namespace)
        if change.change == ChangeType.DELETED:
            self._send(
                "DELETE", path, [("gracePeriodSeconds", 0), ("propagationPolicy", "Background")]
            )
            return Written(self.uids[change.uid], math.inf)
        manager = [("fieldManager", change.last_manager or "kubeopera-demo"), ("force", "true")]
        body = deepcopy(change.object)
        status = body.pop("status", None)
        metadata = body["metadata"]
        for name in SERVER_SET:
            metadata.pop(name, None)
        if change.kind == "Job":  # the server generates its selector from the Job's uid
            body["spec"].pop("selector", None)
        for owner in metadata.get("ownerReferences") or []:
            owner["uid"] = self._server_uid(owner["uid"], f"{change.kind} {change.name}'s owner")
        written = self._send("PATCH", path, manager, body)
        self.uids[change.uid] = written["metadata"]["uid"]
        if status:
            identity = {"name": change.name, "namespace": change.namespace}
            head = {"apiVersion": change.api_version, "kind": change.kind, "metadata": identity}
            written = self._send("PATCH", f"{path}/status", manager, {**head, "status": status})
        return Written(written["metadata"]["uid"], int(written["metadata"]["resourceVersion"]))

    def record(self, event: KubeEvent) -> Written:
        involved = event.involved
        body = {
            "apiVersion": EVENTS.api_version,
            "kind": EVENTS.kind,
            "metadata": {"name": event.name, "namespace": event.namespace},
            "involvedObject": {
                "kind": involved.kind,
                "namespace": involved.namespace,
                "name": involved.name,
                "uid": self.uids.get(involved.uid, ""),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "source": event.source.model_dump(exclude_defaults=True),
            "count": event.count,
            "firstTimestamp": stamp(event.first_time or event.last_time),
            "lastTimestamp": stamp(event.last_time),
        }
        path = EVENTS.object_path(event.name, event.namespace)
        written = self._send("PATCH", path, [("fieldManager", "kubeopera-demo")], body)
        return Written(written["metadata"]["uid"], event.count)

    def scrape(self, batch: MetricBatch) -> MetricBatch:
        """The batch with each pod's uid as the API server gave it."""
        pods = [self._server_uid(uid, "a scraped pod") for uid in batch.containers.pod_uid]
        return batch.model_copy(
            update={"containers": batch.containers.model_copy(update={"pod_uid": pods})}
        )

    def _server_uid(self, uid: str, what: str) -> str:
        if uid not in self.uids:
            raise ReplayError(f"{what} ({uid}) was never written to the API server")
        return self.uids[uid]

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]],
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.writes += 1
        try:
            return send(self.api, method, path, query, body, APPLY if body else "application/json")
        except ApiException as error:
            raise ReplayError(
                f"{method} {path}: {error.status} {error.body or error.reason}"
            ) from error


class CatchUp:
    """The collector's sink: holds its messages until taken, and knows the newest
    version of each object it has reported."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._seen: dict[str, float] = {}
        self._held: list[Message] = []

    def __call__(self, messages: list[Message]) -> None:
        with self._changed:
            for _, message in messages:
                if isinstance(message, ObjectChange):
                    deleted = message.change == ChangeType.DELETED
                    version = math.inf if deleted else int(message.resource_version or 0)
                elif isinstance(message, KubeEvent):
                    version = message.count
                else:
                    continue
                self._seen[message.uid] = max(version, self._seen.get(message.uid, -1))
            self._held.extend(messages)
            self._changed.notify_all()

    def take(self, awaited: Iterable[Written], timeout: float) -> list[Message]:
        """Everything reported so far, once each awaited write is among it."""
        pending = list(awaited)

        def seen_all() -> bool:
            return all(self._seen.get(w.uid, -1) >= w.version for w in pending)

        with self._changed:
            if not self._changed.wait_for(seen_all, timeout):
                missing = [w for w in pending if self._seen.get(w.uid, -1) < w.version]
                raise ReplayError(
                    f"the collector has not reported {len(missing)} of the step's "
                    f"{len(pending)} writes within {timeout:.0f} s (first: {missing[0]})"
                )
            taken, self._held = self._held, []
        return taken


def through_api_server(
    replay: Replay, cluster: str, steps: Iterable[list[Message]], timeout: float = 60
) -> Generator[list[Message]]:
    """The simulated steps of one cluster, replayed into the API server: each step's
    object changes and Events are written there, and what the real collector reports of
    them comes out, followed by the step's scrapes. The simulator's own price facts are
    dropped: the collector derives them from the Nodes' labels."""
    caught = CatchUp()
    now = [datetime.now(UTC)]  # the simulated time of the step being written
    collector = Collector(
        replay.api, cluster, caught, clock=lambda: now[0], usage_every=None, resync_every=None
    )
    stop = threading.Event()
    watching = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    watching.start()
    try:
        for messages in steps:
            now[0] = max(
                (m.observed_at for _, m in messages if isinstance(m, ObjectChange)),
                default=now[0],
            )
            awaited: list[Written] = []
            passed: list[Message] = []  # what no API server holds: scrapes, baselines
            for topic, message in messages:
                if isinstance(message, ObjectChange):
                    awaited.append(replay.apply(message))
                elif isinstance(message, KubeEvent):
                    awaited.append(replay.record(message))
                elif isinstance(message, MetricBatch):
                    passed.append((topic, replay.scrape(message)))
                elif isinstance(message, Baseline):  # what the simulated owners declared
                    passed.append((topic, message))
            reported = caught.take(awaited, timeout)
            replay.reported.update(topic for topic, _ in reported)
            yield [*reported, *passed]
    finally:
        stop.set()
        watching.join(timeout=10)
