"""The action service put together: its settings, the cluster's API server as its own
identity, the store, the ``actions`` topic and PagerDuty change events, served by
uvicorn."""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

from fastapi import FastAPI
from kubernetes.client import ApiClient

from kubeopera.actions.api import build_app
from kubeopera.actions.auth import Authenticator
from kubeopera.actions.change_events import ChangeEvents
from kubeopera.actions.config import ServiceConfig, load_service_config
from kubeopera.actions.kube import Cluster
from kubeopera.actions.policy import Policy
from kubeopera.actions.records import record_audit
from kubeopera.actions.service import Announce, Redact, Service
from kubeopera.collectors.kubernetes.redact import UNKEYED
from kubeopera.models import Topic
from kubeopera.models.actions import ActionAudit
from kubeopera.sinks.clickhouse import Store

log = logging.getLogger("kubeopera.actions")


class Publishing(Protocol):
    """What publishes audit records to the ``actions`` topic (``collectors.publisher``)."""

    def publish(self, topic: Topic, message: ActionAudit) -> None: ...
    def flush(self, timeout_s: float | None = None) -> None: ...


def announcer(store: Store, publisher: Publishing | None) -> Announce:
    """Audit records into the store, then onto the ``actions`` topic (flushed): a record
    is stored, and on the broker, before its call is answered. Concurrent calls share
    one insert (``GroupCommit``)."""

    def write(audits: list[ActionAudit]) -> None:
        record_audit(store, audits)
        if publisher is not None:
            for audit in audits:
                publisher.publish(Topic.ACTIONS, audit)
            publisher.flush()

    return GroupCommit(write)


class GroupCommit:
    """Group commit, as databases write their logs: a caller's records go in one
    ``write`` with those of every caller waiting then, and the caller returns once that
    write is done (or raises what it raised). One write at a time, no thread of its own:
    a caller that finds none running writes what is waiting, its own records included,
    and hands over; no caller writes for others longer than one write."""

    def __init__(self, write: Callable[[list[ActionAudit]], None]) -> None:
        self.write = write
        self._turn = threading.Condition()
        self._waiting: list[tuple[list[ActionAudit], Future[None]]] = []
        self._writing = False

    def __call__(self, audits: list[ActionAudit]) -> None:
        done: Future[None] = Future()
        with self._turn:
            self._waiting.append((audits, done))
            while self._writing and not done.done():
                self._turn.wait()
            if done.done():  # another caller wrote them
                done.result()
                return
            self._writing = True
            batch, self._waiting = self._waiting, []
        try:
            self.write([audit for records, _ in batch for audit in records])
        except BaseException as error:
            for _, waiting in batch:
                waiting.set_exception(error)
        else:
            for _, waiting in batch:
                waiting.set_result(None)
        finally:
            with self._turn:
                self._writing = False
                self._turn.notify_all()
        done.result()


def make_app(
    config: ServiceConfig,
    policy: Policy,
    api: ApiClient,
    store: Store,
    publisher: Publishing | None = None,
    review_ttl: float = 10.0,
    redact: Redact = UNKEYED.redact,
) -> tuple[FastAPI, Service]:
    """The app and its service; requests a stopped service left half done are settled
    first (``Service.recover``). ``redact``: the collector's redaction with the cluster's
    key, so what the service shows and keeps of an object holds no credential."""
    cluster = Cluster(api, config.field_manager)
    tell = ChangeEvents.from_subscriptions(config.subscriptions) if config.subscriptions else None
    service = Service(config, policy, cluster, store, announcer(store, publisher), tell, redact)
    service.recover()
    authenticator = Authenticator(config.bindings, config.static_tokens, cluster.review, review_ttl)
    return build_app(service, authenticator), service


def serve(
    config_path: Path,
    api: ApiClient,
    open_store: Callable[[], Store],
    host: str,
    port: int,
    publisher: Publishing | None = None,
    redact: Redact = UNKEYED.redact,
) -> None:
    """Serve until stopped (SIGTERM, SIGINT)."""
    import uvicorn

    config, policy = load_service_config(config_path)
    with open_store() as store:
        app, _ = make_app(config, policy, api, store, publisher, redact=redact)
        log.info("serving cluster %s on %s:%d", config.cluster, host, port)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
