"""Sending what a command made (drift baselines, budgets) to Kafka for the running
workers."""

from collections.abc import Sequence

import click

from kubeopera.models import Contract, Topic
from kubeopera.settings import Settings


def publish(settings: Settings, topic: Topic, messages: Sequence[Contract], what: str) -> None:
    """Send ``messages`` to ``topic`` (created if missing). Raises ``ClickException``
    when some could not be delivered, naming ``what`` they are."""
    from kubeopera.collectors.publisher import Publisher
    from kubeopera.collectors.topics import ensure_topics

    kafka = settings.kafka
    ensure_topics(kafka.bootstrap_servers, **kafka.client_options())
    with Publisher(kafka.bootstrap_servers, **kafka.client_options()) as publisher:
        publisher.publish_all((topic, m) for m in messages)
    if publisher.stats.failed:
        raise click.ClickException(f"{publisher.stats.failed} {what} could not be delivered")
