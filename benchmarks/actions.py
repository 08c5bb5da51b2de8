"""The action service: request-to-applied latency, and the reads it sustains.

A real kube-apiserver (the test cluster, started here) with the service's manifest RBAC
and the callers of tests/actions_tools.py installed, one Deployment to act on, and the
service as deployed: ``kubeopera actions serve``, a process of its own acting as its
manifest's ServiceAccount, on an embedded store of its own, token reviews kept 10 s (its
default).

1. Latency. A policy rule auto-approves alice's scale requests; she asks for a scale
   (``POST /v1/requests``: policy, server-side dry-run, the request and its audit
   stored) and applies it (``POST /v1/requests/{id}/apply``: the update sent with the
   dry-run's resourceVersion as its precondition), one request after the other, the
   replica count alternating so each changes something. Each latency is from the
   create call's start to the apply's answer. Prints p50, p99 and max, the create and
   the apply apart, and whether every request ended applied and the Deployment as the
   last one left it.
2. Reads. A few client threads (carol, a viewer) call ``GET /v1/requests/{id}`` (the
   ids of part 1) and ``GET /v1/requests?limit=20`` in turn, as fast as answered, for a
   while. Prints the requests/s, each kind's p50 and p99, and the answers that were not
   200.

    python benchmarks/actions.py                          # 200 requests; 4 readers, 10 s
    python benchmarks/actions.py --requests 500 --readers 8 --seconds 20
"""

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client, config
from machine import describe  # benchmarks/machine.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from actions_tools import (  # the service's test harness: manifest, callers, settings
    NAMESPACE,
    create_deployment,
    ensure,
    install,
    read,
    service_token,
    token,
    write_config,
)

from kubeopera.deploy.kafka import free_port
from kubeopera.deploy.testcluster import LocalCluster

DEPLOYMENT = "bench"
POLICY: dict[str, Any] = {
    "rules": [
        {"name": "auto-scale", "roles": ["requester"], "actions": ["scale"],
         "clusters": ["kube"], "namespaces": [NAMESPACE], "auto_approve": True},
    ],
}  # fmt: skip


class Service:
    """``kubeopera actions serve`` as a process of its own."""

    def __init__(self, folder: Path, admin: client.ApiClient) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        settings = write_config(folder / "config", POLICY)
        kubeconfig = _service_kubeconfig(admin, folder / "kubeconfig")
        arguments = ["kubeopera", "actions", "serve", "--port", str(port),
                     "--config", str(settings), "--kubeconfig", str(kubeconfig)]  # fmt: skip
        env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(folder / "store")}
        env.pop("KUBEOPERA_CONFIG", None)
        self.log = (folder / "service.log").open("wb")
        self.process = subprocess.Popen(arguments, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited: see {folder / 'service.log'}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the service did not start within 60 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


def _service_kubeconfig(admin: client.ApiClient, path: Path) -> Path:
    """A kubeconfig of the service's ServiceAccount (its manifest's)."""
    ca = Path(admin.configuration.ssl_ca_cert).read_bytes()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "actions",
        "clusters": [{"name": "test", "cluster": {
            "server": admin.configuration.host,
            "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": "actions", "user": {"token": service_token(admin)}}],
        "contexts": [{"name": "actions", "context": {"cluster": "test", "user": "actions"}}],
    }))  # fmt: skip
    return path


def _quantiles(seconds: list[float]) -> str:
    cut = statistics.quantiles(seconds, n=100) if len(seconds) > 1 else seconds * 99
    p50, p99, most = (1000 * s for s in (cut[49], cut[98], max(seconds)))
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {most:.0f} ms"


def latency(service: Service, admin: client.ApiClient, alice: str, count: int) -> list[str]:
    """``count`` scale requests created and applied one after the other; their ids."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {alice}"
    totals, creates, applies, ids = [], [], [], []
    for index in range(count):
        replicas = 3 + index % 2  # the Deployment starts at 2: each request changes it
        body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE,
                "name": DEPLOYMENT, "params": {"replicas": replicas}}  # fmt: skip
        began = time.perf_counter()
        created = session.post(f"{service.url}/v1/requests", json=body, timeout=60)
        asked = time.perf_counter()
        assert created.status_code == 201, created.text
        request = created.json()
        assert request["state"] == "approved", request
        applied = session.post(f"{service.url}/v1/requests/{request['id']}/apply", timeout=60)
        done = time.perf_counter()
        assert applied.status_code == 200 and applied.json()["state"] == "applied", applied.text
        totals.append(done - began)
        creates.append(asked - began)
        applies.append(done - asked)
        ids.append(request["id"])
    live = read(admin, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}")
    listed = session.get(f"{service.url}/v1/requests?state=applied&limit=1", timeout=60).json()
    print(f"latency, create to applied, {count} scale requests one after another:")
    print(f"  total  {_quantiles(totals)} (mean {statistics.mean(totals) * 1000:.0f} ms)")
    print(f"  create {_quantiles(creates)}")
    print(f"  apply  {_quantiles(applies)}")
    print(
        f"  {listed['total']} of {count} applied; the Deployment at {live['spec']['replicas']} "
        f"replicas, the last request's {3 + (count - 1) % 2}"
    )
    return ids


def reads(service: Service, carol: str, ids: list[str], readers: int, seconds: float) -> None:
    """``readers`` threads reading one request and a page of 20 in turn for ``seconds``."""
    kinds = ("GET /v1/requests/{id}", "GET /v1/requests?limit=20")
    took: dict[str, list[float]] = {kind: [] for kind in kinds}
    statuses: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(readers + 1)
    stop_at = [0.0]

    def reader(offset: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {carol}"
        mine: dict[str, list[float]] = {kind: [] for kind in kinds}
        seen: Counter[tuple[str, int]] = Counter()
        start.wait()
        index = offset
        while time.perf_counter() < stop_at[0]:
            kind = kinds[index % 2]
            path = f"/v1/requests/{ids[index % len(ids)]}" if index % 2 == 0 else "/v1/requests"
            began = time.perf_counter()
            answer = session.get(
                service.url + path, params={"limit": 20} if index % 2 else None, timeout=60
            )
            mine[kind].append(time.perf_counter() - began)
            seen[(kind, answer.status_code)] += 1
            index += 1
        with lock:
            for kind in kinds:
                took[kind].extend(mine[kind])
            statuses.update(seen)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    total = sum(len(v) for v in took.values())
    print(f"reads, {readers} client threads for {seconds:g} s (carol, a viewer):")
    print(f"  {total:,} requests, {total / elapsed:,.0f}/s")
    for kind in kinds:
        print(f"  {kind:27} {len(took[kind]) / elapsed:6,.0f}/s, {_quantiles(took[kind])}")
    failed = {f"{kind} {status}": n for (kind, status), n in statuses.items() if status != 200}
    print(f"  answers other than 200: {failed or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="scale requests to apply")
    parser.add_argument("--readers", type=int, default=4, help="client threads reading")
    parser.add_argument("--seconds", type=float, default=10, help="how long they read")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        cluster = LocalCluster(state=folder / "cluster", port=free_port())
        cluster.up()
        try:
            with config.new_client_from_config(config_file=str(cluster.kubeconfig)) as admin:
                install(admin)
                ensure(
                    client.CoreV1Api(admin).create_namespace,
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)),
                )
                create_deployment(admin, DEPLOYMENT, replicas=2)
                service = Service(folder, admin)
                try:
                    ids = latency(service, admin, token(admin, "alice"), args.requests)
                    reads(service, token(admin, "carol"), ids, args.readers, args.seconds)
                finally:
                    service.stop()
        finally:
            cluster.down()


if __name__ == "__main__":
    main()
