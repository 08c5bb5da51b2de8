"""``kubeopera demo --cluster``: the simulated cluster written into a real kube-apiserver
and seen by the real collector costs exactly what the simulator's own messages cost when
priced from node labels alone (the collector knows no spot market price)."""

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from kubernetes import client, config

from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.deploy.processes import running_pid
from kubeopera.models import KubeEvent, Message, NodePrice, ObjectChange
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine

START = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
SPEC = FleetSpec(
    clusters=1,
    pods_per_cluster=60,
    start=START,
    duration=timedelta(hours=8),
    resolution=timedelta(minutes=5),
    seed=7,
)
COST_ORDER = "namespace, window_start, node, pod, container"


def as_the_collector_sees_it(spec: FleetSpec) -> Iterator[list[Message]]:
    """The simulator's messages with its spot market prices dropped."""
    for messages in simulate(spec):
        yield [
            (topic, m.model_copy(update={"usd_per_hour": None}) if isinstance(m, NodePrice) else m)
            for topic, m in messages
        ]


TOPOLOGY = "'topology.kubernetes.io/region', 'topology.kubernetes.io/zone'"


def costs(store: Store) -> pl.DataFrame:
    """Every row but the uid; maps sorted (the API server returns labels in key order),
    without the topology labels the API server copies from a pod's node onto the pod."""
    return store.query(
        "SELECT * EXCEPT (pod_uid, labels, annotations), "
        f"mapSort(mapFilter((k, v) -> k NOT IN ({TOPOLOGY}), labels)) AS labels, "
        "mapSort(annotations) AS annotations "
        f"FROM cost_allocation_hourly FINAL ORDER BY {COST_ORDER}"
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(folder / "store")}
    args = ["--pods-per-cluster", "60", "--duration", "8h", "--resolution", "5m", "--seed", "7"]
    result = subprocess.run(
        ["kubeopera", "demo", "--cluster", "--cluster-state", str(folder / "cluster"), *args,
         "--start", START.strftime("%Y-%m-%d")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    return result, folder


@pytest.mark.integration  # kubeopera demo --cluster starts a kube-apiserver
def test_demo_through_the_api_server_costs_what_the_simulator_says(
    demo: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    result, folder = demo
    assert result.returncode == 0, result.stderr
    with Store(ChdbBackend(tmp_path / "reference"), raw_retention_days=0) as reference:
        EmbeddedEngine(reference).run(as_the_collector_sees_it(SPEC))
        expected = costs(reference)
    with Store(ChdbBackend(folder / "store")) as store:
        seen = costs(store)
        pod_uids = set(
            store.query("SELECT DISTINCT uid FROM raw_objects WHERE kind = 'Pod'")["uid"]
        )
        cost_uids = set(
            store.query("SELECT DISTINCT pod_uid FROM cost_allocation_hourly")["pod_uid"]
        )
        zones = store.query(
            "SELECT c.labels['topology.kubernetes.io/zone'] AS pod_zone, p.zone AS node_zone "
            "FROM cost_allocation_hourly AS c JOIN node_prices AS p USING (cluster, node) "
            "WHERE NOT c.is_idle"
        )
    assert expected.height > 500
    assert seen.equals(expected)
    simulated_uids = {
        m.uid for messages in simulate(SPEC) for _, m in messages if isinstance(m, ObjectChange)
    }
    # every pod was costed under the uid the API server gave it, none under the simulator's
    assert cost_uids - {""} <= pod_uids and not cost_uids & simulated_uids
    # PodTopologyLabels admission: each pod wears its node's zone
    assert zones.height > 0 and zones["pod_zone"].equals(zones["node_zone"])


@pytest.mark.integration  # kubeopera demo --cluster starts a kube-apiserver
def test_the_collector_reported_every_change_and_event_the_simulator_made(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, folder = demo
    assert result.returncode == 0, result.stderr
    simulated: Counter[tuple[str, str, str, str]] = Counter()
    edits: set[tuple[str, str, str]] = set()
    events: Counter[str] = Counter()
    for messages in simulate(SPEC):
        for _, m in messages:
            if isinstance(m, ObjectChange) and m.change == "DELETED":
                simulated[(m.kind, m.namespace, m.name, "DELETED")] += 1
            elif isinstance(m, ObjectChange) and m.last_manager == "kubectl-edit":
                edits.add((m.kind, m.namespace, m.name))
            elif isinstance(m, KubeEvent):
                events[m.reason] += 1
    with Store(ChdbBackend(folder / "store")) as store:
        deleted = store.query(
            "SELECT kind, namespace, name, count() AS n FROM raw_objects "
            "WHERE change = 'DELETED' GROUP BY kind, namespace, name"
        )
        managers = store.query(
            "SELECT kind, namespace, name, groupArray(last_manager) AS managers "
            "FROM raw_objects GROUP BY kind, namespace, name"
        )
        reasons = store.query("SELECT reason, count() AS n FROM raw_events FINAL GROUP BY reason")
    # each simulated deletion, exactly once
    reported = Counter({(*key, "DELETED"): n for *key, n in deleted.iter_rows()})
    assert reported == simulated
    # the field manager of each manual edit, read back from managedFields
    by_object = {(kind, ns, name): found for kind, ns, name, found in managers.iter_rows()}
    assert edits and all("kubectl-edit" in by_object[key] for key in edits)
    # every Event update the simulator made (its series count) is one raw event row
    assert dict(zip(reasons["reason"], reasons["n"], strict=True)) == dict(events)
    assert "Through kube-apiserver at https://127.0.0.1:" in result.stdout


@pytest.mark.integration  # kubeopera demo --cluster starts a kube-apiserver
def test_the_api_server_stops_with_the_demo(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, folder = demo
    assert running_pid(folder / "cluster" / "apiserver.pid") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cluster", "--clusters", "2"],
            "--cluster replays one cluster: drop --clusters or set it to 1",
        ),
        (["--leave-cluster-running"], "--leave-cluster-running needs --cluster"),
    ],
)
@pytest.mark.slow  # the `kubeopera` command as a subprocess
def test_cluster_options_that_make_no_sense_get_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        ["kubeopera", "demo", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"kubeopera: error: {message} (see kubeopera demo --help)"
    ]


@pytest.mark.integration  # kubeopera demo --cluster starts a kube-apiserver
def test_a_cluster_left_running_holds_the_demo_for_kubectl(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(tmp_path / "store")}
    result = subprocess.run(
        ["kubeopera", "demo", "--cluster", "--cluster-state", str(state), "--pods-per-cluster",
         "20", "--duration", "1h", "--resolution", "15m", "--leave-cluster-running"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr
        kubeconfig = state.resolve() / "run" / "kubeconfig"
        assert result.stdout.splitlines()[-2:] == [
            f"The API server keeps running: export KUBECONFIG={kubeconfig}",
            f"Stop it with: kubeopera dev cluster down --state {state}",
        ]
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            pods = client.CoreV1Api(api).list_pod_for_all_namespaces().items
        with Store(ChdbBackend(tmp_path / "store")) as store:
            stored = store.query(
                "SELECT DISTINCT uid FROM raw_objects WHERE kind = 'Pod' AND change != 'DELETED'"
                " AND uid NOT IN (SELECT uid FROM raw_objects WHERE change = 'DELETED')"
            )
        assert len(pods) > 20
        assert {p.metadata.uid for p in pods} == set(stored["uid"])  # what is left is there
    finally:
        down = subprocess.run(
            ["kubeopera", "dev", "cluster", "down", "--state", str(state)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert down.returncode == 0 and running_pid(state / "apiserver.pid") is None
