"""The Kubernetes collector on a real API server: list and watch throughput, and RSS.

Starts a fresh test API server (``kubeopera dev cluster``'s) and a Kafka broker, creates
N pods (default 10,000, with requests, labels and owner references), then runs
``kubeopera collect`` against them and measures, from the ``objects`` topic's end
offsets: how fast the initial list is published (changes/s), how fast a burst of pod
updates made during the watch arrives, and the collector's peak RSS (target < 150 MB).

    python benchmarks/collector.py                  # 10,000 pods, 2,000 updates
    python benchmarks/collector.py --pods 2000 --updates 500
    python benchmarks/collector.py --rich           # pods with env, args, probes (redaction)
"""

import argparse
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kubernetes import client, config
from machine import describe  # benchmarks/machine.py

from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.deploy.processes import stop_on_sigterm
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models import Topic


def published(broker: Broker) -> int:
    """Messages on the objects topic so far."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        topic = Topic.OBJECTS.value
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def status_mib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) // 1024
    return 0


def wait_until(count: int, broker: Broker, timeout: float = 600) -> float:
    began = time.monotonic()
    while published(broker) < count:
        if time.monotonic() - began > timeout:
            raise SystemExit(f"timed out waiting for {count} messages")
        time.sleep(0.2)
    return time.monotonic() - began


def container(index: int, rich: bool) -> client.V1Container:
    """The pod's container; ``rich``: as real services have them (Online Boutique's env,
    args, probes), every 50 pods a workload of their own, its credentials its own."""
    requests = client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "128Mi"})
    if not rich:
        return client.V1Container(name="app", image="web:1", resources=requests)
    workload = index // 50
    env = {
        "PORT": "8080", "LOG_LEVEL": "info", "DISABLE_PROFILER": "1",
        "PRODUCT_CATALOG_SERVICE_ADDR": "productcatalogservice:3550",
        "CART_SERVICE_ADDR": "cartservice:7070", "REDIS_ADDR": "redis-cart:6379",
        "DATABASE_URL": f"postgres://shop:pw-{workload:04d}-x9@db-{workload}:5432/shop",
        "DB_PASSWORD": f"S3cret-{workload:04d}", "OTEL_SERVICE_NAME": f"svc-{workload}",
        "STRIPE_KEY": f"sk_live_{workload:024d}", "JAVA_OPTS": "-Xms256m -Xmx512m",
        "KEY_FILE_PATH": "/etc/keys/key.pem",
    }  # fmt: skip
    probe = client.V1Probe(
        _exec=client.V1ExecAction(command=["/bin/grpc_health_probe", "-addr=:8080"]),
        period_seconds=10,
    )
    return client.V1Container(
        name="app",
        image=f"registry.example.com/shop/svc-{workload}:v0.8.{workload % 10}",
        args=["--port=8080", f"--db-password=S3cret-{workload:04d}", "--log-format=json"],
        env=[client.V1EnvVar(name=k, value=v) for k, v in env.items()],
        resources=requests,
        readiness_probe=probe,
        liveness_probe=probe,
    )


def create_pods(api: client.ApiClient, pods: int, rich: bool) -> float:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bench")))

    def create(index: int) -> None:
        annotations = {"checksum/config": f"{index // 50:064x}"} if rich else None
        core.create_namespaced_pod(
            "bench",
            client.V1Pod(
                metadata=client.V1ObjectMeta(
                    name=f"web-{index:05d}",
                    labels={"app": "web", "team": f"t{index % 20}"},
                    annotations=annotations,
                ),
                spec=client.V1PodSpec(
                    node_name=f"node-{index % 100}", containers=[container(index, rich)]
                ),
            ),
        )

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(pods)))
    return time.monotonic() - began


def update_pods(api: client.ApiClient, updates: int) -> None:
    core = client.CoreV1Api(api)

    def update(index: int) -> None:
        body = {"metadata": {"labels": {"rev": "2"}}}
        core.patch_namespaced_pod(f"web-{index:05d}", "bench", body, field_manager="bench")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(update, range(updates)))


def main() -> None:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--updates", type=int, default=2_000)
    parser.add_argument(
        "--rich", action="store_true", help="pods with env, args and probes, as services have"
    )
    args = parser.parse_args()
    stop_on_sigterm()
    with tempfile.TemporaryDirectory() as folder, ExitStack() as cleanup:
        cluster = LocalCluster(state=Path(folder) / "cluster", port=free_port())
        broker = Broker(state=Path(folder) / "kafka", port=free_port())
        cleanup.callback(cluster.down)
        cluster.up()
        cleanup.callback(broker.down)
        broker.up()
        ensure_topics(broker.bootstrap)
        with config.new_client_from_config(config_file=str(cluster.kubeconfig)) as api:
            seconds = create_pods(api, args.pods, args.rich)
            print(f"created {args.pods:,} {'rich ' if args.rich else ''}pods in {seconds:.0f} s")
            env = {**os.environ, "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap}
            collector = subprocess.Popen(
                ["kubeopera", "collect", "--kubeconfig", str(cluster.kubeconfig),
                 "--cluster-name", "bench"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            cleanup.callback(lambda: collector.poll() is None and collector.kill())
            listed = wait_until(args.pods, broker)
            before = published(broker)
            rss_listed = status_mib(collector.pid, "VmRSS:")
            began = time.monotonic()
            update_pods(api, args.updates)
            wait_until(before + args.updates, broker)
            watched = time.monotonic() - began
            peak = status_mib(collector.pid, "VmHWM:")
            collector.terminate()
            collector.wait(timeout=60)
    print(
        f"list: {args.pods:,} pods published in {listed:.1f} s from start "
        f"({args.pods / listed:,.0f} changes/s, start-up included); RSS {rss_listed} MiB"
    )
    print(
        f"watch: {args.updates:,} pod updates made and published in {watched:.1f} s "
        f"({args.updates / watched:,.0f} changes/s, bounded by the API server's writes)"
    )
    print(f"collector peak RSS {peak} MiB (target < 150 MiB)")


if __name__ == "__main__":
    main()
