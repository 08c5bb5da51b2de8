"""List + watch against a real kube-apiserver: changes in order, and a relist after an
expired resourceVersion (410 Gone) that reports exactly what was missed."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from kubeopera.collectors.kubernetes.resources import RESOURCES, Resource
from kubeopera.collectors.kubernetes.watch import Changes, Watcher
from kubeopera.deploy.kafka import free_port
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models import ChangeType

pytestmark = pytest.mark.integration  # a real kube-apiserver

CONFIGMAPS = next(r for r in RESOURCES if r.kind == "ConfigMap")


@pytest.fixture(scope="module")
def admin(kube_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        yield api


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[ChangeType, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, resource: Resource, changes: Changes) -> None:
        with self.lock:
            self.changes += [(c, o["metadata"]["name"], o) for c, o in changes]

    def of(self, namespace: str) -> list[tuple[ChangeType, str]]:
        with self.lock:
            return [
                (c, n) for c, n, o in self.changes if o["metadata"].get("namespace") == namespace
            ]


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def configmap(name: str, value: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": value})


def test_changes_arrive_in_order_with_their_versions(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="watched")))
    recorder, stop = Recorder(), threading.Event()
    watcher = Watcher(admin, CONFIGMAPS, recorder, watch_seconds=5)
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: watcher.resource_version is not None)
        core.create_namespaced_config_map("watched", configmap("a", "1"))
        core.patch_namespaced_config_map("a", "watched", {"data": {"k": "2"}})
        core.create_namespaced_config_map("watched", configmap("b", "1"))
        core.delete_namespaced_config_map("a", "watched")
        expected = [
            (ChangeType.ADDED, "a"),
            (ChangeType.MODIFIED, "a"),
            (ChangeType.ADDED, "b"),
            (ChangeType.DELETED, "a"),
        ]
        wait_for(lambda: recorder.of("watched") == expected)
        versions = [
            int(o["metadata"]["resourceVersion"])
            for _, _, o in recorder.changes
            if o["metadata"].get("namespace") == "watched"
        ]
        assert versions == sorted(versions)  # in the order the API server applied them
        time.sleep(6)  # the server ends the watch (timeoutSeconds); the watcher resumes
        core.patch_namespaced_config_map("b", "watched", {"data": {"k": "3"}})
        wait_for(lambda: recorder.of("watched")[-1] == (ChangeType.MODIFIED, "b"))
        assert recorder.of("watched") == [*expected, (ChangeType.MODIFIED, "b")]
        assert watcher.relists == 0  # resumed from its resourceVersion, no relist
    finally:
        stop.set()
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    """An API server of its own that compacts etcd's history every second and serves
    watches from etcd (no watch cache), so that a watch from an older resourceVersion is
    refused with 410 Gone within seconds, as in a busy cluster."""
    cluster = LocalCluster(
        state=tmp_path_factory.mktemp("compacting"),
        port=free_port(),
        apiserver_args=("--etcd-compaction-interval=1s", "--watch-cache=false"),
    )
    cluster.up()
    try:
        with config.new_client_from_config(config_file=str(cluster.kubeconfig)) as api:
            yield api
    finally:
        cluster.down()


def test_an_expired_watch_relists_and_reports_exactly_what_was_missed(
    compacting: client.ApiClient,
) -> None:
    """Changes made while the watcher was away, until its resourceVersion is compacted
    away (410 Gone): the relist reports the missed create, update and delete, and
    nothing about the untouched object."""
    core = client.CoreV1Api(compacting)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="relisted")))
    for name in ("kept", "changed", "removed"):
        core.create_namespaced_config_map("relisted", configmap(name, "1"))
    recorder = Recorder()
    watcher = Watcher(compacting, CONFIGMAPS, recorder, watch_seconds=5)
    watcher.list_all()
    assert sorted(recorder.of("relisted")) == [
        (ChangeType.ADDED, "changed"),
        (ChangeType.ADDED, "kept"),
        (ChangeType.ADDED, "removed"),
    ]
    recorder.changes.clear()
    core.patch_namespaced_config_map("changed", "relisted", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("removed", "relisted")
    core.create_namespaced_config_map("relisted", configmap("new", "1"))
    for step in range(4):  # compaction passes the watcher's version
        core.create_namespaced_config_map("default", configmap(f"tick-{step}", "1"))
        time.sleep(1.5)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: watcher.relists == 1)
        wait_for(lambda: len(recorder.of("relisted")) >= 3)
        time.sleep(1)  # nothing more may come
        assert sorted(recorder.of("relisted")) == [
            (ChangeType.ADDED, "new"),
            (ChangeType.DELETED, "removed"),
            (ChangeType.MODIFIED, "changed"),
        ]
        assert watcher.relists == 1
    finally:
        stop.set()
        thread.join(timeout=15)


def test_the_api_server_restarted_mid_watch_the_watcher_reconnects_and_catches_up(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The API server goes down under an open watch and comes back (same data, same
    credentials): the watcher backs off, reconnects, and reports what changed since,
    and nothing it had reported already."""
    cluster = LocalCluster(state=tmp_path_factory.mktemp("restarted"), port=free_port())
    cluster.up()
    stop = threading.Event()
    try:
        with config.new_client_from_config(config_file=str(cluster.kubeconfig)) as api:
            core = client.CoreV1Api(api)
            recorder = Recorder()
            watcher = Watcher(api, CONFIGMAPS, recorder, watch_seconds=30, max_backoff_s=1)
            thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
            thread.start()
            wait_for(lambda: watcher.resource_version is not None)
            core.create_namespaced_config_map("default", configmap("before", "1"))
            wait_for(lambda: recorder.of("default") == [(ChangeType.ADDED, "before")])
            cluster.down(timeout=5)  # SIGTERM, SIGKILL if open watches keep it draining
            time.sleep(2)  # the watch breaks; reconnects are refused meanwhile
            cluster.up(fresh=False)
            core.patch_namespaced_config_map("before", "default", {"data": {"k": "2"}})
            core.create_namespaced_config_map("default", configmap("after", "1"))
            wait_for(lambda: len(recorder.of("default")) >= 3, timeout=60)
            time.sleep(1)
            assert recorder.of("default") == [
                (ChangeType.ADDED, "before"),
                (ChangeType.MODIFIED, "before"),
                (ChangeType.ADDED, "after"),
            ]
    finally:
        stop.set()
        cluster.down(timeout=5)


def test_a_resync_reports_every_object_again_and_the_watch_goes_on(
    admin: client.ApiClient,
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="resynced")))
    core.create_namespaced_config_map("resynced", configmap("steady", "1"))
    recorder, stop = Recorder(), threading.Event()
    watcher = Watcher(admin, CONFIGMAPS, recorder, watch_seconds=30)
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: recorder.of("resynced") == [(ChangeType.ADDED, "steady")])
        watcher.request_resync()  # interrupts the open watch
        wait_for(lambda: len(recorder.of("resynced")) == 2)
        assert recorder.of("resynced")[1] == (ChangeType.RESYNC, "steady")
        core.create_namespaced_config_map("resynced", configmap("later", "1"))
        wait_for(lambda: len(recorder.of("resynced")) == 3)
        assert recorder.of("resynced")[2] == (ChangeType.ADDED, "later")
        assert watcher.relists == 0  # a resync is not a relist after an expiry
    finally:
        stop.set()
        watcher.interrupt()
        thread.join(timeout=15)
