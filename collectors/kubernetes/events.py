"""Kubernetes Events (core/v1) to ``KubeEvent`` messages.

Events come in two generations: old ones carry first/lastTimestamp and count, new ones
(events.k8s.io) eventTime and a series. The latest moment any of them names is the
event's time; an Event that names none (it happens) falls back to its creation time.
The message is redacted: a failing command or probe may quote a credential.
"""

from datetime import datetime
from typing import Any

from kubeopera.collectors.kubernetes.redact import UNKEYED, Redactor
from kubeopera.models import KubeEvent, ObjectRef
from kubeopera.models.events import EventSource


def to_event(
    cluster: str, event: dict[str, Any], observed_at: datetime, redactor: Redactor = UNKEYED
) -> KubeEvent:
    metadata = event.get("metadata") or {}
    involved = event.get("involvedObject") or event.get("regarding") or {}
    series = event.get("series") or {}
    source = event.get("source") or {}
    times = [
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        metadata.get("creationTimestamp"),
    ]
    last = next((t for t in times if t), None)
    return KubeEvent(
        cluster=cluster,
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        uid=metadata.get("uid", ""),
        type=event.get("type") or "Normal",
        reason=event.get("reason") or "",
        message=redactor.text(event.get("message") or event.get("note") or "", "message"),
        involved=ObjectRef(
            kind=involved.get("kind", ""),
            namespace=involved.get("namespace", ""),
            name=involved.get("name", ""),
            uid=involved.get("uid", ""),
        ),
        source=EventSource(
            component=source.get("component") or event.get("reportingComponent") or "",
            host=source.get("host") or "",
        ),
        count=event.get("count") or series.get("count") or 1,
        first_time=event.get("firstTimestamp") or event.get("eventTime"),
        last_time=last or observed_at,
    )
