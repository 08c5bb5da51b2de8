"""The service killed (SIGKILL) in the middle of an apply, then started again: the request
ends applied exactly once or not at all, and the audit says which.

The service (``kubeopera actions serve``, a process of its own) reaches the API server
through a TCP proxy that can hold the bytes of either direction, so the kill lands at a
known point: after the update reached the API server but before its answer came back
(applied), or while the update itself is held (not applied)."""

import base64
import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from actions_tools import (
    NAMESPACE,
    POLICY,
    create_deployment,
    read,
    service_token,
    write_config,
)
from cli_tools import stored
from kubernetes import client

from kubeopera.actions.service import RECOVERED
from kubeopera.deploy.kafka import free_port

pytestmark = pytest.mark.slow


class HoldingProxy:
    """A TCP proxy to ``upstream`` that, once armed, lets one exchange through (the apply
    reads the object) and then holds the bytes of the next one going ``up`` (the update
    itself) or ``down`` (the API server's answer to it), counting what it holds."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.holding: str | None = None
        self.phases: list[str] = []  # the directions bytes went since armed, in turns
        self.held = {"up": 0, "down": 0}
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, direction: str) -> None:
        with self.lock:
            self.holding, self.phases = direction, []

    def disarm(self) -> None:
        with self.lock:
            self.holding = None

    def _holds(self, direction: str) -> bool:
        """Whether this chunk is held: the second exchange's, in the armed direction."""
        with self.lock:
            if self.holding is None:
                return False
            if not self.phases or self.phases[-1] != direction:
                self.phases.append(direction)
            second = self.phases[:4] if direction == "down" else self.phases[:3]
            turns = ["up", "down", "up", "down"][: len(second)]
            held = direction == self.holding and second == turns and len(second) >= 3
            if held:
                self.held[direction] += 1
            return held

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._relay, args=(downstream, upstream), daemon=True).start()

    def _relay(self, downstream: socket.socket, upstream: socket.socket) -> None:
        sides = {downstream: (upstream, "up"), upstream: (downstream, "down")}
        try:
            while not self.closed.is_set():
                ready, _, _ = select.select(list(sides), [], [], 0.1)
                for source in ready:
                    target, direction = sides[source]
                    data = source.recv(65536)
                    if not data:
                        return
                    if not self._holds(direction):
                        target.sendall(data)
        except OSError:
            return
        finally:
            downstream.close()
            upstream.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@pytest.fixture
def proxy(kube_admin: client.ApiClient) -> Iterator[HoldingProxy]:
    host = kube_admin.configuration.host.removeprefix("https://")
    address, port = host.rsplit(":", 1)
    holding = HoldingProxy((address, int(port)))
    yield holding
    holding.close()


def service_kubeconfig(admin: client.ApiClient, proxy: HoldingProxy, path: Path) -> Path:
    """A kubeconfig of the service's ServiceAccount, its server the proxy."""
    ca = Path(admin.configuration.ssl_ca_cert).read_bytes()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "actions",
        "clusters": [{"name": "test", "cluster": {
            "server": f"https://127.0.0.1:{proxy.port}",
            "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": "actions", "user": {"token": service_token(admin)}}],
        "contexts": [{"name": "actions", "context": {"cluster": "test", "user": "actions"}}],
    }))  # fmt: skip
    return path


class Served:
    """``kubeopera actions serve`` as a process, started and killed by the test."""

    def __init__(self, config_path: Path, kubeconfig: Path, data: Path) -> None:
        self.arguments = ["kubeopera", "actions", "serve", "--config", str(config_path),
                          "--kubeconfig", str(kubeconfig)]  # fmt: skip
        self.env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(data)}
        self.env.pop("KUBEOPERA_CONFIG", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [*self.arguments, "--port", str(port)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "the service exited"
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def call(self, who: str, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.url + path, json=body, timeout=60,
                                headers={"Authorization": f"Bearer {who}"})  # fmt: skip


def wait(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("cut", ["after the update", "during the update"])
def test_a_kill_during_an_apply_ends_applied_once_or_not_at_all(
    kube_admin: client.ApiClient, proxy: HoldingProxy, tokens: dict[str, str], tmp_path: Path,
    cut: str,
) -> None:  # fmt: skip
    name = "killed-after" if cut == "after the update" else "killed-during"
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"
    create_deployment(kube_admin, name, replicas=2)
    generation = read(kube_admin, path)["metadata"]["generation"]
    kubeconfig = service_kubeconfig(kube_admin, proxy, tmp_path / "kubeconfig")
    served = Served(write_config(tmp_path / "c", POLICY), kubeconfig, tmp_path / "store")
    served.start()
    try:
        body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE, "name": name,
                "params": {"replicas": 4}}  # fmt: skip
        rid = served.call(tokens["alice"], "POST", "/v1/requests", body).json()["id"]
        assert served.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve").ok
        assert served.call(tokens["alice"], "GET", f"/v1/requests/{rid}").ok  # review cached
        direction = "down" if cut == "after the update" else "up"
        proxy.arm(direction)
        applying = threading.Thread(
            target=lambda: _ignore(
                served.call, tokens["alice"], "POST", f"/v1/requests/{rid}/apply"
            ),
            daemon=True,
        )
        applying.start()
        wait(lambda: proxy.held[direction] > 0, f"the update's bytes going {direction}")
        served.kill()
        proxy.disarm()
        served.start()
        ended = served.call(tokens["carol"], "GET", f"/v1/requests/{rid}").json()
        replay = served.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply")
        assert replay.status_code == 409  # applied, or failed: never applied again
        if cut == "after the update":  # the fields as the apply left them: undone
            undone = served.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
            assert undone.json()["state"] == "undone", undone.text
    finally:
        served.stop()
    live = read(kube_admin, path)
    events = f"SELECT event, reason FROM v_actions_audit WHERE request_id = '{rid}'"
    recovered = stored(tmp_path / "store", f"{events} AND event != 'call' ORDER BY at").rows()
    if cut == "after the update":
        assert (ended["state"], ended["reason"]) == ("applied", RECOVERED["applied"])
        # applied once (generation + 1), then undone (+ 1)
        assert (live["spec"]["replicas"], live["metadata"]["generation"]) == (2, generation + 2)
        assert recovered[-2] == ("recover", RECOVERED["applied"])
    else:
        assert (ended["state"], ended["reason"]) == ("failed", RECOVERED["not applied"])
        assert (live["spec"]["replicas"], live["metadata"]["generation"]) == (2, generation)
        assert recovered[-1] == ("recover", RECOVERED["not applied"])
    events = [event for event, _ in recovered]
    assert events[:4] == ["dry_run", "approve", "apply", "recover"]  # then the undo, if any


def _ignore(call: Any, *args: Any) -> None:
    with contextlib.suppress(requests.RequestException):  # the service was killed under it
        call(*args)
