"""Drift as reports: the open drift, the store's live objects and recorded baselines as the
drift processor takes them (to compare them again from the command line), and the same
workloads across clusters."""

import json
from collections.abc import Sequence

import polars as pl

from kubeopera.models import Baseline, Finding, ObjectChange, Subject
from kubeopera.models.objects import ChangeType
from kubeopera.reports.sql import (
    CLUSTERS_SQL,
    FINDING_COLUMNS,
    OPEN_FINDINGS_SQL,
    RECORDED_BASELINES_SQL,
    literal,
    live_objects_sql,
    open_drift_sql,
)
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.drift import across
from kubeopera.streams.object_diff import comparable


def open_drift(store: Store, filters: dict[str, str]) -> pl.DataFrame:
    """Open drift, one row per drifted field (``reports.sql.open_drift_sql``)."""
    return store.query(open_drift_sql(filters))


def live_objects(store: Store, filters: dict[str, str]) -> list[ObjectChange]:
    """The last version of each live object matching ``filters``, as the RESYNC the
    collector would send of it (its time, the time it was observed)."""
    rows = store.query(live_objects_sql(filters)).to_dicts()
    return [
        ObjectChange(
            cluster=row["cluster"], api_version=row["api_version"], kind=row["kind"],
            namespace=row["namespace"], name=row["name"], uid=row["uid"],
            resource_version=row["resource_version"], generation=row["generation"],
            observed_at=row["observed_at"], change=ChangeType(row["change"]),
            object=json.loads(row["object"]), owner_chain=json.loads(row["owner_chain"]),
            last_manager=row["last_manager"] or None,
        )
        for row in rows
    ]  # fmt: skip


def recorded_baselines(store: Store) -> list[Baseline]:
    """Every baseline version the store holds, oldest first."""
    return [
        Baseline(
            baseline=row["baseline"], origin=row["origin"], cluster=row["cluster"],
            api_version=row["api_version"], kind=row["kind"], namespace=row["namespace"],
            name=row["name"], object=json.loads(row["object"]) if row["object"] else None,
            recorded_at=row["recorded_at"],
        )
        for row in store.query(RECORDED_BASELINES_SQL).to_dicts()
    ]  # fmt: skip


def clusters(store: Store) -> list[str]:
    """The clusters the store holds objects of."""
    return store.query(CLUSTERS_SQL)["cluster"].to_list()


def open_findings(store: Store) -> list[Finding]:
    """Every finding open now, as the processor that found it last wrote it."""
    return findings_from(store, OPEN_FINDINGS_SQL)


def finding(store: Store, fingerprint: str) -> Finding | None:
    """The finding with ``fingerprint`` in its latest state (None when the store has none)."""
    where = f"fingerprint = {literal(fingerprint)}"
    found = findings_from(store, f"SELECT {FINDING_COLUMNS} FROM v_findings WHERE {where}")
    return found[0] if found else None


def findings_from(store: Store, sql: str) -> list[Finding]:
    """The findings of ``sql``, a query of ``FINDING_COLUMNS`` (``v_findings``' or
    ``findings``' columns), in its order."""
    return [
        Finding(
            kind=row["finding_kind"], severity=row["severity"],
            subject=Subject(cluster=row["cluster"], namespace=row["namespace"],
                            kind=row["kind"], name=row["name"]),
            fingerprint=row["fingerprint"], first_seen=row["first_seen"],
            last_seen=row["last_seen"], status=row["status"], summary=row["summary"],
            evidence=json.loads(row["evidence"] or "{}"), remediation=row["remediation"],
        )
        for row in store.query(sql).iter_rows(named=True)
    ]  # fmt: skip


def across_clusters(
    store: Store,
    clusters: Sequence[str],
    filters: dict[str, str],
    identity_label: str | None,
    kinds: Sequence[str],
) -> tuple[pl.DataFrame, list[str]]:
    """Where the same workloads differ between ``clusters`` (``streams.drift.across``):
    one row per workload and field, with ``namespace``, ``kind``, ``name`` (of the first
    cluster that has it), ``path`` and one column per cluster holding its value (JSON;
    NULL where absent); a workload missing from some cluster is one row with path ``/``
    and ``"live"`` where it is. Objects are the same workload when their namespace, kind
    and name match, or with ``identity_label``, their kind and that label's value.
    Only objects of ``kinds`` are compared, and objects a controller made (with an
    owner) are left out. Also returns the label
    values left out because the label names several objects of a kind in one cluster
    (``kind=value in cluster``), which could not be paired."""
    found: dict[tuple[str, ...], dict[str, ObjectChange]] = {}
    ambiguous: set[tuple[str, ...]] = set()
    for cluster in clusters:
        for change in live_objects(store, {**filters, "cluster": cluster}):
            if change.owner_chain or change.kind not in kinds:
                continue
            if identity_label is None:
                identity: tuple[str, ...] = (change.namespace, change.kind, change.name)
            elif identity_label in (labels := change.object["metadata"].get("labels") or {}):
                identity = (change.kind, labels[identity_label])
            else:
                continue
            if cluster in found.setdefault(identity, {}):
                ambiguous.add((*identity, cluster))
            found[identity][cluster] = change
    left_out = {identity[:2] for identity in ambiguous}
    rows = []
    for identity, versions in found.items():
        if identity in left_out:
            continue
        first = versions[next(c for c in clusters if c in versions)]
        names = {"namespace": first.namespace, "kind": first.kind, "name": first.name}
        if len(versions) < len(clusters):
            rows.append({**names, "path": "/", **{c: '"live"' if c in versions else None
                                                  for c in clusters}})  # fmt: skip
            continue
        objects = {c: comparable(versions[c].object) for c in clusters}
        rows.extend({**names, "path": path, **values} for path, values in across(objects).items())
    schema = {c: pl.String() for c in ("namespace", "kind", "name", "path", *clusters)}
    table = pl.DataFrame(rows, schema=schema).sort("namespace", "kind", "name", "path")
    return table, sorted(f"{kind}={value} in {cluster}" for kind, value, cluster in ambiguous)
