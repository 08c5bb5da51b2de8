"""``kubeopera collect``: a cluster's (or a simulated fleet's) streams, to Kafka or the
embedded pipeline."""

import signal
import threading
import time
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from kubeopera.cli.fleet import simulated
from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.topics import ensure_topics
from kubeopera.models import Message
from kubeopera.settings import Settings

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from kubeopera.collectors.kubernetes.redact import Redactor
    from kubeopera.collectors.simulator import FleetSpec


def publish_fleet(settings: Settings, spec: "FleetSpec") -> None:
    kafka = settings.kafka
    created = ensure_topics(kafka.bootstrap_servers, **kafka.client_options())
    if created:
        click.echo(f"created topics: {', '.join(created)}")
    began = time.perf_counter()
    with Publisher(
        kafka.bootstrap_servers, max_in_flight=kafka.max_in_flight, **kafka.client_options()
    ) as publisher:
        for messages in simulated(spec, "publishing"):
            publisher.publish_all(messages)
    seconds = time.perf_counter() - began
    stats = publisher.stats
    click.echo(
        f"published {stats.sent:,} messages to {kafka.bootstrap_servers} in {seconds:.1f} s "
        f"({stats.sent / seconds:,.0f}/s); {stats.failed} failed"
        + (f" (last error: {stats.last_error})" if stats.failed else "")
    )
    if stats.failed:
        raise click.ClickException(f"{stats.failed} messages could not be delivered")


def collect_cluster(
    settings: Settings,
    cluster_name: str,
    kubeconfig: Path | None,
    context: str | None,
    embedded: bool,
    custom: list[str],
    stop_after: float | None,
    scrape_seconds: float,
    usage_source: str = "auto",
) -> None:
    """Watch the cluster until SIGTERM, Ctrl-C or ``stop_after`` seconds."""
    from kubeopera.collectors.kubernetes.collector import Collector
    from kubeopera.collectors.kubernetes.resources import EVENTS, RESOURCES, Resource

    if embedded:  # the processors run here: their settings are checked before anything
        settings.build_processors()
    try:
        resources = [*RESOURCES, *(Resource.parse(text) for text in custom), EVENTS]
    except ValueError as error:
        raise click.ClickException(f"cannot use the cluster: {error}") from error
    api = api_client(kubeconfig, context)
    watching = partial(
        Collector,
        api,
        cluster_name,
        resources=resources,
        usage_every=timedelta(seconds=scrape_seconds) if scrape_seconds > 0 else None,
        usage_source=usage_source,
        redactor=redactor(settings),
    )
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if stop_after is not None:
        threading.Timer(stop_after, stop.set).start()
    began = time.perf_counter()
    if embedded:
        from kubeopera.streams.embedded import tune_gc_for_batches

        tune_gc_for_batches()
        with settings.open_store() as store:
            runner = settings.engine(store, settings.catalogue())
            lock = threading.Lock()

            def process(messages: list[Message]) -> None:
                with lock:
                    runner.process(messages)

            collector = watching(sink=process)
            collector.run(stop)
            runner.finish()
            where = store.describe()
    else:
        kafka = settings.kafka
        ensure_topics(kafka.bootstrap_servers, **kafka.client_options())
        with Publisher(
            kafka.bootstrap_servers, max_in_flight=kafka.max_in_flight, **kafka.client_options()
        ) as publisher:
            collector = watching(sink=publisher.publish_all)
            collector.run(stop)
        where = kafka.bootstrap_servers
    for kind, reason in sorted(collector.errors.items()):
        click.echo(f"{kind}: first list failed ({reason}); retried while watching", err=True)
    total = sum(collector.counts.values())
    click.echo(
        f"collected {total:,} changes of {len(collector.counts)} kinds from {cluster_name} "
        f"into {where} in {time.perf_counter() - began:.0f} s"
    )


def api_client(kubeconfig: Path | None, context: str | None) -> "ApiClient":
    """A client of the cluster of ``kubeconfig`` (its ``context``), or, without one, of
    the cluster this pod runs in. Raises ``ClickException`` when neither can be used."""
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig is None:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context
        )
    except (ConfigException, ValueError, OSError, yaml.YAMLError, TypeError, KeyError) as error:
        # TypeError, KeyError: YAML that is no kubeconfig (a string, a list)
        message = " ".join(str(error).split())  # a YAML error spans lines
        raise click.ClickException(f"cannot use the cluster: {message}") from error
    return api


def redactor(settings: Settings) -> "Redactor":
    """The collector's redaction, with the cluster's key (warns when none is set)."""
    from kubeopera.collectors.kubernetes.redact import Redactor

    key = settings.collector.redaction_key
    if key is None:
        click.echo(
            "warning: no collector.redaction_key: redaction markers are plain SHA-256 hashes, "
            "which a short secret can be guessed from; set KUBEOPERA_COLLECTOR__REDACTION_KEY",
            err=True,
        )
        return Redactor()
    return Redactor(key.get_secret_value().encode())
