"""Rendering: the Kubernetes objects a collector would see, as the API server writes them.

Pure functions from the simulator's state to manifest dicts (Node, Namespace, workloads,
ReplicaSet, Pod with its container statuses). They draw no randomness and change no
state, so the same state always renders the same bytes.
"""

from copy import deepcopy
from datetime import datetime
from typing import Any

from kubeopera.collectors.simulator.fleet import POOL
from kubeopera.collectors.simulator.kube import cpu_text, memory_text, stamp
from kubeopera.collectors.simulator.state import ContainerSpec, Node, Pod, ReplicaSet, Workload
from kubeopera.models.objects import ChangeType, OwnerRef


def namespace_manifest(
    name: str, uid: str, labels: dict[str, str], created: datetime
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": uid,
            "labels": labels,
            "creationTimestamp": stamp(created),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node_manifest(node: Node, region: str) -> dict[str, Any]:
    itype = node.itype
    labels = {
        "karpenter.sh/capacity-type": node.capacity_type.value,
        "karpenter.sh/nodepool": node.pool,
        "kubernetes.io/arch": node.arch,
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": itype.name,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": node.zone,
    }
    max_pods = "29" if itype.vcpu <= 2 else "58" if itype.vcpu <= 8 else "234"
    taints = []
    if POOL[node.pool].taint is not None:
        taints.append({"key": "workload", "value": POOL[node.pool].taint, "effect": "NoSchedule"})
    if node.cordoned:
        taints.append({"key": "karpenter.sh/disrupted", "effect": "NoSchedule"})
    spec: dict[str, Any] = {"providerID": f"aws:///{node.zone}/{node.instance_id}"}
    if taints:
        spec["taints"] = taints
    if node.cordoned:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "uid": node.uid,
            "labels": labels,
            "creationTimestamp": stamp(node.created),
        },
        "spec": spec,
        "status": {
            "capacity": {
                "cpu": cpu_text(itype.vcpu),
                "memory": memory_text(itype.memory_bytes),
                "pods": max_pods,
                "ephemeral-storage": "100Gi",
            },
            "allocatable": {
                "cpu": cpu_text(node.alloc_cpu),
                "memory": memory_text(node.alloc_memory),
                "pods": max_pods,
                "ephemeral-storage": "95551679124",
            },
            "nodeInfo": {
                "architecture": node.arch,
                "kubeletVersion": "v1.30.2-eks-1552ad0",
                "containerRuntimeVersion": "containerd://1.7.20",
                "osImage": "Amazon Linux 2023.5.20240805",
                "operatingSystem": "linux",
            },
            "addresses": [
                {"type": "InternalIP", "address": node.ip},
                {"type": "Hostname", "address": node.name},
            ],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def pod_template(
    wl: Workload,
    containers: list[ContainerSpec],
    labels: dict[str, str],
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": c.name,
                "image": c.image,
                "imagePullPolicy": "IfNotPresent",
                "resources": c.resources(),
                **({"env": [{"name": k, "value": v} for k, v in c.env]} if c.env else {}),
            }
            for c in containers
        ],
        "restartPolicy": "Never" if wl.kind == "Job" else "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": wl.name if wl.team == "platform" else "default",
        "terminationGracePeriodSeconds": 30,
    }
    if wl.pool is not None:
        spec["nodeSelector"] = {"karpenter.sh/nodepool": wl.pool}
    if wl.kind == "DaemonSet":
        spec["tolerations"] = [{"operator": "Exists"}]
        spec["priorityClassName"] = "system-node-critical"
    elif wl.tolerates:
        spec["tolerations"] = [
            {"key": "workload", "operator": "Equal", "value": wl.pool, "effect": "NoSchedule"}
        ]
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def declared_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """What its owners declared of a workload (the manifest in their repository): the
    object without status and without what the API server and controllers write."""
    meta = obj["metadata"]
    metadata = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
    annotations = {
        k: v for k, v in meta.get("annotations", {}).items() if k not in CONTROLLER_ANNOTATIONS
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": metadata,
        "spec": deepcopy(obj["spec"]),
    }


CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def workload_manifest(
    wl: Workload, change: ChangeType, job_ttl_seconds: int, now: datetime
) -> dict[str, Any]:
    annotations = dict(wl.annotations)
    selector = {"matchLabels": {"app": wl.name}}
    running = sum(p.phase == "Running" for p in wl.pods)
    spec: dict[str, Any] = {
        "selector": selector,
        "template": pod_template(wl, wl.containers, wl.pod_labels),
    }
    status: dict[str, Any] = {"observedGeneration": wl.generation}
    if wl.kind == "Deployment":
        annotations["deployment.kubernetes.io/revision"] = str(wl.revision)
        spec |= {
            "replicas": wl.replicas,
            "revisionHistoryLimit": 2,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
        }
        status |= {"replicas": len(wl.pods), "readyReplicas": running}
    elif wl.kind == "StatefulSet":
        spec |= {
            "replicas": wl.replicas,
            "serviceName": wl.name,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "gp3",
                        "resources": {"requests": {"storage": wl.volume}},
                    },
                }
            ],
        }
        status |= {"replicas": len(wl.pods), "readyReplicas": running}
    elif wl.kind == "DaemonSet":
        spec["updateStrategy"] = {"type": "RollingUpdate"}
        status |= {"desiredNumberScheduled": len(wl.pods), "numberReady": running}
    else:
        spec |= {
            "parallelism": wl.replicas,
            "completions": wl.replicas,
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": job_ttl_seconds,
        }
        status = {"startTime": stamp(wl.created), "active": running}
        if wl.job_status != "Running" and change is not ChangeType.ADDED:
            # the Job controller's two conditions, the interim one first (Kubernetes 1.31+)
            done = wl.job_status == "Complete"
            interim = "SuccessCriteriaMet" if done else "FailureTarget"
            status["conditions"] = [
                {"type": kind, "status": "True", "lastTransitionTime": stamp(now)}
                for kind in (interim, wl.job_status)
            ]
            status["succeeded" if done else "failed"] = len(wl.pods)
            if done:
                status["completionTime"] = stamp(now)
    return {
        "apiVersion": wl.api_version,
        "kind": wl.kind,
        "metadata": {
            "name": wl.name,
            "namespace": wl.namespace,
            "uid": wl.uid,
            "generation": wl.generation,
            "creationTimestamp": stamp(wl.created),
            "labels": dict(wl.labels),
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


def replica_set_manifest(wl: Workload, rs: ReplicaSet) -> dict[str, Any]:
    labels = {**wl.pod_labels, "pod-template-hash": rs.hash}
    annotations = {
        "deployment.kubernetes.io/revision": str(rs.revision),
        "deployment.kubernetes.io/desired-replicas": str(wl.replicas),
    }
    owned = [p for p in wl.pods if p.owners[0].uid == rs.uid]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs.name,
            "namespace": wl.namespace,
            "uid": rs.uid,
            "generation": rs.generation,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [_owner_ref(wl.ref, "apps/v1")],
        },
        "spec": {
            "replicas": rs.replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(wl, rs.containers, labels),
        },
        "status": {  # what runs now: a scaled-down ReplicaSet's pods take a while to go
            "replicas": len(owned),
            "readyReplicas": sum(p.phase == "Running" for p in owned),
            "observedGeneration": rs.generation,
        },
    }


def pod_manifest(
    pod: Pod, now: datetime, *, deleting: bool, unschedulable: str | None
) -> dict[str, Any]:
    """The pod as the API server shows it.

    ``unschedulable`` is the scheduler's reason for a Pending pod that no node takes.
    """
    wl = pod.workload
    node = pod.node
    owner_api = "apps/v1" if pod.owners[0].kind != "Job" else "batch/v1"
    metadata: dict[str, Any] = {
        "name": pod.name,
        "namespace": wl.namespace,
        "uid": pod.uid,
        "creationTimestamp": stamp(pod.created),
        "labels": dict(pod.labels),
        "annotations": dict(pod.annotations),
        "ownerReferences": [_owner_ref(pod.owners[0], owner_api)],
    }
    if deleting:
        metadata["deletionTimestamp"] = stamp(now)
    template = pod_template(wl, pod.containers, pod.labels)["spec"]
    status: dict[str, Any] = {"phase": pod.phase, "qosClass": _qos(pod.containers)}
    if node is not None:
        template["nodeName"] = node.name
        status |= {
            "hostIP": node.ip,
            "podIP": pod.ip,
            "startTime": stamp(pod.started or now),
            "containerStatuses": [
                _container_status(pod, k, now) for k in range(len(pod.containers))
            ],
        }
    elif unschedulable is not None:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template,
        "status": status,
    }


def _container_status(pod: Pod, k: int, now: datetime) -> dict[str, Any]:
    spec = pod.containers[k]
    started = stamp(pod.started or now)
    status: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "ready": True,
        "restartCount": pod.restarts[k],
        "started": True,
        "state": {"running": {"startedAt": started}},
        "lastState": {},
    }
    if pod.phase == "Succeeded":
        status |= {
            "ready": False,
            "started": False,
            "state": {
                "terminated": {
                    "reason": "Completed",
                    "exitCode": 0,
                    "startedAt": started,
                    "finishedAt": stamp(now),
                }
            },
        }
    elif pod.crashloop and k == 0:
        status |= {
            "ready": False,
            "started": False,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 5m0s restarting failed container={spec.name} "
                    f"pod={pod.name}_{pod.workload.namespace}({pod.uid})",
                }
            },
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
        }
    if k in pod.oom_at:
        status["lastState"] = {
            "terminated": {
                "reason": "OOMKilled",
                "exitCode": 137,
                "finishedAt": stamp(pod.oom_at[k]),
            }
        }
    return status


def _owner_ref(owner: OwnerRef, api_version: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _qos(containers: list[ContainerSpec]) -> str:
    if all(
        c.cpu_request is None
        and c.memory_request is None
        and c.cpu_limit is None
        and c.memory_limit is None
        for c in containers
    ):
        return "BestEffort"
    if all(
        c.cpu_limit is not None
        and c.cpu_limit == c.cpu_request
        and c.memory_limit is not None
        and c.memory_limit == c.memory_request
        for c in containers
    ):
        return "Guaranteed"
    return "Burstable"
