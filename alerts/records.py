"""The notifier's ClickHouse I/O: the findings it reads in embedded mode, the labels of
their subjects, the attempts it records (``v_alert_deliveries``), the notification log
it rebuilds from them, and the silences (``v_alert_silences``)."""

import json
from collections.abc import Iterable
from datetime import datetime

import polars as pl

from kubeopera.alerts.delivery import Attempt
from kubeopera.alerts.grouping import GroupId, LogEntry, Notification
from kubeopera.alerts.silences import Silence
from kubeopera.models import Finding, Subject
from kubeopera.reports.drift import findings_from
from kubeopera.reports.sql import FINDING_COLUMNS, literal, time_literal
from kubeopera.sinks.clickhouse import Store

DELIVERIES = "alert_deliveries"
SILENCES = "alert_silences"


def attempt_rows(
    notification: Notification, receiver: str, attempts: list[Attempt], told: bool
) -> list[dict[str, object]]:
    """Rows of ``alert_deliveries`` for ``attempts`` at ``notification``; with ``told``
    the last is marked as the one that settled it."""
    firing = [f.fingerprint for f in notification.firing]
    resolved = [f.fingerprint for f in notification.resolved]
    return [
        {
            "at": a.at,
            "subscription": notification.subscription.name,
            "receiver": receiver,
            "group_key": notification.group_key,
            "request": a.request.what,
            "attempt": a.number,
            "status_code": a.status,
            "outcome": a.outcome.value,
            "reason": a.reason,
            "seconds": a.seconds,
            "due_at": notification.due_at,
            "firing": firing,
            "resolved": resolved,
            "told": int(told and index == len(attempts) - 1),
        }
        for index, a in enumerate(attempts)
    ]


_DELIVERY_SCHEMA = pl.Schema(
    {
        "at": pl.Datetime("ms", "UTC"),
        "subscription": pl.String(),
        "receiver": pl.String(),
        "group_key": pl.String(),
        "request": pl.String(),
        "attempt": pl.UInt16(),
        "status_code": pl.UInt16(),
        "outcome": pl.String(),
        "reason": pl.String(),
        "seconds": pl.Float64(),
        "due_at": pl.Datetime("ms", "UTC"),
        "firing": pl.List(pl.String()),
        "resolved": pl.List(pl.String()),
        "told": pl.UInt8(),
    }
)


def record_attempts(store: Store, rows: list[dict[str, object]]) -> None:
    """Insert the rows of a step's attempts as one block."""
    if rows:
        store.insert(DELIVERIES, pl.DataFrame(rows, schema=_DELIVERY_SCHEMA))


def notification_log(store: Store) -> dict[GroupId, LogEntry]:
    """Each group's latest settled notification, what its receiver was last told, where
    that left findings firing (an entry with none decides as no entry)."""
    frame = store.query(
        f"SELECT subscription, group_key, argMax(firing, at) AS last_firing, "
        f"argMax(resolved, at) AS last_resolved, max(at) AS sent_at "
        f"FROM {DELIVERIES} WHERE told = 1 GROUP BY subscription, group_key "
        f"HAVING length(last_firing) > 0"
    )
    return {
        (row["subscription"], row["group_key"]): LogEntry(
            frozenset(row["last_firing"]), frozenset(row["last_resolved"]), row["sent_at"]
        )
        for row in frame.iter_rows(named=True)
    }


def save_silence(store: Store, silence: Silence, updated_at: datetime) -> None:
    """Insert ``silence`` (a new one, or a new version of one: the latest counts)."""
    row = silence.model_dump()
    row["matchers"] = json.dumps(silence.matchers, sort_keys=True)
    row["updated_at"] = updated_at
    frame = pl.DataFrame([row]).with_columns(pl.col("^.*_at$").dt.cast_time_unit("ms"))
    store.insert(SILENCES, frame)


def silences(store: Store) -> list[Silence]:
    """Every silence in its latest version, newest first."""
    frame = store.query(
        f"SELECT id, matchers, starts_at, ends_at, created_by, comment "
        f"FROM {SILENCES} FINAL ORDER BY starts_at DESC, id"
    )
    return [
        Silence.model_validate({**row, "matchers": json.loads(row["matchers"])})
        for row in frame.iter_rows(named=True)
    ]


def stored_findings(store: Store, resolved_since: datetime) -> list[Finding]:
    """The findings open now, and those resolved at or after ``resolved_since`` (UTC), in
    their latest state (``v_findings``), oldest change first."""
    return findings_from(
        store,
        f"SELECT {FINDING_COLUMNS} FROM v_findings WHERE status = 'open' "
        f"OR last_seen >= {time_literal(resolved_since)} ORDER BY last_seen, fingerprint",
    )


def finding_states(store: Store, since: datetime) -> list[Finding]:
    """Every state of every finding (opened, changed, resolved) seen at or after
    ``since`` (UTC), oldest first."""
    return findings_from(
        store,
        f"SELECT {FINDING_COLUMNS} FROM findings FINAL "
        f"WHERE last_seen >= {time_literal(since)} ORDER BY last_seen, fingerprint",
    )


def subject_labels(store: Store, subjects: Iterable[Subject]) -> dict[Subject, dict[str, str]]:
    """The labels of each subject's object in its latest version seen ({} when the store
    has none: a team, a budget's target)."""
    wanted = sorted(set(subjects), key=lambda s: (s.cluster, s.namespace, s.kind, s.name))
    if not wanted:
        return {}
    keys = ", ".join(
        "(" + ", ".join(literal(v) for v in (s.cluster, s.namespace, s.kind, s.name)) + ")"
        for s in wanted
    )
    frame = store.query(
        "SELECT cluster, namespace, kind, name, argMax(labels, observed_at) AS labels "
        f"FROM raw_objects WHERE (cluster, namespace, kind, name) IN ({keys}) "
        "GROUP BY cluster, namespace, kind, name"
    )
    found = {
        Subject(
            cluster=row["cluster"], namespace=row["namespace"], kind=row["kind"], name=row["name"]
        ): _as_dict(row["labels"])
        for row in frame.iter_rows(named=True)
    }
    return {s: found.get(s, {}) for s in wanted}


def _as_dict(labels: object) -> dict[str, str]:
    if isinstance(labels, dict):
        return {str(k): str(v) for k, v in labels.items()}
    if isinstance(labels, list):  # a Map read as key/value structs
        return {str(e["key"]): str(e["value"]) for e in labels}
    return {}
