"""Field paths as the change timeline, drift and field ownership name them: JSON
pointers (RFC 6901) in which the items of a list Kubernetes merges by a key are named
by that key, as strategic merge patch and Kustomize name them
(``/spec/template/spec/containers/[name=app]/image``).

>>> item("name", "app"), escaped("a/b~c")
('[name=app]', 'a~1b~0c')
"""

from typing import Any

MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),  # a container's ports; a Service's
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey",),
    "resourceClaims": ("name",),
}
"""Lists Kubernetes merges by a key (the ``patchMergeKey`` of the API's types), by field
name; the first key that every item has, once, is used."""


def escaped(segment: Any) -> str:
    """A JSON pointer segment (RFC 6901: ``~`` and ``/`` escaped)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def item(key: str, value: Any) -> str:
    """The segment of a merged list's item whose ``key`` is ``value``."""
    return f"[{key}={escaped(value)}]"
