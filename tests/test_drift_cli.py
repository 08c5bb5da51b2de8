"""``kubeopera drift`` as a user meets it, on a store the simulated fleet was run into:
the open drift, the same found again from the manifests the simulator declared (written
to files), the fleet's environment difference across clusters, approval, and one-line
errors for what cannot be read."""

import json
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_tools import run_kubeopera, stored
from kafka_tools import read_all
from test_drift import SIMULATED

from kubeopera.collectors.simulator import simulate
from kubeopera.collectors.simulator.declared import write_declared
from kubeopera.deploy.kafka import Broker
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
    table = kubeopera(data, "drift", "--across", f"{PROD},{STAGING}", "--namespace", "monitoring")
    assert "[name=grafana]" in table.stdout  # a path prints as it is, not as markup


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
    data, declared = fleet
    repository = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    (repository / "web.yaml").write_text((next((declared / PROD).rglob("*.yaml"))).read_text())
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
    good = kubeopera(data, "drift", "--baseline", f"{repository}@HEAD", "--cluster", PROD)
    assert good.returncode == 0, good.stderr
    assert "Compared 1 declared objects" in good.stdout + good.stderr


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
