"""``kubeopera drift`` as a user meets it, on a store the simulated fleet was run into:
the open drift, the same found again from the manifests the simulator declared (written
to files), the fleet's environment difference across clusters, approval, and one-line
errors for what cannot be read."""

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_tools import run_kubeopera, stored
from kafka_tools import read_all
from test_drift import SIMULATED

from kubeopera.collectors.simulator import simulate
from kubeopera.collectors.simulator.declared import write_declared
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import Baseline, ChangeType, Topic
from kubeopera.reports import live_objects, recorded_baselines
from kubeopera.settings import Settings
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine
from kubeopera.streams.registry import build

pytestmark = pytest.mark.slow  # the `kubeopera` command as a subprocess

PROD, STAGING = "prod-us-east-1", "staging-eu-west-1"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The store the simulated fleet ran into (every default processor), and the folder
    of its declared manifests."""
    folder = tmp_path_factory.mktemp("drift")
    data, declared = folder / "clickhouse", folder / "declared"
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        EmbeddedEngine(store, build()).run(simulate(SIMULATED))
        assert write_declared(recorded_baselines(store), declared) > 0
    return data, declared


def kubeopera(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_kubeopera(data, *args)


def drifted(data: Path, *args: str, baseline: str | None = None) -> set[tuple[str, ...]]:
    """The drifted fields ``kubeopera drift ARGS --format json`` lists (only those from
    ``baseline``, when given)."""
    result = kubeopera(data, "drift", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return {
        (row["cluster"], row["kind"], row["namespace"], row["name"], row["path"])
        for row in json.loads(result.stdout)
        if baseline in (None, row["baseline"])
    }


def test_open_drift_is_the_processors_and_the_declared_files_find_the_same(
    fleet: tuple[Path, Path],
) -> None:
    data, declared = fleet
    everywhere = stored(data, "SELECT * FROM v_drift_open").to_dicts()
    assert everywhere, "the fleet has manual edits left standing"
    cluster = everywhere[0]["cluster"]
    streamed = drifted(data, "--cluster", cluster)
    assert streamed == {
        (r["cluster"], r["kind"], r["namespace"], r["name"], r["path"])
        for r in everywhere
        if r["cluster"] == cluster
    }
    again = drifted(data, "--baseline", str(declared / cluster), "--cluster", cluster)
    assert again == streamed


def test_across_clusters_names_the_environment_difference(fleet: tuple[Path, Path]) -> None:
    data, _ = fleet
    result = kubeopera(
        data, "drift", "--across", f"{PROD},{STAGING}", "--namespace", "monitoring",
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "namespace": "monitoring", "kind": "Deployment", "name": "grafana",
            "path": "/spec/template/spec/containers/[name=grafana]/env/[name=GF_LOG_LEVEL]/value",
            PROD: '"info"', STAGING: '"debug"',
        }
    ]  # fmt: skip
    table = kubeopera(data, "sql", "SELECT '/spec/containers/[name=app]/image' AS path")
    assert "/spec/containers/[name=app]/image" in table.stdout  # as it is, not as markup


def test_an_approved_scope_drifts_when_changed_and_resolves_when_approved_again(
    fleet: tuple[Path, Path],
) -> None:
    data, _ = fleet
    approved = kubeopera(data, "drift", "approve", "--cluster", STAGING, "--namespace", "cart")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("approved ")
    scope = ("--cluster", STAGING, "--namespace", "cart")
    assert not drifted(data, *scope, baseline="approved")  # the live state is the baseline now
    # Someone scales a Deployment of the scope; the pipeline (which reads the approved
    # baselines back from the store) sees the change.
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        target = next(
            o for o in live_objects(store, {"cluster": STAGING, "namespace": "cart"})
            if o.kind == "Deployment"
        )  # fmt: skip
        edited = target.object | {"spec": target.object["spec"] | {"replicas": 9}}
        change = target.model_copy(
            update={
                "object": edited, "change": ChangeType.MODIFIED, "last_manager": "kubectl-scale",
                "observed_at": datetime.now(UTC) + timedelta(seconds=1),
            }
        )  # fmt: skip
        engine = Settings().engine(store)
        engine.process([(Topic.OBJECTS, change)])
        engine.finish()
    replicas = (STAGING, "Deployment", "cart", target.name, "/spec/replicas")
    assert drifted(data, *scope, baseline="approved") == {replicas}
    assert replicas in drifted(data, *scope)  # from the declared baseline too
    again = kubeopera(data, "drift", "approve", *scope)
    assert again.returncode == 0, again.stderr
    assert not drifted(data, *scope, baseline="approved")
    assert replicas in drifted(data, *scope)  # approving changes nothing declared


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "bad.yaml").write_text("a: [unclosed\n"), "bad.yaml: not YAML"),
        (lambda d: (d / "x.yaml").write_text("kind: Deployment\n"), "x.yaml"),
    ],
)
def test_a_manifest_that_cannot_be_read_is_one_line(
    fleet: tuple[Path, Path], tmp_path: Path, make: object, message: str
) -> None:
    data, _ = fleet
    make(tmp_path)  # type: ignore[operator]
    result = kubeopera(data, "drift", "--baseline", str(tmp_path), "--cluster", PROD)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("kubeopera: error: ") and message in line
    assert "Traceback" not in result.stderr


def test_a_git_ref_that_does_not_exist_is_one_line(
    fleet: tuple[Path, Path], tmp_path: Path
) -> None:
    """The declared files as a Git repository: a ref it lacks is one line; at HEAD it is
    the same declaration as the folder (the same drift, nothing withdrawn)."""
    data, declared = fleet
    repository = tmp_path / "repo"
    shutil.copytree(declared / PROD, repository)
    files = len(list(repository.rglob("*.yaml")))
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    for command in (
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "m"],
    ):
        subprocess.run(["git", "-C", str(repository), *command], check=True)
    result = kubeopera(data, "drift", "--baseline", f"{repository}@nope", "--cluster", PROD)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"kubeopera: error: git ref 'nope' not found in {repository}"
    )
    before = drifted(data, "--cluster", PROD, baseline="declared")
    good = kubeopera(data, "drift", "--baseline", f"{repository}@HEAD", "--cluster", PROD)
    assert good.returncode == 0, good.stderr
    assert f"Compared {files} declared objects from {repository}@HEAD; 0 not live\n" in good.stdout
    assert drifted(data, "--cluster", PROD, baseline="declared") == before


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own (the session's is where test_kafka_publish finds its
    topics not created yet)."""
    broker = Broker(state=tmp_path / "kafka", port=free_port())
    broker.up()
    yield broker
    broker.down()


@pytest.mark.integration
def test_published_baselines_reach_the_topic_for_the_workers(
    fleet: tuple[Path, Path], kafka: Broker
) -> None:
    """``--publish`` sends the declared (and approved) baselines to the baselines topic,
    keyed by baseline and object, instead of comparing here."""
    data, declared = fleet
    files = sorted((declared / PROD).rglob("*.yaml"))
    env = {"KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
    published = run_kubeopera(
        data, "drift", "--baseline", str(declared / PROD), "--cluster", PROD, "--publish",
        extra_env=env,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == f"published {len(files)} declared baselines from " + str(
        declared / PROD
    )
    approved = run_kubeopera(
        data, "drift", "approve", "--cluster", PROD, "--namespace", "monitoring", "--publish",
        extra_env=env,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    records = read_all(kafka.bootstrap, Topic.BASELINES.value)
    baselines = [Baseline.model_validate_json(r.value) for r in records]
    assert [r.key.decode() for r in records] == [b.key() for b in baselines]
    kinds = Counter(str(b.baseline) for b in baselines)
    assert kinds["declared"] == len(files)
    assert kinds["approved"] == int(approved.stdout.split()[1])
    assert {b.cluster for b in baselines} == {PROD}


def test_a_declared_set_is_the_clusters_whole_declaration(
    fleet: tuple[Path, Path], tmp_path: Path
) -> None:
    """Loading a set again without a manifest withdraws that object's baseline: its
    drift resolves; loading the whole set again brings it back."""
    data, declared = fleet
    everywhere = stored(data, "SELECT * FROM v_drift_open WHERE baseline = 'declared'")
    row = everywhere.row(0, named=True)
    cluster, name = row["cluster"], row["name"]
    whole = declared / cluster
    fewer = tmp_path / "fewer"
    shutil.copytree(whole, fewer)
    (gone,) = [p for p in fewer.rglob(f"*-{name}.yaml") if p.parent.name == row["namespace"]]
    gone.unlink()
    result = kubeopera(data, "drift", "--baseline", str(fewer), "--cluster", cluster)
    assert result.returncode == 0, result.stderr
    assert "; 1 no longer declared: withdrawn" in " ".join(result.stdout.split())
    assert name not in {n for _, _, _, n, _ in drifted(data, "--cluster", cluster)}
    again = drifted(data, "--baseline", str(whole), "--cluster", cluster)
    assert (cluster, row["kind"], row["namespace"], name, row["path"]) in again
    # With --namespace, the set declares that namespace alone: the others stay declared.
    other = next(p for p in whole.iterdir() if p.name != row["namespace"])
    scoped = kubeopera(
        data, "drift", "--baseline", str(other), "--cluster", cluster, "--namespace", other.name
    )
    assert scoped.returncode == 0, scoped.stderr
    assert "withdrawn" not in scoped.stdout
    assert (cluster, row["kind"], row["namespace"], name, row["path"]) in drifted(
        data, "--cluster", cluster
    )


def test_what_cannot_be_compared_is_one_line(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    """Clusters the store does not know, a kubeconfig that is not YAML, two manifests
    of one object, an alias bomb: each a single ``kubeopera: error:`` line."""
    data, declared = fleet
    manifest = next((declared / PROD).rglob("*.yaml"))
    twice = tmp_path / "twice"
    twice.mkdir()
    for copy in ("a.yaml", "b.yaml"):
        shutil.copy(manifest, twice / copy)
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 8)
    ]
    (bomb / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  "
        + "\n  ".join(levels)
        + "\n"
    )
    kubeconfig, text = tmp_path / "kubeconfig", tmp_path / "text"
    kubeconfig.write_text("garbage: [\n")
    text.write_text("just some text\n")  # YAML too: a string, no kubeconfig
    unnamed = tmp_path / "unnamed"  # the same object, its namespace left to the default
    unnamed.mkdir()
    (unnamed / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")
    (unnamed / "b.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: default}\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--across", f"{PROD},nowhere"], "the store has no objects of cluster 'nowhere'"),
        (["--baseline", str(declared / PROD), "--cluster", "nowhere"], "cluster 'nowhere'"),
        (["--baseline", str(declared / PROD), "--cluster", PROD, "--kubeconfig",
          str(kubeconfig)], "cannot use the cluster"),
        (["--baseline", str(declared / PROD), "--cluster", PROD, "--kubeconfig", str(text)],
         "cannot use the cluster"),
        (["--baseline", str(twice), "--cluster", PROD], "a.yaml and b.yaml both declare"),
        (["--baseline", str(unnamed), "--cluster", PROD],
         "a.yaml and b.yaml both declare ConfigMap default/cm"),
        (["--baseline", str(empty), "--cluster", PROD], "declares no objects"),
        (["--baseline", str(bomb), "--cluster", PROD], "cm.yaml: too large"),
        (["--identity-label", "app"], "--identity-label goes with --across"),
    ]  # fmt: skip
    for args, message in cases:
        result = kubeopera(data, "drift", *args)
        assert result.returncode != 0, args
        (line,) = result.stderr.strip().splitlines()[-1:]
        assert line.startswith("kubeopera: error: ") and message in line, (args, line)
        assert "Traceback" not in result.stderr


def test_across_names_the_workloads_only_some_clusters_run(fleet: tuple[Path, Path]) -> None:
    data, _ = fleet
    result = kubeopera(
        data, "drift", "--across", f"{PROD},{STAGING}", "--kind", "Deployment", "--format", "json"
    )
    rows = json.loads(result.stdout)
    only = [r for r in rows if r["path"] == "/"]
    assert only and all((r[PROD] is None) != (r[STAGING] is None) for r in only)
    live = {
        cluster: set(
            stored(data, f"SELECT DISTINCT namespace, name FROM raw_objects WHERE cluster = "
                         f"'{cluster}' AND kind = 'Deployment' AND change != 'DELETED'").rows()
        )
        for cluster in (PROD, STAGING)
    }  # fmt: skip
    assert {(r["namespace"], r["name"]) for r in only} <= live[PROD] ^ live[STAGING]
    everything = kubeopera(data, "drift", "--across", f"{PROD},{STAGING}", "--format", "json")
    kinds = {r["kind"] for r in json.loads(everything.stdout)}
    assert kinds <= {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "ConfigMap", "Service"}
