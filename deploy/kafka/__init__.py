"""A single-node Apache Kafka broker (KRaft) on loopback, for development and tests.

Kafka comes from Maven Central (``pom.xml`` beside this file) into a local cache, not
from a tarball: only package registries are reachable here. ``Broker`` formats KRaft
storage once, starts the broker detached, waits until it answers a metadata request,
and stops it with SIGTERM (SIGKILL after a grace period). Its data directory survives a
stop, so a restarted broker keeps its topics and messages.

    python -m kubeopera.deploy.kafka up --port 9092    # also: down, status, fetch
"""

import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kubeopera.deploy.paths import default_path
from kubeopera.deploy.processes import Detached, stop

KAFKA_VERSION = "4.1.1"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kubeopera"


class BrokerError(RuntimeError):
    """The broker cannot be fetched, started or stopped; the message says why."""


def fetch(cache: Path = DEFAULT_CACHE) -> Path:
    """Kafka's jars in the cache (downloaded by Maven on first use); returns their folder."""
    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    maven = shutil.which("mvn")
    if maven is None:
        raise BrokerError("Maven (mvn) is needed to fetch Kafka: apt-get install maven")
    pom = resources.files("kubeopera.deploy.kafka").joinpath("pom.xml")
    with resources.as_file(pom) as pom_path:
        partial = libs.with_name("libs.partial")
        shutil.rmtree(partial, ignore_errors=True)
        result = subprocess.run(
            [maven, "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
             f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise BrokerError(f"Maven could not fetch Kafka {KAFKA_VERSION}: {result.stdout[-2000:]}")
    partial.rename(libs)
    return libs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Broker(Detached):
    """One broker: ``state`` holds its config, data, log and pid file."""

    process_name = "broker"

    state: Path = field(default_factory=lambda: default_path("kafka"))
    port: int = 9092
    controller_port: int = 0
    cache: Path = DEFAULT_CACHE
    heap: str = "512m"
    # user -> password: a second listener, SASL_PLAINTEXT with PLAIN, for these users
    sasl_users: dict[str, str] = field(default_factory=dict, repr=False)
    sasl_port: int = 0
    _libs: Path | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL listener (``sasl_users`` given): clients authenticate with PLAIN."""
        return f"127.0.0.1:{self.sasl_port}"

    @classmethod
    def at(cls, state: Path, port: int | None = None) -> "Broker":
        """The broker of ``state``: on the port it was started with, unless one is given."""
        saved = state / "broker.port"
        if port is None:
            port = int(saved.read_text()) if saved.exists() else 9092
        return cls(state=state, port=port)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"stopped (state in {self.state})"
        answering = "answering" if self.answers() else "not answering"
        return f"running, pid {pid}, {self.bootstrap}, {answering} (log {self.log_file})"

    def up(self, timeout: float = 90) -> None:
        """Start the broker unless it runs; return once it answers requests."""
        if self.pid() is not None:
            if self.answers():
                return
            raise BrokerError(f"a broker process runs (pid {self.pid()}) but does not answer")
        java = shutil.which("java")
        if java is None:
            raise BrokerError(
                "Java 17+ is needed for the Kafka broker: apt-get install openjdk-17-jre-headless"
            )
        libs = self._libs or fetch(self.cache)
        self.state.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        classpath = f"{libs}/*"
        if not (self.state / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            formatted = subprocess.run(
                # "=" keeps an id that starts with "-" from reading as an option
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 f"--cluster-id={cluster_id}", "-c", str(config)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if formatted.returncode != 0:
                raise BrokerError(
                    f"formatting KRaft storage failed: {formatted.stdout}{formatted.stderr}"
                )
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [java, f"-Xms{self.heap}", f"-Xmx{self.heap}",
                 f"-Dlog4j2.configurationFile={self.state / 'log4j2.properties'}",
                 "-cp", classpath, "kafka.Kafka", str(config)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        (self.state / "broker.port").write_text(str(self.port))
        deadline = time.monotonic() + timeout
        try:  # a broker that never answers, or a start interrupted, is not left behind
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise BrokerError(
                        f"the broker exited ({process.returncode}); see {self.log_file}"
                    )
                if self.answers():
                    return
                time.sleep(0.5)
            raise BrokerError(
                f"the broker did not answer on {self.bootstrap} within {timeout:.0f} s"
            )
        except BaseException:
            self.down()
            raise

    def down(self, timeout: float = 30) -> None:
        """Stop the broker cleanly (SIGTERM), killing it only if it hangs."""
        stop(self.pid_file, timeout)

    def answers(self) -> bool:
        """True when the broker serves a metadata request (not merely an open port)."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        with socket.socket() as probe:  # a closed port answers at once; a client would retry
            if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        except (KafkaError, OSError):
            return False
        try:
            admin.describe_cluster()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def _write_config(self) -> Path:
        if not self.controller_port:
            self.controller_port = free_port()
        data = self.state / "data"
        config = self.state / "server.properties"
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        sasl = []
        if self.sasl_users:
            self.sasl_port = self.sasl_port or free_port()
            listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}")
            users = " ".join(f'user_{u}="{p}"' for u, p in sorted(self.sasl_users.items()))
            sasl = [
                "sasl.enabled.mechanisms=PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
            ]
        config.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners={','.join(listeners)},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners={','.join(listeners)}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map="
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
                *sasl,
                f"log.dirs={data}",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
            ]) + "\n"
        )  # fmt: skip
        (self.state / "log4j2.properties").write_text(
            "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=out\n"
            "appender.out.type=Console\nappender.out.name=out\n"
            "appender.out.layout.type=PatternLayout\n"
            "appender.out.layout.pattern=[%d] %p %m (%c)%n\n"
        )
        return config
