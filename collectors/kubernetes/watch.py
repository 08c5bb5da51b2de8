"""List + watch of one resource across the cluster, as Kubernetes' informers do it.

A paginated list gives the objects and a resourceVersion; a watch from there streams
changes (with bookmarks, so a quiet resource's version stays fresh). When the version
has expired (410 Gone) the watcher lists again and reports only the difference from
what it already reported: objects it never saw as ADDED, changed ones as MODIFIED,
vanished ones as DELETED. So a relist loses no change and repeats none. Connection
errors back off exponentially; the client's own QPS limit keeps a relist storm gentle.
"""

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubeopera.collectors.kubernetes.api import RateLimiter, get, get_json
from kubeopera.collectors.kubernetes.resources import Resource
from kubeopera.models import ChangeType

Changes = list[tuple[ChangeType, dict[str, Any]]]
METADATA_ONLY = "application/json;as=PartialObjectMetadata{list};g=meta.k8s.io;v=v1"


class ExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class Watcher:
    def __init__(
        self,
        api: ApiClient,
        resource: Resource,
        emit: Callable[[Resource, Changes], None],
        page_size: int = 500,
        watch_seconds: int = 300,
        max_backoff_s: float = 30.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.emit = emit
        self.page_size = page_size
        self.watch_seconds = watch_seconds
        self.max_backoff_s = max_backoff_s
        self.limiter = limiter
        self._resync_due = False
        self.resource_version: str | None = None
        self.relists = 0
        # uid -> (version, metadata stub): enough to diff a relist and report a deletion
        self._known: dict[str, tuple[str, dict[str, Any]]] = {}
        self._stream: Any = None  # the open watch response

    def run(self, stop: threading.Event) -> None:
        """List, then watch until ``stop`` is set; relist on 410; back off on errors."""
        delay = 0.5
        while not stop.is_set():
            try:
                if self.resource_version is None or self._resync_due:
                    resync, self._resync_due = self._resync_due, False  # a request during
                    self.list_all(resync=resync)  # the list is served by the next one
                self.watch(stop)
                delay = 0.5
            except ExpiredError:
                self.resource_version = None
            except (ApiException, HTTPError, OSError, ValueError):
                stop.wait(delay)
                delay = min(delay * 2, self.max_backoff_s)

    def request_resync(self) -> None:
        """Report every object again (RESYNC) at the next opportunity: a compacted topic
        with retention forgets objects that have not changed for long."""
        self._resync_due = True
        self.interrupt()

    def list_all(self, resync: bool = False) -> None:
        """A full list, reported page by page as its difference from what was reported
        before (memory holds one page, not the cluster); with ``resync``, unchanged
        objects are reported too, as RESYNC."""
        if (self.resource_version is not None or self._known) and not resync:
            self.relists += 1
        seen: set[str] = set()
        token, version = None, ""
        while True:
            query = [("limit", self.page_size)] + ([("continue", token)] if token else [])
            page = get_json(
                self.api, self.resource.path, query, self._accept(collection=True), 60, self.limiter
            )
            changes: Changes = []
            for obj in page.get("items") or []:
                uid = obj["metadata"]["uid"]
                seen.add(uid)
                known = self._known.get(uid)
                if known is None:
                    changes.append((ChangeType.ADDED, obj))
                elif known[0] != obj["metadata"].get("resourceVersion"):
                    changes.append((ChangeType.MODIFIED, obj))
                elif resync:
                    changes.append((ChangeType.RESYNC, obj))
            self._remember(changes)
            token = page["metadata"].get("continue")
            version = page["metadata"].get("resourceVersion", version)
            if not token:
                break
        self._remember(
            [(ChangeType.DELETED, o) for u, (_, o) in self._known.items() if u not in seen]
        )
        self.resource_version = version

    def watch(self, stop: threading.Event) -> None:
        """Stream changes from ``resource_version`` until the server ends the watch."""
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self.resource_version or ""),
            ("timeoutSeconds", self.watch_seconds),
        ]
        response = get(
            self.api, self.resource.path, query, self._accept(collection=False),
            self.watch_seconds + 10, self.limiter,
        )  # fmt: skip
        self._stream = response.response
        try:
            for event in _events(response.response):
                if stop.is_set():
                    return
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise ExpiredError(obj.get("message", "resource version expired"))
                    raise ValueError(f"watch error: {obj.get('message')}")
                self.resource_version = obj.get("metadata", {}).get("resourceVersion")
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._remember([(ChangeType(kind), obj)])
        finally:
            self._stream = None
            response.response.release_conn()

    def interrupt(self) -> None:
        """End the open watch now (from another thread), instead of at its timeout."""
        stream = self._stream
        if stream is not None:
            getattr(stream, "shutdown", stream.close)()  # shutdown: urllib3 2.3+

    def _remember(self, changes: Changes) -> None:
        for change, obj in changes:
            metadata = obj["metadata"]
            if change == ChangeType.DELETED:
                self._known.pop(metadata["uid"], None)
            else:
                stub = {k: metadata[k] for k in ("name", "namespace", "uid") if k in metadata}
                version = metadata.get("resourceVersion", "")
                self._known[metadata["uid"]] = (version, {"metadata": stub})
        if changes:
            self.emit(self.resource, changes)

    def _accept(self, collection: bool) -> str:
        if self.resource.metadata_only:
            return METADATA_ONLY.format(list="List" if collection else "") + ",application/json"
        return "application/json"


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """A watch response is one JSON event per line."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=True):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


def start(watchers: list[Watcher], stop: threading.Event) -> list[threading.Thread]:
    """One thread per resource (each holds one long-poll watch)."""
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"watch-{w.resource.plural}")
        for w in watchers
    ]
    for thread in threads:
        thread.daemon = True
        thread.start()
    return threads
