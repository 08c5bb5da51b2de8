"""``kubeopera drift``: the open drift; the store's live objects compared with a manifest
set or with each other across clusters; ``drift approve`` to record the live state as the
baseline. Comparing from the command line runs the drift processor itself, in an embedded
engine on the store, so that its findings are those a running pipeline writes."""

import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubeopera.cli.publish import publish as send
from kubeopera.models import Baseline, BaselineKind, Message, Topic, message_key
from kubeopera.reports import across_clusters, clusters, live_objects, recorded_baselines
from kubeopera.settings import Settings
from kubeopera.streams.drift import WORKLOADS

if TYPE_CHECKING:
    import polars as pl

    from kubeopera.sinks.clickhouse import Store

DRIFT_PROCESSORS = ("archive", "drift")
"""What a comparison from the command line runs: the baselines recorded, the findings."""


@dataclass(frozen=True)
class Declared:
    """A manifest set (a directory, a file or ``URL@REF``) declaring ``cluster``'s
    objects, normalised by the cluster of ``kubeconfig`` when one is given."""

    source: str
    cluster: str
    kubeconfig: Path | None = None
    context: str | None = None


def load_declared(
    settings: Settings, store: "Store", declared: Declared, filters: dict[str, str], publish: bool
) -> str:
    """Record ``declared`` as its cluster's whole declaration (what it no longer names is
    withdrawn) and compare the store's live objects with it, or with ``publish`` send it
    to the running workers; returns a line saying what was done. Raises
    ``ClickException`` for a cluster the store does not know, ``ManifestError`` (one
    line) for manifests that cannot be read or are refused."""
    known_clusters(store, [declared.cluster])
    namespace = filters.get("namespace")
    baselines = declared_baselines(settings, declared, namespace or "default")
    if namespace is not None:  # the set declares this namespace only
        baselines = [b for b in baselines if b.namespace == namespace]
    if not baselines:
        where = f" in namespace {namespace}" if namespace else ""
        raise click.ClickException(f"{declared.source} declares no objects{where}")
    gone = withdrawn(store, baselines, namespace)
    if publish:
        send(settings, Topic.BASELINES, [*baselines, *gone], "baselines")
        line = f"published {len(baselines)} declared baselines from {declared.source}"
    else:
        live = compare(settings, store, [*baselines, *gone])
        line = compared_note(baselines, live, declared.source)
    return line + (f"; {len(gone)} no longer declared: withdrawn" if gone else "")


def declared_baselines(settings: Settings, declared: Declared, namespace: str) -> list[Baseline]:
    """The manifests as declared baselines of the cluster's objects, normalised by its
    API server when a kubeconfig is given (else as written), redacted as the collector
    redacts live objects. Raises ``ManifestError`` (one line) for what cannot be read
    or is refused."""
    from kubeopera.cli.collect import api_client, redactor
    from kubeopera.collectors.kubernetes.declared import as_written, normalised
    from kubeopera.collectors.manifests import ManifestError, load

    manifests = load(declared.source)
    redacting = redactor(settings)
    if declared.kubeconfig is not None:
        api = api_client(declared.kubeconfig, declared.context)
        objects = normalised(api, manifests, namespace=namespace, redactor=redacting)
    else:
        objects = as_written(manifests, namespace, redacting)
    now = datetime.now(UTC)
    baselines = [
        _baseline(BaselineKind.DECLARED, declared.source, declared.cluster, obj, now)
        for obj in objects
    ]
    sources: dict[str, str] = {}
    for manifest, baseline in zip(manifests, baselines, strict=True):
        first = sources.setdefault(baseline.object_key(), manifest.source)
        if first != manifest.source:  # which would hold is file order: point it out
            raise ManifestError(
                f"{first} and {manifest.source} both declare {baseline.kind} "
                f"{baseline.namespace + '/' if baseline.namespace else ''}{baseline.name}"
            )
    return baselines


def withdrawn(
    store: "Store", baselines: Sequence[Baseline], namespace: str | None = None
) -> list[Baseline]:
    """A manifest set is its cluster's whole declaration (of ``namespace`` only, when
    given): the declared baselines recorded before there that ``baselines`` do not name
    again, withdrawn (their drift resolves)."""
    named = {b.object_key() for b in baselines}
    declared_clusters = {b.cluster for b in baselines}
    latest: dict[str, Baseline] = {}
    for recorded in recorded_baselines(store):  # oldest first
        if (
            recorded.baseline == BaselineKind.DECLARED
            and recorded.cluster in declared_clusters
            and namespace in (None, recorded.namespace)
        ):
            latest[recorded.object_key()] = recorded
    now = max((b.recorded_at for b in baselines), default=datetime.now(UTC))
    return [
        b.model_copy(update={"object": None, "recorded_at": now})
        for key, b in sorted(latest.items())
        if key not in named and b.object is not None
    ]


def known_clusters(store: "Store", named: Sequence[str]) -> None:
    """Raises ``ClickException`` for the first of ``named`` the store holds no object of."""
    known = clusters(store)
    for cluster in named:
        if cluster not in known:
            raise click.ClickException(
                f"the store has no objects of cluster {cluster!r} (it has: {', '.join(known)})"
            )


def across_report(
    store: "Store", across: str, filters: dict[str, str], identity_label: str | None
) -> tuple["pl.DataFrame", list[str]]:
    """The differences between the clusters ``across`` names (``A,B[,...]``), and the
    notes under them. Raises ``UsageError`` for fewer than two, ``ClickException`` for a
    cluster the store does not know."""
    named = [c.strip() for c in across.split(",") if c.strip()]
    if len(set(named)) < 2:
        raise click.UsageError("--across needs two clusters or more: A,B")
    known_clusters(store, named)
    scope = {k: v for k, v in filters.items() if k != "cluster"}
    kinds = [scope.pop("kind")] if "kind" in scope else list(WORKLOADS)
    rows, ambiguous = across_clusters(store, named, scope, identity_label, kinds)
    notes = []
    if rows.is_empty():
        notes.append(f"No differences between {', '.join(named)} that match.")
    if ambiguous:
        notes.append(
            f"Left out, as {identity_label} names several objects of one kind in a "
            f"cluster: {', '.join(ambiguous[:5])}{', ...' if len(ambiguous) > 5 else ''}"
        )
    return rows, [*notes, f"Store: {store.describe()}"]


def approved_baselines(store: "Store", filters: dict[str, str], who: str) -> list[Baseline]:
    """The live objects matching ``filters`` (but those a controller made) as approved
    baselines, now."""
    from kubeopera.streams.object_diff import comparable

    now = datetime.now(UTC)
    return [
        _baseline(
            BaselineKind.APPROVED, f"approved by {who}", o.cluster,
            # an API server's lists leave each item's apiVersion and kind out
            comparable({**o.object, "apiVersion": o.api_version, "kind": o.kind}), now,
        )
        for o in live_objects(store, filters)
        if not o.owner_chain
    ]  # fmt: skip


def _baseline(
    kind: BaselineKind, origin: str, cluster: str, obj: dict[str, object], at: datetime
) -> Baseline:
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    return Baseline(
        baseline=kind, origin=origin, cluster=cluster, api_version=str(obj["apiVersion"]),
        kind=str(obj["kind"]), namespace=metadata.get("namespace", ""), name=metadata["name"],
        object=obj, recorded_at=at,
    )  # fmt: skip


def compare(settings: Settings, store: "Store", baselines: Sequence[Baseline]) -> set[str]:
    """Record ``baselines`` in the store and compare its live objects of the same
    clusters with them (and with the baselines recorded before): the drift processor's
    findings (opened, changed, resolved) go to the store as a pipeline's would. Returns
    the keys of the live objects compared (``cluster/kind/namespace/name``)."""
    engine = settings.engine(store, processors=DRIFT_PROCESSORS)
    objects: list[Message] = [
        (Topic.OBJECTS, change)
        for cluster in sorted({b.cluster for b in baselines})
        for change in live_objects(store, {"cluster": cluster})
    ]
    engine.process([*objects, *((Topic.BASELINES, b) for b in baselines)])
    engine.finish()
    return {message_key(change) for _, change in objects}


def approver() -> str:
    """Who approves: the user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown user"


def compared_note(baselines: Sequence[Baseline], live: set[str], source: str) -> str:
    """What was compared, and the declared objects the store has no live version of
    (``live``: the live objects' keys, ``cluster/kind/namespace/name``)."""
    absent = sorted(b.object_key() for b in baselines if b.object_key() not in live)
    objects = "1 declared object" if len(baselines) == 1 else f"{len(baselines)} declared objects"
    note = f"Compared {objects} from {source}; {len(absent)} not live"
    if absent:
        note += f" ({', '.join(absent[:5])}{', ...' if len(absent) > 5 else ''})"
    return note
