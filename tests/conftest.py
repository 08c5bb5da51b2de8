"""Shared fixtures (a fresh embedded ClickHouse store per test; a real Kafka broker, a real
kube-apiserver and a real ClickHouse server on loopback) and the marking of tests by kind:
tests that use one of those real services, and end-to-end runs (``slow``), are
``integration`` tests."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from actions_tools import (
    NAMESPACE,
    POLICY,
    STATIC_TOKEN,
    Running,
    ensure,
    install,
    serving,
    token,
    write_config,
)
from kubernetes import client, config

from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.sinks.clickhouse import ChdbBackend, Store

sys.path.insert(0, str(Path(__file__).parent))

# No test writes into the user's data directory: every default path (the store, the
# worker's files, the dev broker) is in a folder of this run, for subprocesses too.
os.environ["KUBEOPERA_HOME"] = tempfile.mkdtemp(prefix="kubeopera-home-")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The fixtures below that start a real service (the ClickHouse engine counts, embedded
# or a server); modules and tests that start one themselves carry
# ``pytest.mark.integration`` on their own.
INTEGRATION_FIXTURES = frozenset(
    {"kafka", "kube_cluster", "clickhouse_server", "store", "actions_cluster", "actions_broker"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as ``integration`` every test that uses a real service, directly or through
    another fixture, and every ``slow`` one (an end-to-end run: the ``kubeopera`` command
    as a subprocess, a simulated fleet through the embedded pipeline, the wheel), so that
    ``pytest -m "not integration"`` leaves the fast unit and property tests."""
    for item in items:
        uses_a_service = INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses_a_service or item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The real ClickHouse engine (chDB) on a temporary directory."""
    with Store(ChdbBackend(tmp_path / "clickhouse"), raw_retention_days=0) as opened:
        yield opened


SERVER_CONFIG = """<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{port}</tcp_port>
  <http_port>{http_port}</http_port>
  <path>{path}/data/</path>
  <tmp_path>{path}/tmp/</tmp_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ClickHouseServer:
    """Debian's clickhouse-server on a loopback port, stoppable and restartable in place."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("clickhouse-server")
        if binary is None or not Path("/etc/clickhouse-server/users.xml").exists():
            pytest.skip("clickhouse-server is not installed (apt-get install clickhouse-server)")
        self.binary, self.folder, self.port = binary, folder, _free_port()
        self.config = folder / "config.xml"
        self.config.write_text(
            SERVER_CONFIG.format(port=self.port, http_port=_free_port(), path=folder)
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config-file={self.config}"], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        self.stop()
        log_tail = (self.folder / "server.log").read_text()[-2000:]
        pytest.fail(f"clickhouse-server did not listen on {self.port}: {log_tail}")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM, or with ``kill`` a crash (SIGKILL)."""
        if self.process is not None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """A real ClickHouse server on loopback (Debian's clickhouse-server, which .ci/run installs)."""
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Apache Kafka broker (KRaft, from Maven Central) on a free loopback port."""
    broker = Broker(state=tmp_path_factory.mktemp("kafka"), port=free_port())
    broker.up()
    yield broker
    broker.down()


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real kube-apiserver with embedded etcd on a free loopback port (built with Go)."""
    cluster = LocalCluster(state=tmp_path_factory.mktemp("cluster"), port=free_port())
    cluster.up()
    yield cluster
    cluster.down()


# The action service's (tests/actions_tools.py): a cluster and a broker of their own, so
# that what its tests make (nodes, namespaces, topics) is not in other tests' way.


@pytest.fixture(scope="session")
def actions_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real kube-apiserver for the action service's tests alone."""
    cluster = LocalCluster(state=tmp_path_factory.mktemp("actions-cluster"), port=free_port())
    cluster.up()
    yield cluster
    cluster.down()


@pytest.fixture(scope="session")
def actions_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Kafka broker for the action service's tests alone."""
    broker = Broker(state=tmp_path_factory.mktemp("actions-kafka"), port=free_port())
    broker.up()
    yield broker
    broker.down()


@pytest.fixture(scope="session")
def kube_admin(actions_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    """The cluster's admin, the service's manifest and the callers installed."""
    with config.new_client_from_config(config_file=str(actions_cluster.kubeconfig)) as api:
        install(api)
        ensure(
            client.CoreV1Api(api).create_namespace,
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)),
        )
        yield api


@pytest.fixture
def tokens(kube_admin: client.ApiClient) -> dict[str, str]:
    """Each caller's token, fresh."""
    names = ("alice", "bob", "carol", "dave", "mallory")
    return {name: token(kube_admin, name) for name in names} | {"ci-bot": STATIC_TOKEN}


@pytest.fixture
def actions_service(kube_admin: client.ApiClient, tmp_path: Path) -> Iterator[Running]:
    """The service with ``POLICY``, on a store of its own."""
    with serving(
        kube_admin, write_config(tmp_path / "config", POLICY), tmp_path / "store"
    ) as running:
        yield running
