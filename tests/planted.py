"""The planted-credential matrix (tests/data/planted_credentials.yaml) built as Kubernetes
objects: one object per case, in the place the case names."""

import base64
import gzip
import hashlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeopera.collectors.kubernetes.resources import EVENTS, RESOURCES, Resource

MATRIX = Path(__file__).parent / "data" / "planted_credentials.yaml"
NAMESPACE = "planted"

APPLICATIONS_WATCH = "argoproj.io/v1alpha1/Application/applications"  # kubeopera collect --watch
APPLICATIONS = Resource.parse(APPLICATIONS_WATCH)
APPLICATION_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "applications.argoproj.io"},
    "spec": {
        "group": "argoproj.io",
        "names": {"kind": "Application", "plural": "applications", "singular": "application"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
"""Argo CD's Application, schema left open (the real one is large)."""

KIND = {r.kind: r for r in (*RESOURCES, EVENTS, APPLICATIONS)}


@dataclass(frozen=True)
class Case:
    index: int
    place: str
    value: str
    name: str = ""
    around: str = "@@"

    @property
    def id(self) -> str:
        return f"{self.index:02d}-{self.place}-{self.name or 'text'}"

    @property
    def text(self) -> str:
        return self.around.replace("@@", self.value)

    @property
    def traces(self) -> dict[str, str]:
        """What must not be found anywhere: the value, its base64, its plain SHA-256."""
        digest = hashlib.sha256(self.value.encode()).hexdigest()
        return {
            "value": self.value,
            "value (JSON-escaped)": json.dumps(self.value)[1:-1],
            "base64": base64.b64encode(self.value.encode()).decode(),
            "sha256": digest,
            "sha256 (marker-length prefix)": digest[:16],
        }

    def object(self) -> tuple[Resource, dict[str, Any]]:
        """The object that carries the case, as the API server would return it."""
        name = f"case-{self.index:02d}"
        kind, body = PLACES[self.place](self)
        metadata = {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"}
        metadata.update(body.pop("metadata", {}))
        resource = KIND[kind]
        return resource, {
            "apiVersion": resource.api_version,
            "kind": kind,
            "metadata": metadata,
            **body,
        }


def cases() -> list[Case]:
    return [Case(index, **row) for index, row in enumerate(yaml.safe_load(MATRIX.read_text()))]


def _deployment(
    container: dict[str, Any], metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "planted"}}, "spec": {"containers": [container]}}
    return {
        "metadata": metadata or {},
        "spec": {"selector": {"matchLabels": {"app": "planted"}}, "template": template},
    }


def _container(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "registry.example.com/shop/app:1.4.2", **fields}


def _application(source: dict[str, Any]) -> dict[str, Any]:
    destination = {"server": "https://kubernetes.default.svc", "namespace": "shop"}
    return {
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "chart", **source},
            "destination": destination,
        }
    }


def _nested(dotted: str, value: str) -> dict[str, Any]:
    """``a.b`` -> ``{"a": {"b": value}}``, as Helm reads ``--set a.b=value``."""
    node: Any = value
    for key in reversed(dotted.split(".")):
        node = {key: node}
    return dict(node)


def _helm_release(case: Case) -> dict[str, Any]:
    """A Helm 3 release Secret: its data is the release, values included, gzipped JSON in
    base64 (Helm's storage driver), which the collector never reads."""
    release = {"name": "shop", "config": _nested(case.name, case.value), "version": 1}
    blob = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    labels = {"name": "shop", "owner": "helm", "status": "deployed", "version": "1"}
    return {
        "metadata": {"name": "sh.helm.release.v1.shop.v1", "labels": labels},
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(blob.encode()).decode()},
    }


def _last_applied(case: Case) -> dict[str, Any]:
    applied = {"apiVersion": "v1", "kind": "Secret", "stringData": {case.name: case.value}}
    annotation = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}
    return _deployment(_container(), {"annotations": annotation})


def _event(case: Case) -> dict[str, Any]:
    involved = {"kind": "Pod", "namespace": NAMESPACE, "name": "shop-0", "uid": "uid-shop-0"}
    return {
        "involvedObject": involved,
        "reason": "Unhealthy",
        "message": case.text,
        "type": "Warning",
        "source": {"component": "kubelet"},
        "count": 1,
    }


PLACES = {
    "env": lambda c: (
        "Deployment",
        _deployment(_container(env=[{"name": c.name, "value": c.text}])),
    ),
    "command": lambda c: ("Deployment", _deployment(_container(command=shlex.split(c.text)))),
    "args": lambda c: (
        "Deployment",
        _deployment(_container(command=["/app"], args=shlex.split(c.text))),
    ),
    "probe": lambda c: (
        "Deployment",
        _deployment(_container(readinessProbe={"exec": {"command": shlex.split(c.text)}})),
    ),
    "http_probe": lambda c: (
        "Deployment",
        _deployment(_container(livenessProbe={"httpGet": {"path": c.text, "port": 8080}})),
    ),
    "annotation": lambda c: (
        "Deployment",
        _deployment(_container(), {"annotations": {c.name: c.text}}),
    ),
    "label": lambda c: ("Deployment", _deployment(_container(), {"labels": {c.name: c.text}})),
    "configmap": lambda c: ("ConfigMap", {"data": {c.name: c.text}}),
    "secret": lambda c: ("Secret", {"stringData": {c.name: c.text}, "type": "Opaque"}),
    "helm_release": lambda c: ("Secret", _helm_release(c)),
    "last_applied": lambda c: ("Deployment", _last_applied(c)),
    "helm_parameter": lambda c: (
        "Application",
        _application({"helm": {"parameters": [{"name": c.name, "value": c.text}]}}),
    ),
    "helm_values": lambda c: ("Application", _application({"helm": {"values": c.text}})),
    "custom_resource": lambda c: (
        "Application",
        _application({"helm": {"valuesObject": _nested(c.name, c.text)}}),
    ),
    "custom_resource_text": lambda c: (
        "Application",
        _application(
            {"plugin": {"name": "envsubst", "parameters": [{"name": "ref", "string": c.text}]}}
        ),
    ),
    "event": lambda c: ("Event", _event(c)),
}
