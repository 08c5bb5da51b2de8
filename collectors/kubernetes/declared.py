"""Declared objects as the API server would store them: the baseline that drift is
measured against, compared field by field with live objects.

The method is Argo CD's server-side diff (``argoproj/gitops-engine``, ``pkg/diff``:
``ServerSideDiff`` applies the manifest server-side in dry-run, and
``removeWebhookMutation`` keeps of the answer only the fields its field manager owns).
Each manifest goes to the API server as a server-side apply with ``dryRun=All`` under a
field manager of its own, forced; nothing is written. The answer is the object as it
would be stored (defaults added, quantities canonical: cpu ``0.5`` is ``500m``), and of
it only what that manager owns (its ``managedFields`` entry) is kept: exactly the fields
the manifest sets, in the server's form, without the defaults (``imagePullPolicy``,
``spec.strategy``) it does not set.
"""

import json
from collections.abc import Sequence
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubeopera.collectors.kubernetes.api import get_json, send
from kubeopera.collectors.kubernetes.changes import field_managers
from kubeopera.collectors.kubernetes.redact import UNKEYED, Redactor
from kubeopera.collectors.kubernetes.resources import Resource, known
from kubeopera.collectors.manifests import Manifest, ManifestError
from kubeopera.models.field_paths import owned

APPLY = "application/apply-patch+yaml"  # JSON is YAML: the manifest goes as JSON


def normalised(
    api: ApiClient,
    manifests: Sequence[Manifest],
    field_manager: str = "kubeopera-baseline",
    namespace: str = "default",
    redactor: Redactor = UNKEYED,
) -> list[dict[str, Any]]:
    """Each manifest (as ``load`` gives them) as the server would store it, cut down to
    the fields it declares: ``apiVersion``, ``kind``, ``metadata.name`` (and
    ``metadata.namespace`` for a namespaced kind, ``namespace`` where the manifest names
    none) and the fields ``field_manager`` owns in the dry-run's answer; one object per
    manifest, in order. A Deployment declaring ``cpu: "0.1"`` comes back as
    ``{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web",
    "namespace": "default", "labels": {...}}, "spec": {"selector": ..., "template": {...
    "containers": [{"name": "app", "image": ..., "resources": {"requests": {"cpu":
    "100m"}}}]}}}``, without the ``spec.strategy`` or ``imagePullPolicy`` the server adds.

    The objects are redacted as the collector redacts live objects, so that the two
    compare: pass the collector's ``redactor`` (the cluster's key) for equal markers.
    The whole answer is redacted before it is cut down, as a live object is whole.

    Raises ManifestError (``<manifest source>: <the server's message>``) when the server
    refuses a manifest (invalid, a kind it does not serve, forbidden, a namespace that
    does not exist); connection errors pass as they come (urllib3's ``HTTPError``).
    """
    resources: dict[tuple[str, str], Resource] = {}
    return [
        _normalised(api, manifest, field_manager, namespace, redactor, resources)
        for manifest in manifests
    ]


def as_written(
    manifests: Sequence[Manifest], namespace: str = "default", redactor: Redactor = UNKEYED
) -> list[dict[str, Any]]:
    """Each manifest as it is written, without an API server: redacted as ``normalised``
    redacts, ``metadata.namespace`` set to ``namespace`` where a namespaced kind names
    none (a kind the collector does not know is taken as namespaced). Defaults the server
    would add are not there (a declaration is compared only where it sets a field), but
    values keep the manifest's spelling: ``cpu: 0.5`` differs from a live ``500m``, so
    normalise against the cluster where manifests do not write what the server stores.
    """
    objects = []
    for manifest in manifests:
        document = manifest.document
        resource = known(document["apiVersion"], document["kind"])
        metadata = dict(document["metadata"])
        if resource is None or resource.namespaced:
            metadata["namespace"] = metadata.get("namespace") or namespace
        redacted = redactor.redact(document["kind"], {**document, "metadata": metadata})
        if "annotations" not in metadata:  # redaction adds an empty mapping
            redacted["metadata"].pop("annotations", None)
        objects.append(redacted)
    return objects


def _normalised(
    api: ApiClient,
    manifest: Manifest,
    field_manager: str,
    namespace: str,
    redactor: Redactor,
    resources: dict[tuple[str, str], Resource],
) -> dict[str, Any]:
    """One manifest's baseline; ``resources`` keeps where each kind is served."""
    document = manifest.document
    key = (document["apiVersion"], document["kind"])
    if key not in resources:
        resources[key] = _resource(api, manifest)
    resource = resources[key]
    metadata = dict(document["metadata"])
    if resource.namespaced:
        metadata["namespace"] = metadata.get("namespace") or namespace
    else:
        metadata.pop("namespace", None)  # as kubectl apply: no namespace for such a kind
    path = resource.object_path(metadata["name"], metadata.get("namespace", ""))
    query = [("dryRun", "All"), ("fieldManager", field_manager), ("force", "true")]
    try:
        answer = send(api, "PATCH", path, query, {**document, "metadata": metadata}, APPLY)
    except ApiException as error:
        raise ManifestError(f"{manifest.source}: {_message(error)}") from None
    fields = [
        field
        for manager in field_managers(answer.get("metadata") or {})
        if (manager.manager, manager.operation, manager.subresource) == (field_manager, "Apply", "")
        for field in manager.fields
    ]
    kept = owned(redactor.redact(resource.kind, answer), fields)
    identity = {"name": metadata["name"]} | (
        {"namespace": metadata["namespace"]} if resource.namespaced else {}
    )
    return {
        "apiVersion": answer.get("apiVersion", resource.api_version),
        "kind": answer.get("kind", resource.kind),
        "metadata": identity | kept.pop("metadata", {}),
        **kept,
    }


def _resource(api: ApiClient, manifest: Manifest) -> Resource:
    """Where the API serves the manifest's kind: one the collector watches, or else as
    API discovery (``/api/v1``, ``/apis/<group>/<version>``) lists it."""
    api_version, kind = manifest.document["apiVersion"], manifest.document["kind"]
    resource = known(api_version, kind)
    if resource is not None:
        return resource
    group, _, version = api_version.rpartition("/")
    try:
        listing = get_json(api, f"/apis/{group}/{version}" if group else f"/api/{version}")
    except ApiException as error:
        if error.status == 404:
            raise ManifestError(f"{manifest.source}: the server serves no {api_version}") from None
        raise ManifestError(f"{manifest.source}: {_message(error)}") from None
    for served in listing.get("resources") or []:
        if served.get("kind") == kind and "/" not in served.get("name", "/"):  # no subresource
            return Resource(group, version, kind, served["name"], bool(served.get("namespaced")))
    raise ManifestError(f"{manifest.source}: the server serves no kind {kind} in {api_version}")


def _message(error: ApiException) -> str:
    """The server's message (its Status's) on one line, else the HTTP status."""
    try:
        message = str(json.loads(error.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        message = f"{error.status} {error.reason}"
    return " ".join(message.split())
