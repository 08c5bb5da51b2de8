"""The kinds the collector watches, and where the API serves them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    metadata_only: bool = False  # Secrets: their data is never read, not even once

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """The cluster-wide collection (all namespaces)."""
        return f"{self._root}/{self.plural}"

    def object_path(self, name: str, namespace: str = "") -> str:
        """One object's URL path (``namespace`` is ignored for a cluster-scoped kind)."""
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{self._root}{scope}/{self.plural}/{name}"

    @property
    def _root(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @classmethod
    def parse(cls, text: str) -> "Resource":
        """A custom resource from ``group/version/Kind/plural`` (``.../Kind/plural/cluster``
        for a cluster-scoped one), e.g. ``argoproj.io/v1alpha1/Application/applications``."""
        parts = text.split("/")
        scoped = len(parts) == 5 and parts[4] == "cluster"
        if not (len(parts) == 4 or scoped) or not all(parts):
            raise ValueError(
                f"custom resource {text!r}: expected group/version/Kind/plural[/cluster], "
                "e.g. argoproj.io/v1alpha1/Application/applications"
            )
        return cls(parts[0], parts[1], parts[2], parts[3], namespaced=len(parts) == 4)


def _core(kind: str, plural: str, namespaced: bool = True) -> Resource:
    return Resource("", "v1", kind, plural, namespaced)


RESOURCES: tuple[Resource, ...] = (  # owners before what they own: chains resolve on list
    _core("Namespace", "namespaces", namespaced=False),
    _core("Node", "nodes", namespaced=False),
    Resource("batch", "v1", "CronJob", "cronjobs"),
    Resource("apps", "v1", "Deployment", "deployments"),
    Resource("apps", "v1", "StatefulSet", "statefulsets"),
    Resource("apps", "v1", "DaemonSet", "daemonsets"),
    Resource("batch", "v1", "Job", "jobs"),
    Resource("apps", "v1", "ReplicaSet", "replicasets"),
    _core("Pod", "pods"),
    _core("Service", "services"),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses"),
    _core("ConfigMap", "configmaps"),
    Resource("", "v1", "Secret", "secrets", metadata_only=True),
    _core("PersistentVolumeClaim", "persistentvolumeclaims"),
    _core("PersistentVolume", "persistentvolumes", namespaced=False),
    Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False),
    Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _core("ServiceAccount", "serviceaccounts"),
)
"""Object kinds, published as ``objects`` changes."""

EVENTS = _core("Event", "events")
"""Published on the ``events`` topic, not as object changes."""

OWNER_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet"})
"""Kinds whose objects own others: the collector remembers them to build owner chains."""


def known(api_version: str, kind: str) -> Resource | None:
    """The built-in resource (or Events) of that apiVersion and kind, if watched."""
    return next(
        (r for r in (*RESOURCES, EVENTS) if (r.api_version, r.kind) == (api_version, kind)), None
    )
