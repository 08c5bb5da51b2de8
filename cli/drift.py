"""``kubeopera drift``: the open drift; the store's live objects compared with a manifest
set or with each other across clusters; ``drift approve`` to record the live state as the
baseline. Comparing from the command line runs the drift processor itself, in an embedded
engine on the store, so that its findings are those a running pipeline writes."""

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubeopera.models import Baseline, BaselineKind, Message, Topic
from kubeopera.settings import Settings

if TYPE_CHECKING:
    from kubeopera.sinks.clickhouse import Store

DRIFT_PROCESSORS = ("archive", "drift")
"""What a comparison from the command line runs: the baselines recorded, the findings."""


def declared_baselines(
    settings: Settings,
    source: str,
    cluster: str,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str,
) -> list[Baseline]:
    """The manifests at ``source`` (a directory, a file or ``URL@REF``) as declared
    baselines of ``cluster``'s objects, normalised by its API server when a kubeconfig
    is given (else as written), redacted as the collector redacts live objects.
    Raises ``ManifestError`` (one line) for what cannot be read or is refused."""
    from kubeopera.cli.collect import api_client, redactor
    from kubeopera.collectors.kubernetes.declared import as_written, normalised
    from kubeopera.collectors.manifests import load

    manifests = load(source)
    redacting = redactor(settings)
    if kubeconfig is not None:
        objects = normalised(
            api_client(kubeconfig, context), manifests, namespace=namespace, redactor=redacting
        )
    else:
        objects = as_written(manifests, namespace, redacting)
    now = datetime.now(UTC)
    return [_baseline(BaselineKind.DECLARED, source, cluster, obj, now) for obj in objects]


def approved_baselines(store: "Store", filters: dict[str, str], who: str) -> list[Baseline]:
    """The live objects matching ``filters`` (but those a controller made) as approved
    baselines, now."""
    from kubeopera.reports import live_objects
    from kubeopera.streams.object_diff import comparable

    now = datetime.now(UTC)
    return [
        _baseline(BaselineKind.APPROVED, f"approved by {who}", o.cluster, comparable(o.object), now)
        for o in live_objects(store, filters)
        if not o.owner_chain
    ]


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


def compare(settings: Settings, store: "Store", baselines: Sequence[Baseline]) -> None:
    """Record ``baselines`` in the store and compare its live objects of the same
    clusters with them (and with the baselines recorded before): the drift processor's
    findings (opened, changed, resolved) go to the store as a pipeline's would."""
    from kubeopera.reports import live_objects

    engine = settings.engine(store, processors=DRIFT_PROCESSORS)
    objects: list[Message] = [
        (Topic.OBJECTS, change)
        for cluster in sorted({b.cluster for b in baselines})
        for change in live_objects(store, {"cluster": cluster})
    ]
    engine.process([*objects, *((Topic.BASELINES, b) for b in baselines)])
    engine.finish()


def publish(settings: Settings, baselines: Sequence[Baseline]) -> None:
    """Send ``baselines`` to the ``baselines`` topic, for the running workers."""
    from kubeopera.collectors.publisher import Publisher
    from kubeopera.collectors.topics import ensure_topics

    kafka = settings.kafka
    ensure_topics(kafka.bootstrap_servers, **kafka.client_options())
    with Publisher(kafka.bootstrap_servers, **kafka.client_options()) as publisher:
        publisher.publish_all((Topic.BASELINES, b) for b in baselines)
    if publisher.stats.failed:
        raise click.ClickException(f"{publisher.stats.failed} baselines could not be delivered")


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
    note = f"Compared {len(baselines)} declared objects from {source}; {len(absent)} not live"
    if absent:
        note += f" ({', '.join(absent[:5])}{', ...' if len(absent) > 5 else ''})"
    return note
