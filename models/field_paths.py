"""Field paths as the change timeline, drift and field ownership name them: JSON
pointers (RFC 6901) in which the items of a list Kubernetes merges by a key are named
by that key, as strategic merge patch and Kustomize name them
(``/spec/template/spec/containers/[name=app]/image``).

>>> item("name", "app"), escaped("a/b~c")
('[name=app]', 'a~1b~0c')
"""

from collections.abc import Iterable
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


def owned(obj: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """``obj`` cut down to the fields at ``paths``, the fields a manager owns as
    ``field_managers`` names them. A path that others go on below keeps what they name;
    one that ends there keeps all of the value under it. A list's item ``[key=value]``
    keeps its key (that names it) and what is named below it; ``[value]``, an item of a
    set (named by its value, which paths do not hold), keeps the whole list; a number,
    the item at that index. Paths to what ``obj`` lacks, and the empty path, add nothing.

    >>> deployment = {"spec": {"replicas": 2, "paused": False, "template": {"spec": {
    ...     "containers": [
    ...         {"name": "app", "image": "shop:1.5", "imagePullPolicy": "Always",
    ...          "resources": {"requests": {"cpu": "100m"}}},
    ...         {"name": "istio-proxy", "image": "proxyv2:1"}]}}}}
    >>> app = "/spec/template/spec/containers/[name=app]"
    >>> owned(deployment, ["/spec/replicas", app, f"{app}/image", f"{app}/resources"])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'spec': {'replicas': 2, 'template': {'spec': {'containers':
        [{'name': 'app', 'image': 'shop:1.5', 'resources': {'requests': {'cpu': '100m'}}}]}}}}
    """
    tree: dict[str, Any] = {}
    for path in paths:
        if path:
            node = tree
            for segment in path.split("/")[1:]:
                node = node.setdefault(segment, {})
    if not tree:
        return {}
    projected: dict[str, Any] = _projected(obj, tree)
    return projected


def _projected(value: Any, tree: dict[str, Any]) -> Any:
    """``value`` cut down to ``tree``, the segments below it (none: all of it)."""
    if not tree:
        return value
    if isinstance(value, dict):
        return {
            key: _projected(inner, tree[escaped(key)])
            for key, inner in value.items()
            if escaped(key) in tree
        }
    if isinstance(value, list):
        if "[value]" in tree:
            return value
        kept = []
        for index, entry in enumerate(value):
            segment = _segment(entry, index, tree)
            if segment is not None:
                projected = _projected(entry, tree[segment])
                key = _item_key(segment)
                if key is not None and isinstance(projected, dict):
                    projected = {key: entry[key], **projected}
                kept.append(projected)
        return kept
    return value


def _segment(entry: Any, index: int, tree: dict[str, Any]) -> str | None:
    """The segment of ``tree`` that names a list's ``entry`` (at ``index``), if any."""
    if str(index) in tree:
        return str(index)
    if isinstance(entry, dict):
        for segment in tree:
            key = _item_key(segment)
            if key is not None and key in entry and item(key, entry[key]) == segment:
                return segment
    return None


def _item_key(segment: str) -> str | None:
    """The key a ``[key=value]`` segment names its item by."""
    if segment.startswith("[") and segment.endswith("]") and "=" in segment:
        return segment[1:].split("=", 1)[0]
    return None


ABSENT: Any = object()
"""What ``value_at`` answers for a field the object lacks."""


def value_at(obj: dict[str, Any], path: str) -> Any:
    """The value of the field at ``path`` (a path of ``owned``'s form), ``ABSENT`` when
    there is none.

    >>> pod = {"spec": {"containers": [{"name": "app", "image": "shop:1.4"}]}}
    >>> value_at(pod, "/spec/containers/[name=app]/image")
    'shop:1.4'
    >>> value_at(pod, "/spec/containers/[name=sidecar]/image") is ABSENT
    True
    """
    node: Any = obj
    for segment in path.split("/")[1:]:
        if isinstance(node, dict) and _unescaped(segment) in node:
            node = node[_unescaped(segment)]
        elif isinstance(node, list) and _item_key(segment) is not None:
            node = next((e for e in node if _names(e, segment)), ABSENT)
            if node is ABSENT:
                return ABSENT
        else:
            return ABSENT
    return node


def put(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the field at ``path`` (a path of ``owned``'s form) in ``obj`` to ``value``,
    making the mappings and merged lists' items on the way (an item ``[key=value]`` is
    made as ``{key: value}``). Raises ``ValueError`` for the empty path or one that goes
    through a value that is neither a mapping nor a merged list.

    >>> pod = {"spec": {"containers": [{"name": "app", "image": "shop:1.4"}]}}
    >>> put(pod, "/spec/containers/[name=app]/image", "shop:1.5")
    >>> put(pod, "/spec/containers/[name=sidecar]/image", "proxy:1")
    >>> put(pod, "/metadata/labels/app.kubernetes.io~1name", "shop")
    >>> pod  # doctest: +NORMALIZE_WHITESPACE
    {'spec': {'containers': [{'name': 'app', 'image': 'shop:1.5'},
                             {'name': 'sidecar', 'image': 'proxy:1'}]},
     'metadata': {'labels': {'app.kubernetes.io/name': 'shop'}}}
    """
    parent, last = _parent(obj, path, make=True)
    _place(parent, last, value, path)


def remove(obj: dict[str, Any], path: str) -> None:
    """Remove the field at ``path`` from ``obj`` (a merged list's item: the item); a
    field already absent is no error.

    >>> pod = {"spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]}}
    >>> remove(pod, "/spec/containers/[name=sidecar]"); remove(pod, "/spec/nodeName")
    >>> pod
    {'spec': {'containers': [{'name': 'app'}]}}
    """
    found = _parent(obj, path, make=False)
    if found is None:
        return
    parent, last = found
    if isinstance(parent, dict):
        parent.pop(_unescaped(last), None)
    else:
        parent[:] = [entry for entry in parent if not _names(entry, last)]


def _parent(obj: dict[str, Any], path: str, make: bool) -> Any:
    """The container holding ``path``'s last segment, and that segment (None when
    absent and not ``make``)."""
    segments = path.split("/")[1:]
    if not path or not segments:
        raise ValueError("the empty path names the whole object")
    node: Any = obj
    for here, segment in enumerate(segments[:-1]):
        following = segments[here + 1]
        fresh: Any = [] if _item_key(following) is not None else {}
        if isinstance(node, dict):
            key = _unescaped(segment)
            if key not in node or node[key] is None:
                if not make:
                    return None
                node[key] = fresh
            node = node[key]
        elif isinstance(node, list) and _item_key(segment) is not None:
            entry = next((e for e in node if _names(e, segment)), None)
            if entry is None:
                if not make:
                    return None
                entry = _new_item(segment)
                node.append(entry)
            node = entry
        else:
            raise ValueError(f"{path}: {'/'.join(segments[: here + 1])} holds no fields")
    return node, segments[-1]


def _place(parent: Any, segment: str, value: Any, path: str) -> None:
    if isinstance(parent, dict):
        parent[_unescaped(segment)] = value
    elif isinstance(parent, list) and _item_key(segment) is not None:
        at = next((i for i, e in enumerate(parent) if _names(e, segment)), None)
        if at is None:
            parent.append(value)
        else:
            parent[at] = value
    else:
        raise ValueError(f"{path}: the field's parent holds no fields")


def _names(entry: Any, segment: str) -> bool:
    key = _item_key(segment)
    return (
        isinstance(entry, dict)
        and key is not None
        and key in entry
        and (item(key, entry[key]) == segment)
    )


def _new_item(segment: str) -> dict[str, Any]:
    key, value = segment[1:-1].split("=", 1)
    return {key: int(value) if value.isdigit() else _unescaped(value)}  # a port is a number


def _unescaped(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")
