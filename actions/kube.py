"""The action service's calls to the Kubernetes API server: read an object, update it
(``PUT`` with its ``resourceVersion`` as the precondition, under the service's field
manager), delete it, evict a pod, list a node's pods, and review a caller's
token (TokenReview). Each write can be a server-side dry-run (``dryRun=All``): the API
server runs admission and validation and answers with the object it would store."""

import json
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubeopera.actions.remediations import Target
from kubeopera.collectors.kubernetes.api import get_json, send

API_PATHS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "Node": ("/api/v1", "nodes"),
    "Pod": ("/api/v1", "pods"),
}
"""Where each kind the remediations change is served."""


class KubeError(Exception):
    """The API server refused a call: ``status`` (HTTP), its ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ConflictError(KubeError):
    """The object changed since it was read (HTTP 409: the precondition failed)."""


def _path(target: Target) -> str:
    prefix, plural = API_PATHS[target.kind]
    scope = f"/namespaces/{target.namespace}" if target.namespace else ""
    return f"{prefix}{scope}/{plural}/{target.name}"


def _refused(error: ApiException) -> KubeError:
    try:
        message = str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        message = str(error.reason)
    kind = ConflictError if error.status == 409 else KubeError
    return kind(int(error.status or 0), message)


class Cluster:
    """One cluster's API server, as the service's own identity (``api``); writes are
    made under ``field_manager``."""

    def __init__(self, api: ApiClient, field_manager: str) -> None:
        self.api, self.field_manager = api, field_manager

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]],
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            return send(self.api, method, path, query, body)
        except ApiException as error:
            raise _refused(error) from None

    def _writes(self, dry_run: bool) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = [("fieldManager", self.field_manager)]
        return [*query, ("dryRun", "All")] if dry_run else query

    def get(self, target: Target) -> dict[str, Any] | None:
        """The object as served; None when there is none."""
        try:
            return get_json(self.api, _path(target))
        except ApiException as error:
            if error.status == 404:
                return None
            raise _refused(error) from None

    def replace(self, target: Target, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        """``PUT`` ``obj``, whose ``metadata.resourceVersion`` is the precondition;
        raises ``ConflictError`` when the object changed since, ``KubeError`` otherwise."""
        return self._send("PUT", _path(target), self._writes(dry_run), obj)

    def delete(self, target: Target, resource_version: str, dry_run: bool) -> dict[str, Any]:
        """Delete the object if it is still at ``resource_version`` (else ``ConflictError``)."""
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": resource_version},
        }
        if dry_run:
            options["dryRun"] = ["All"]
        return self._send("DELETE", _path(target), [], options)

    def pods_on(self, node: str) -> list[dict[str, Any]]:
        """The pods bound to ``node``, every namespace."""
        found = get_json(self.api, "/api/v1/pods", [("fieldSelector", f"spec.nodeName={node}")])
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    def evict(self, pod: dict[str, Any], dry_run: bool) -> str | None:
        """Evict ``pod`` (that very pod: its uid the precondition) through the eviction
        API; the API server's reason when it refuses (a PodDisruptionBudget allows no
        disruption now: HTTP 429), else None."""
        metadata = pod["metadata"]
        options: dict[str, Any] = {"preconditions": {"uid": metadata["uid"]}}
        if dry_run:
            options["dryRun"] = ["All"]
        eviction: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "deleteOptions": options,
        }
        path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/eviction"
        try:
            self._send("POST", path, [], eviction)
        except KubeError as refused:
            if refused.status in (429, 500):  # 500: more than one budget covers the pod
                return refused.message
            if refused.status == 404:  # gone already
                return None
            raise
        return None

    def review(self, token: str) -> tuple[str, list[str]] | None:
        """Who the API server says holds ``token`` (TokenReview): the user name and its
        groups; None when it does not authenticate it."""
        review = self._send(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            [],
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        return str(user.get("username", "")), list(user.get("groups") or [])
