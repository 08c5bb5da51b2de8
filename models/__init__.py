"""Contracts every stage shares: one pydantic model per message and finding."""

from kubeopera.models.base import Contract, UtcDatetime
from kubeopera.models.baselines import Baseline, BaselineKind
from kubeopera.models.budgets import Budget, BudgetPeriod, BudgetScope
from kubeopera.models.deadletter import DeadLetter
from kubeopera.models.events import EventSource, KubeEvent
from kubeopera.models.findings import Finding, FindingKind, FindingStatus, Severity, Subject
from kubeopera.models.keys import IDLE, UNALLOCATED, node_key, object_key
from kubeopera.models.metrics import (
    ContainerSamples,
    MetricBatch,
    NodeCapacity,
    NodeUsage,
    PvcSamples,
)
from kubeopera.models.objects import (
    ChangeType,
    ContainerResources,
    ObjectChange,
    ObjectRef,
    OwnerRef,
    PodSummary,
)
from kubeopera.models.prices import CapacityType, NodePrice
from kubeopera.models.quantity import QuantityError, parse_quantity
from kubeopera.models.series import UNITS, SeriesKind, SeriesPoint, SeriesScope
from kubeopera.models.topics import (
    TOPIC_MODELS,
    TOPIC_SETTINGS,
    Message,
    Topic,
    TopicSettings,
    message_key,
)

__all__ = [
    "IDLE",
    "TOPIC_MODELS",
    "TOPIC_SETTINGS",
    "UNALLOCATED",
    "UNITS",
    "Baseline",
    "BaselineKind",
    "Budget",
    "BudgetPeriod",
    "BudgetScope",
    "CapacityType",
    "ChangeType",
    "ContainerResources",
    "ContainerSamples",
    "Contract",
    "DeadLetter",
    "EventSource",
    "Finding",
    "FindingKind",
    "FindingStatus",
    "KubeEvent",
    "Message",
    "MetricBatch",
    "NodeCapacity",
    "NodePrice",
    "NodeUsage",
    "ObjectChange",
    "ObjectRef",
    "OwnerRef",
    "PodSummary",
    "PvcSamples",
    "QuantityError",
    "SeriesKind",
    "SeriesPoint",
    "SeriesScope",
    "Severity",
    "Subject",
    "Topic",
    "TopicSettings",
    "UtcDatetime",
    "message_key",
    "node_key",
    "object_key",
    "parse_quantity",
]
