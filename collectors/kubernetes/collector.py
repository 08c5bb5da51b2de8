"""The collector: watches one cluster and turns what it sees into the pipeline's messages
(object changes, Events, node price facts, and each node's usage from its kubelet),
handed to a sink in batches."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubeopera.collectors.kubernetes.api import RateLimiter, get_json
from kubeopera.collectors.kubernetes.changes import Owners, to_change
from kubeopera.collectors.kubernetes.events import to_event
from kubeopera.collectors.kubernetes.prices import node_price
from kubeopera.collectors.kubernetes.redact import UNKEYED, Redactor
from kubeopera.collectors.kubernetes.resources import (
    EVENTS,
    OWNER_KINDS,
    RESOURCES,
    Resource,
    known,
)
from kubeopera.collectors.kubernetes.usage import UsagePoller
from kubeopera.collectors.kubernetes.watch import Changes, Watcher, start
from kubeopera.models import ChangeType, Message, Topic

Sink = Callable[[list[Message]], None]


class Collector:
    def __init__(
        self,
        api: ApiClient,
        cluster: str,
        sink: Sink,
        resources: Sequence[Resource] = (*RESOURCES, EVENTS),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        usage_every: timedelta | None = timedelta(minutes=1),
        resync_every: timedelta | None = timedelta(hours=6),
        limiter: RateLimiter | None = None,
        usage_source: str = "auto",
        redactor: Redactor = UNKEYED,
    ) -> None:
        self.cluster = cluster
        self.sink = sink
        self.clock = clock
        self.owners = Owners(self._owner)
        self.redactor = redactor
        self.counts: Counter[str] = Counter()  # messages by kind
        self.errors: dict[str, str] = {}  # kind -> why its first list failed
        self._lock = threading.Lock()  # watchers report from their own threads
        self.resync_every = resync_every
        limiter = self.limiter = limiter or RateLimiter()
        self.api = api
        self.watchers = [
            Watcher(api, resource, self._on_changes, limiter=limiter) for resource in resources
        ]
        self.usage = (
            UsagePoller(api, cluster, sink, usage_every, clock, limiter, usage_source)
            if usage_every
            else None
        )

    def run(self, stop: threading.Event) -> None:
        """List every kind (owners first, in order), then watch them all until ``stop``.
        A kind that cannot be listed now (a CRD not installed yet, a broken connection)
        is listed again by its watcher, with backoff."""
        for watcher in self.watchers:
            try:
                watcher.list_all()
            except (ApiException, HTTPError, OSError) as error:
                self.errors[watcher.resource.kind] = repr(error).splitlines()[0]
        threads = start(self.watchers, stop)
        helpers = [self.usage.run] if self.usage is not None else []
        if self.resync_every is not None:
            helpers.append(self._resync)
        for target in helpers:
            thread = threading.Thread(target=target, args=(stop,), daemon=True)
            thread.start()
            threads.append(thread)
        stop.wait()
        for watcher in self.watchers:
            watcher.interrupt()
        deadline = time.monotonic() + 5
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _resync(self, stop: threading.Event) -> None:
        """Every object again now and then: the ``objects`` topic deletes what has not
        changed within its retention, and the workers rebuild their inventory from it."""
        assert self.resync_every is not None
        while not stop.wait(self.resync_every.total_seconds()):
            for watcher in self.watchers:
                if watcher.resource != EVENTS:
                    watcher.request_resync()

    def _owner(self, ref: dict[str, Any], namespace: str) -> dict[str, Any] | None:
        """An owner whose own watch has not reported it yet, read from the API."""
        resource = known(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource is None or resource.kind not in OWNER_KINDS:
            return None
        path = resource.object_path(ref.get("name", ""), namespace)
        try:
            found = get_json(self.api, path, timeout=10, limiter=self.limiter)
        except ApiException as error:
            if error.status == 404:
                return None
            raise OSError(f"reading owner {path}: {error.status} {error.reason}") from error
        except HTTPError as error:
            raise OSError(f"reading owner {path}: {error}") from error
        return found.get("metadata") or {}

    def _on_changes(self, resource: Resource, changes: Changes) -> None:
        with self._lock:
            messages = self._messages(resource, changes)
            self.counts[resource.kind] += len(changes)
        self.sink(messages)

    def _messages(self, resource: Resource, changes: Changes) -> list[Message]:
        now = self.clock()
        if resource == EVENTS:
            return [
                (Topic.EVENTS, to_event(self.cluster, obj, now, self.redactor))
                for _, obj in changes
            ]
        messages: list[Message] = []
        for change, obj in changes:
            metadata = obj["metadata"]
            if self.usage is not None and resource.kind in ("Node", "Pod"):
                self.usage.observe(resource.kind, obj, change == ChangeType.DELETED)
            if resource.kind in OWNER_KINDS:
                if change == ChangeType.DELETED:
                    self.owners.forget(metadata["uid"])
                else:
                    self.owners.remember(resource.kind, metadata)
            messages.append(
                (
                    Topic.OBJECTS,
                    to_change(self.cluster, resource, obj, change, now, self.owners, self.redactor),
                )
            )
            # changes a failed owner lookup cut, whose owner this change (or a lookup
            # its chain made) has just brought: again, with the chain completed
            messages.extend((Topic.OBJECTS, held) for held in self.owners.completed(now))
            if resource.kind == "Node" and change != ChangeType.DELETED:
                messages.append((Topic.PRICES, node_price(self.cluster, obj, now)))
        return messages
