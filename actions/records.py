"""The action service's ClickHouse I/O: requests (``action_requests``, newest version of
each), the answers kept for idempotency keys, the audit (``v_actions_audit``), and the
change timeline rows a rollback reads."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl

from kubeopera.actions.lifecycle import ActionRequest, State
from kubeopera.actions.remediations import Target
from kubeopera.models.actions import ActionAudit
from kubeopera.reports.sql import literal, time_literal
from kubeopera.sinks.clickhouse import Store

REQUESTS = "action_requests"
IDEMPOTENCY = "action_idempotency"
AUDIT = "action_audit"

_TIME = pl.Datetime("ms", "UTC")
_REQUEST_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.String,
    "version": pl.UInt64,
    "state": pl.String,
    "action": pl.String,
    "cluster": pl.String,
    "namespace": pl.String,
    "kind": pl.String,
    "name": pl.String,
    "requester": pl.String,
    "created_at": _TIME,
    "updated_at": _TIME,
    "body": pl.String,
}
_AUDIT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "at": _TIME,
    "audit_id": pl.String,
    "event": pl.String,
    "result": pl.String,
    "who": pl.String,
    "roles": pl.List(pl.String),
    "method": pl.String,
    "route": pl.String,
    "status": pl.UInt16,
    "request_id": pl.String,
    "action": pl.String,
    "cluster": pl.String,
    "namespace": pl.String,
    "kind": pl.String,
    "name": pl.String,
    "reason": pl.String,
    "before": pl.String,
    "after": pl.String,
}
AUDIT_COLUMNS = tuple(_AUDIT_SCHEMA)


def save_request(store: Store, request: ActionRequest) -> None:
    """Insert ``request``'s current version."""
    target = request.target
    row = {
        "id": request.id,
        "version": request.version,
        "state": request.state.value,
        "action": request.action.value,
        "cluster": target.cluster,
        "namespace": target.namespace,
        "kind": target.kind,
        "name": target.name,
        "requester": request.requester,
        "created_at": request.created_at,
        "updated_at": request.updated_at,
        "body": request.model_dump_json(),
    }
    store.insert(REQUESTS, pl.DataFrame([row], schema=_REQUEST_SCHEMA))


def load_request(store: Store, request_id: str) -> ActionRequest | None:
    """The request's newest version; None when there is no such request."""
    found = _requests(store, f"id = {literal(request_id)}", 1, 0)
    return found[0] if found else None


def unfinished(store: Store) -> list[ActionRequest]:
    """The requests a stopped service left applying or undoing."""
    states = ", ".join(literal(s) for s in (State.APPLYING, State.UNDOING))
    return _requests(store, f"state IN ({states})", 10_000, 0)


FILTERS = ("state", "action", "cluster", "namespace", "kind", "name", "requester")
"""What requests can be listed by (equality)."""


def list_requests(
    store: Store, filters: Mapping[str, str], limit: int, offset: int
) -> tuple[list[ActionRequest], int]:
    """A page of the requests matching ``filters`` (``FILTERS``), newest first, and how
    many match in all."""
    where = _where(filters) or "1"
    total = int(store.query(f"SELECT count() AS n FROM {REQUESTS} FINAL WHERE {where}")["n"][0])
    return _requests(store, where, limit, offset), total


def _requests(store: Store, where: str, limit: int, offset: int) -> list[ActionRequest]:
    frame = store.query(
        f"SELECT body FROM {REQUESTS} FINAL WHERE {where} "
        f"ORDER BY created_at DESC, id LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    return [ActionRequest.model_validate_json(body) for body in frame["body"]]


def _where(filters: Mapping[str, str]) -> str:
    return " AND ".join(f"{column} = {literal(value)}" for column, value in filters.items())


def record_audit(store: Store, records: list[ActionAudit]) -> None:
    """Insert ``records`` as one block."""
    if records:
        rows = [r.model_dump(mode="python", exclude={"schema_version"}) for r in records]
        store.insert(AUDIT, pl.DataFrame(rows, schema=_AUDIT_SCHEMA))


AUDIT_FILTERS = ("request_id", "who", "event", "result", "action", "namespace", "name")
"""What the audit can be listed by (equality)."""


def audit_log(
    store: Store, filters: Mapping[str, str], since: datetime | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the audit (``v_actions_audit``) newest first, and how many match."""
    conditions = [c for c in (_where(filters), since and f"at >= {time_literal(since)}") if c]
    where = " AND ".join(conditions) or "1"
    total = int(store.query(f"SELECT count() AS n FROM v_actions_audit WHERE {where}")["n"][0])
    frame = store.query(
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM v_actions_audit WHERE {where} "
        f"ORDER BY at DESC, audit_id LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    return frame.to_dicts(), total


def kept_answer(store: Store, caller: str, key: str) -> tuple[str, int, str] | None:
    """What was answered to ``caller``'s ``key``: the call's fingerprint, the status and
    the body (None: the key is new)."""
    frame = store.query(
        f"SELECT fingerprint, status, response FROM {IDEMPOTENCY} FINAL "
        f"WHERE caller = {literal(caller)} AND key = {literal(key)}"
    )
    if not frame.height:
        return None
    row = frame.row(0, named=True)
    return row["fingerprint"], int(row["status"]), row["response"]


def keep_answer(
    store: Store, caller: str, key: str, fingerprint: str, status: int, body: str, at: datetime
) -> None:
    """Keep the answer to ``caller``'s ``key``."""
    row = {
        "caller": caller,
        "key": key,
        "fingerprint": fingerprint,
        "status": status,
        "response": body,
        "at": at,
    }
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "caller": pl.String,
        "key": pl.String,
        "fingerprint": pl.String,
        "status": pl.UInt16,
        "response": pl.String,
        "at": _TIME,
    }
    store.insert(IDEMPOTENCY, pl.DataFrame([row], schema=schema))


def template_changes(
    store: Store, target: Target, uid: str, since: datetime
) -> list[dict[str, Any]]:
    """The change timeline's rows of the object's pod template (``/spec/template``) after
    ``since`` (UTC): ``path``, ``old``, ``observed_at``."""
    frame = store.query(
        "SELECT path, old, observed_at FROM object_changes FINAL "
        f"WHERE cluster = {literal(target.cluster)} AND namespace = {literal(target.namespace)} "
        f"AND kind = {literal(target.kind)} AND name = {literal(target.name)} "
        f"AND uid = {literal(uid)} AND change = 'MODIFIED' "
        f"AND startsWith(path, '/spec/template/') AND observed_at > {time_literal(since)} "
        "ORDER BY observed_at, path"
    )
    return frame.to_dicts()


def newest_template_change(store: Store, target: Target, uid: str) -> datetime | None:
    """When the object's pod template last changed, by the change timeline."""
    frame = store.query(
        "SELECT max(observed_at) AS at, count() AS n FROM object_changes FINAL "
        f"WHERE cluster = {literal(target.cluster)} AND namespace = {literal(target.namespace)} "
        f"AND kind = {literal(target.kind)} AND name = {literal(target.name)} "
        f"AND uid = {literal(uid)} AND change = 'MODIFIED' "
        "AND startsWith(path, '/spec/template/')"
    )
    return frame["at"][0] if frame["n"][0] else None
