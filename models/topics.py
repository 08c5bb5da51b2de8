"""Topic names and the model each carries; names are versioned with the schema."""

from dataclasses import dataclass
from enum import StrEnum

from kubeopera.models.actions import ActionAudit
from kubeopera.models.base import Contract
from kubeopera.models.baselines import Baseline
from kubeopera.models.budgets import Budget
from kubeopera.models.deadletter import DeadLetter
from kubeopera.models.events import KubeEvent
from kubeopera.models.findings import Finding
from kubeopera.models.metrics import MetricBatch
from kubeopera.models.objects import ObjectChange
from kubeopera.models.prices import NodePrice
from kubeopera.models.series import SeriesPoint


class Topic(StrEnum):
    OBJECTS = "kubeopera.objects.v1"
    EVENTS = "kubeopera.events.v1"
    METRICS = "kubeopera.metrics.v1"
    PRICES = "kubeopera.prices.v1"
    FINDINGS = "kubeopera.findings.v1"
    BASELINES = "kubeopera.baselines.v1"
    SERIES = "kubeopera.series.v1"
    BUDGETS = "kubeopera.budgets.v1"
    DEADLETTER = "kubeopera.deadletter.v1"
    ACTIONS = "kubeopera.actions.v1"


TOPIC_MODELS: dict[Topic, type[Contract]] = {
    Topic.OBJECTS: ObjectChange,
    Topic.EVENTS: KubeEvent,
    Topic.METRICS: MetricBatch,
    Topic.PRICES: NodePrice,
    Topic.FINDINGS: Finding,
    Topic.BASELINES: Baseline,
    Topic.SERIES: SeriesPoint,
    Topic.BUDGETS: Budget,
    Topic.DEADLETTER: DeadLetter,
    Topic.ACTIONS: ActionAudit,
}


Message = tuple[Topic, Contract]
"""A message on its way to a topic, before serialisation."""


def message_key(message: Contract) -> str:
    """The message's partition key, as docs/architecture.md section 2 lists it per topic."""
    if isinstance(message, DeadLetter):
        return message.message_key()
    key = getattr(message, "key", None)
    if key is None:
        raise TypeError(f"{type(message).__name__} is not a topic message")
    result: str = key()
    return result


@dataclass(frozen=True)
class TopicSettings:
    """How a topic is created: partitions and broker-side configs."""

    partitions: int
    config: dict[str, str]

    @property
    def compacted(self) -> bool:
        """Whether compaction may remove records: its offsets then have real holes."""
        return "compact" in self.config["cleanup.policy"]


def _topic(partitions: int, policy: str, retention_days: int | None = None) -> TopicSettings:
    config = {"cleanup.policy": policy}
    if retention_days is not None:
        config["retention.ms"] = str(retention_days * 24 * 3600 * 1000)
    return TopicSettings(partitions, config)


TOPIC_SETTINGS: dict[Topic, TopicSettings] = {
    # Latest state per object key: compaction keeps it, deletion bounds the history.
    Topic.OBJECTS: _topic(12, "compact,delete", retention_days=14),
    # As many partitions as metrics: the warnings processor keeps state per partition.
    Topic.EVENTS: _topic(12, "delete", retention_days=7),
    Topic.METRICS: _topic(12, "delete", retention_days=3),
    Topic.PRICES: _topic(3, "compact"),
    Topic.FINDINGS: _topic(6, "compact,delete", retention_days=30),
    # Reference data, like prices: the latest baseline of each object, kept until replaced.
    Topic.BASELINES: _topic(3, "compact"),
    # Hourly shares of each series, repartitioned by series for the anomaly and budget
    # processors; as many partitions as metrics, since those processors keep state.
    Topic.SERIES: _topic(12, "delete", retention_days=7),
    Topic.BUDGETS: _topic(1, "compact"),
    Topic.DEADLETTER: _topic(3, "delete", retention_days=30),
    # The action service's audit, keyed by request: a request's records in order.
    Topic.ACTIONS: _topic(3, "delete", retention_days=365),
}
"""Producers compress with zstd; brokers keep it as sent (Kafka's default)."""
