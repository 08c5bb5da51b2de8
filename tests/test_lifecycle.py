"""Nothing KubeOpera starts outlives its starter: SIGTERM to a long-running command (the
worker, a dev server starting, a benchmark) ends it within seconds, and no process it
started is left running afterwards."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka_tools import start_worker

from kubeopera.deploy.kafka import Broker, free_port

ROOT = Path(__file__).resolve().parents[1]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def terminate_and_check(process: subprocess.Popen[bytes], started: set[int], within: float) -> None:
    """SIGTERM ``process``: it exits within ``within`` seconds, and so does everything in
    ``started`` (what it had started)."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=within)
    wait_for(lambda: not any(alive(p) for p in started), "the processes it started", 30)
    assert time.monotonic() - began < within


@pytest.mark.integration
def test_sigterm_stops_the_worker_within_seconds(kafka: Broker, tmp_path: Path) -> None:
    worker = start_worker(kafka, tmp_path / "store", "lifecycle", tmp_path / "worker")
    try:
        wait_for(lambda: b"acked" in (tmp_path / "lifecycle.log").read_bytes() or
                 b"Worker ready" in (tmp_path / "lifecycle.log").read_bytes(),
                 "the worker's start", 120)  # fmt: skip
        terminate_and_check(worker, descendants(worker.pid), within=15)
    finally:
        if worker.poll() is None:
            worker.kill()


@pytest.mark.integration
def test_sigterm_while_a_dev_broker_starts_leaves_no_broker(tmp_path: Path) -> None:
    state = tmp_path / "kafka"
    command = ["kubeopera", "dev", "kafka", "up", "--port", str(free_port()), "--state", str(state)]
    starter = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for((state / "broker.pid").exists, "the broker's start", 60)
        broker_pid = int((state / "broker.pid").read_text())
        terminate_and_check(starter, {broker_pid}, within=40)
    finally:
        Broker(state=state).down()


@pytest.mark.integration
def test_sigterm_to_a_benchmark_leaves_no_broker_worker_or_folder(tmp_path: Path) -> None:
    benchmark = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "kafka_pipeline.py"), "--only", "steady",
         "--clusters", "1", "--seconds", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    try:
        wait_for(
            lambda: any(" worker " in command_line(p) for p in descendants(benchmark.pid)),
            "the benchmark's worker",
            180,
        )
        started = descendants(benchmark.pid)
        assert any("kafka.Kafka" in command_line(p) for p in started)
        terminate_and_check(benchmark, started, within=60)
        assert not list(tmp_path.iterdir())  # its temporary folder is gone too
    finally:
        if benchmark.poll() is None:
            benchmark.kill()


@pytest.mark.integration
def test_the_readme_worker_recipe_writes_every_simulated_hour(tmp_path: Path) -> None:
    """``dev kafka up``, ``collect --simulate``, ``worker``, as the README has them: once
    the worker has read everything and its partitions are quiet, the newest hour closes
    too, so every sample collected is in a cost hour."""
    from kubeopera.sinks.clickhouse import ChdbBackend, Store

    port = free_port()
    env = {
        **os.environ,
        "KUBEOPERA_HOME": str(tmp_path / "home"),
        "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
    }
    for name in ("KUBEOPERA_STORAGE__PATH", "KUBEOPERA_CONFIG"):
        env.pop(name, None)

    def kubeopera(*args: str) -> None:
        subprocess.run(["kubeopera", *args], env=env, check=True, capture_output=True, timeout=300)

    kubeopera("dev", "kafka", "up", "--port", str(port))
    log = tmp_path / "worker.log"
    try:
        kubeopera("collect", "--simulate", "--clusters", "1", "--duration", "3h")
        with log.open("wb") as out:
            worker = subprocess.Popen(
                ["kubeopera", "worker", "--app-id", "kubeopera-worker", "--progress-every", "5s",
                 "--log-level", "info"],  # info: it says when an idle partition closed an hour
                env=env, stdout=out, stderr=out,
            )  # fmt: skip
        try:
            wait_for(lambda: "progress: lag 0 messages" in log.read_text(), "the drain", 180)
            # The newest hour closes once the metrics partition has been quiet for the
            # default --idle-after (30 s); a fixed wait for it once fell short under load.
            closed = re.compile(r"kubeopera\.metrics\.v1\[\d+\] idle: closed what was due")
            deadline = time.monotonic() + 180
            while not closed.search(log.read_text()) and time.monotonic() < deadline:
                time.sleep(1)
            time.sleep(5)  # the closed hour's rows are written before that line
        finally:
            terminate_and_check(worker, descendants(worker.pid), within=15)
    finally:
        kubeopera("dev", "kafka", "down")
    store = tmp_path / "home" / "clickhouse"
    with Store(ChdbBackend(store), raw_retention_days=0) as opened:
        hours = opened.query(
            "SELECT count(DISTINCT window_start) AS hours, sum(samples) AS samples "
            "FROM cost_allocation_hourly FINAL WHERE NOT is_idle"
        ).row(0, named=True)
        collected = opened.query("SELECT count() FROM raw_metrics FINAL").item()
    assert hours["hours"] == 3
    assert hours["samples"] == collected > 0
