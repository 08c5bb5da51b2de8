"""``kubeopera collect --simulate``: a simulated fleet's streams, published to Kafka."""

import time

import click

from kubeopera.cli.fleet import simulated
from kubeopera.cli.settings import Settings
from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.simulator import FleetSpec
from kubeopera.collectors.topics import ensure_topics


def publish_fleet(settings: Settings, spec: FleetSpec) -> None:
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
