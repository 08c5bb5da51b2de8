"""Creating KubeOpera's topics with their partitions and configs (``models.topics``;
docs/architecture.md section 2)."""

import contextlib
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from kubeopera.models import TOPIC_SETTINGS


def ensure_topics(
    bootstrap: str, replication: int = 1, partitions: int | None = None, **security: Any
) -> list[str]:
    """Create every missing topic; returns the ones created. Existing topics are left as
    they are (changing partitions would move keys between partitions).

    ``partitions`` overrides every topic's count (small development brokers and tests).
    """
    admin = admin_client(bootstrap, **security)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=topic.value,
                num_partitions=partitions or settings.partitions,
                replication_factor=replication,
                topic_configs=settings.config,
            )
            for topic, settings in TOPIC_SETTINGS.items()
            if topic.value not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another client was quicker
                admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        admin.close()


def ensure_changelogs(bootstrap: str, topics: dict[str, int], **security: Any) -> list[str]:
    """Create compacted changelog topics (name -> partitions) that do not exist yet."""
    admin = admin_client(bootstrap, **security)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, partitions, 1, topic_configs={"cleanup.policy": "compact"})
            for name, partitions in topics.items()
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        admin.close()


class KafkaUnreachableError(KafkaError):  # type: ignore[misc]  # kafka-python is untyped
    """No broker answered: wrong address, broker down, or refused credentials."""

    def __str__(self) -> str:  # kafka-python prefixes the class name
        return str(self.args[0])


def admin_client(bootstrap: str, **security: Any) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="kubeopera-admin", **security
        )
    except KafkaError as error:
        protocol = security.get("security_protocol", "PLAINTEXT")
        raise KafkaUnreachableError(
            f"cannot reach Kafka at {bootstrap} over {protocol} ({type(error).__name__}): "
            "check kafka.bootstrap_servers, that the broker runs, and the security "
            "protocol and credentials"
        ) from error
