"""A real Kubernetes API server on loopback, for tests and development: no Docker.

``main.go`` beside this file runs kube-apiserver (the published ``k8s.io/kubernetes``
module, its staging modules pinned by ``replace`` lines in ``go.mod``) in-process over
an embedded etcd, with its own CA, TLS, RBAC authorization and an admin kubeconfig.
No kubelet, scheduler or controllers run: tests create objects through the API and
write their status themselves. ``build`` compiles it once per source version into the
cache (a cold build takes ~5 minutes on two cores); ``LocalCluster`` starts it detached,
waits until it is ready and stops it. A start is a fresh, empty cluster unless it is
asked to come back as it was (``up(fresh=False)``).

    python -m kubeopera.deploy.testcluster up --port 6443   # also: down, status, build
"""

import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kubeopera.deploy.kafka import DEFAULT_CACHE
from kubeopera.deploy.paths import default_path
from kubeopera.deploy.processes import Detached, stop

SOURCES = ("main.go", "go.mod", "go.sum")


class ClusterError(RuntimeError):
    """The API server cannot be built, started or stopped; the message says why."""


def build(cache: Path = DEFAULT_CACHE) -> Path:
    """The compiled server for these sources (built by Go on first use); returns its path."""
    package = resources.files("kubeopera.deploy.testcluster")
    sources = {name: package.joinpath(name).read_bytes() for name in SOURCES}
    digest = hashlib.sha256(b"".join(sources[name] for name in SOURCES)).hexdigest()[:12]
    binary = cache / f"testcluster-{digest}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ClusterError("Go is needed to build the test API server: see go.dev/doc/install")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, text in sources.items():
            (Path(folder) / name).write_bytes(text)
        partial = binary.with_suffix(".partial")
        result = subprocess.run(
            [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), "."],
            cwd=folder, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise ClusterError(f"building the test API server failed: {result.stderr[-2000:]}")
    partial.rename(binary)
    return binary


@dataclass
class LocalCluster(Detached):
    """One API server: ``state`` holds its certificates, etcd data, kubeconfig and log."""

    process_name = "apiserver"

    state: Path = field(default_factory=lambda: default_path("cluster"))
    port: int = 6443
    cache: Path = DEFAULT_CACHE
    # extra kube-apiserver flags; no kube-proxy runs, so aggregated APIs (metrics.k8s.io)
    # are reached at their Service's endpoints rather than its cluster IP
    apiserver_args: tuple[str, ...] = ("--enable-aggregator-routing=true",)

    @classmethod
    def at(cls, state: Path, port: int | None = None) -> "LocalCluster":
        """The cluster of ``state``: on the port it was started with, unless one is given."""
        saved = state / "apiserver.port"
        if port is None:
            port = int(saved.read_text()) if saved.exists() else 6443
        return cls(state=state, port=port)

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate; context ``testcluster-token``: a token)."""
        return self.state / "run" / "kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"stopped (state in {self.state})"
        return f"running, pid {pid}, {self.url}, kubeconfig {self.kubeconfig}"

    def up(self, timeout: float = 180, fresh: bool = True) -> None:
        """Start a cluster unless one runs; return once it serves requests. ``fresh``
        empties it first; otherwise it comes back with its objects, certificates and
        tokens (a restart: clients reconnect with the same kubeconfig)."""
        if self.pid() is not None:
            return
        binary = build(self.cache)
        if fresh:
            shutil.rmtree(self.state / "run", ignore_errors=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.log_file.write_bytes(b"")
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [str(binary), "-dir", str(self.state / "run"), "-port", str(self.port),
                 "--", *self.apiserver_args],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        (self.state / "apiserver.port").write_text(str(self.port))
        deadline = time.monotonic() + timeout
        try:  # a server that never gets ready, or a start interrupted, is not left behind
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise ClusterError(
                        f"the API server exited ({process.returncode}): {self._log_tail()}"
                    )
                if b"READY " in self.log_file.read_bytes():
                    return
                time.sleep(0.2)
            raise ClusterError(f"not ready within {timeout:.0f} s: {self._log_tail()}")
        except BaseException:
            self.down()
            raise

    def down(self, timeout: float = 10) -> None:
        """Stop it (SIGTERM: kube-apiserver shuts down cleanly, though open watches can keep
        it draining), killing it after ``timeout``; etcd's data is safe either way."""
        stop(self.pid_file, timeout)

    def _log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-1500:]
