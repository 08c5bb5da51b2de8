"""The catalogue of fleet shapes: clusters, node pools, teams and workload templates.

Pure data and a few lookups, no randomness: what a cluster is built from lives here so the
code that builds (inventory), schedules (cluster) and checks (spec) shares one source.
"""

from dataclasses import dataclass

from kubeopera.models.catalogue import Catalogue, InstanceType

FIRST_CLUSTERS = (
    ("prod-us-east-1", "us-east-1"),
    ("staging-eu-west-1", "eu-west-1"),
    ("dev-us-west-2", "us-west-2"),
)
# fmt: off
MORE_REGIONS = (
    "us-east-2", "eu-central-1", "ap-southeast-1", "us-west-1", "eu-north-1",
    "ap-northeast-1", "ca-central-1", "ap-south-1", "sa-east-1", "eu-west-2",
)
# fmt: on


@dataclass(frozen=True)
class Pool:
    name: str
    candidates: tuple[str, ...]  # instance types by preference; the first in the catalogue wins
    taint: str | None = None


POOLS = (
    Pool("general", ("m6i.2xlarge", "m5.2xlarge", "m7i.2xlarge")),
    Pool("compute", ("c6i.4xlarge", "c5.4xlarge", "c7i.4xlarge")),
    Pool("memory", ("r6i.2xlarge", "r5.2xlarge", "r6g.2xlarge")),
    Pool("arm64", ("m6g.xlarge", "m7g.xlarge", "m6gd.xlarge")),
    Pool("ml-training", ("c6i.8xlarge", "c7i.8xlarge", "c5.9xlarge"), taint="ml-training"),
)
POOL = {pool.name: pool for pool in POOLS}
ALLOCATABLE = 0.92  # kubelet and system reservations take the rest


def pick_type(catalogue: Catalogue, names: tuple[str, ...]) -> InstanceType | None:
    for name in names:
        itype = catalogue.get(name)
        if itype is not None and itype.usd_per_hour is not None:
            return itype
    return None


@dataclass(frozen=True)
class Team:
    name: str
    namespaces: tuple[str, ...]
    services: tuple[str, ...]
    stateful: tuple[str, ...]
    jobs: tuple[str, ...]
    pool: str


# fmt: off
TEAMS = (
    Team("payments", ("payments", "ledger"),
         ("payments-api", "fraud-scorer", "refund-worker", "payout-scheduler", "card-vault"),
         ("redis",), ("settlement-report",), "general"),
    Team("search", ("search",), ("search-api", "query-rewriter", "indexer", "autocomplete"),
         ("elasticsearch",), ("reindex",), "compute"),
    Team("checkout", ("checkout", "cart"),
         ("checkout-api", "cart-service", "pricing", "promotions", "tax-calculator"),
         (), (), "general"),
    Team("data", ("data-pipeline", "analytics"),
         ("ingest-gateway", "schema-registry", "airflow-webserver", "airflow-scheduler"),
         ("kafka", "postgres"), ("etl-hourly", "dbt-run"), "general"),
    Team("ml", ("ml-serving",), ("recommender", "embedding-server", "feature-store"),
         (), ("batch-scoring",), "compute"),
    Team("web", ("web", "storefront"),
         ("storefront", "frontend-bff", "image-resizer", "cms", "sitemap-generator"),
         (), (), "general"),
)

# name, image, cpu request, memory request, cpu limit, memory limit
ContainerRow = tuple[str, str, str | None, str | None, str | None, str | None]


@dataclass(frozen=True)
class Template:
    kind: str
    namespace: str
    name: str
    replicas: int
    pool: str | None
    containers: tuple[ContainerRow, ...]
    profile: str
    volume: str | None = None


_EKS = "602401143452.dkr.ecr.{region}.amazonaws.com"
PLATFORM = (
    Template("DaemonSet", "kube-system", "aws-node", 0, None, (
        ("aws-node", f"{_EKS}/amazon-k8s-cni:v1.18.3-eksbuild.1", "25m", None, None, None),
    ), "normal"),
    Template("DaemonSet", "kube-system", "kube-proxy", 0, None, (
        ("kube-proxy", f"{_EKS}/eks/kube-proxy:v1.30.0-minimal-eksbuild.3", "100m", None, None,
         None),
    ), "over"),
    Template("DaemonSet", "kube-system", "ebs-csi-node", 0, None, (
        ("ebs-plugin", "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.33.0", "10m", "40Mi",
         None, "256Mi"),
        ("node-driver-registrar",
         "public.ecr.aws/eks-distro/kubernetes-csi/node-driver-registrar:v2.11.0-eks-1-30-10",
         "10m", "40Mi", None, "256Mi"),
        ("liveness-probe",
         "public.ecr.aws/eks-distro/kubernetes-csi/livenessprobe:v2.13.0-eks-1-30-10",
         "10m", "40Mi", None, "256Mi"),
    ), "normal"),
    Template("DaemonSet", "monitoring", "node-exporter", 0, None, (
        ("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", "100m", "180Mi", "250m",
         "180Mi"),
        ("kube-rbac-proxy", "quay.io/brancz/kube-rbac-proxy:v0.18.0", "10m", "20Mi", "20m", "40Mi"),
    ), "over"),
    Template("Deployment", "kube-system", "coredns", 2, "general", (
        ("coredns", f"{_EKS}/eks/coredns:v1.11.1-eksbuild.9", "100m", "70Mi", None, "170Mi"),
    ), "over"),
    Template("Deployment", "kube-system", "karpenter", 2, "general", (
        ("controller", "public.ecr.aws/karpenter/controller:1.0.1", "1", "1Gi", "1", "1Gi"),
    ), "over"),
    Template("Deployment", "kube-system", "metrics-server", 1, "general", (
        ("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.1", "100m", "200Mi",
         None, None),
    ), "normal"),
    Template("StatefulSet", "monitoring", "prometheus-k8s", 1, "memory", (
        ("prometheus", "quay.io/prometheus/prometheus:v2.53.1", "1", "4Gi", None, "8Gi"),
        ("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2",
         "10m", "50Mi", "10m", "50Mi"),
    ), "normal", "100Gi"),
    Template("StatefulSet", "monitoring", "alertmanager-main", 1, "general", (
        ("alertmanager", "quay.io/prometheus/alertmanager:v0.27.0", "4m", "100Mi", "100m", "100Mi"),
    ), "normal", "1Gi"),
    Template("Deployment", "monitoring", "grafana", 1, "general", (
        ("grafana", "docker.io/grafana/grafana:11.1.3", "100m", "256Mi", None, "512Mi"),
    ), "over"),
    Template("Deployment", "monitoring", "kube-state-metrics", 1, "general", (
        ("kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0",
         "10m", "190Mi", "100m", "250Mi"),
    ), "normal"),
)

STATEFUL: dict[str, tuple[int, tuple[ContainerRow, ...], str]] = {
    "redis": (1, (
        ("redis", "docker.io/bitnami/redis:7.2.5", "250m", "1Gi", None, "2Gi"),
        ("metrics", "docker.io/bitnami/redis-exporter:1.62.0", "50m", "64Mi", None, "128Mi"),
    ), "20Gi"),
    "elasticsearch": (3, (
        ("elasticsearch", "docker.elastic.co/elasticsearch/elasticsearch:8.14.3", "1", "8Gi", "2",
         "8Gi"),
    ), "200Gi"),
    "kafka": (3, (("kafka", "docker.io/bitnami/kafka:3.7.1", "1", "4Gi", None, "6Gi"),), "500Gi"),
    "postgres": (1, (("postgres", "docker.io/library/postgres:16.3", "500m", "2Gi", None, "4Gi"),),
                 "100Gi"),
}

SIZES = {
    "general": (("50m", "64Mi"), ("100m", "128Mi"), ("100m", "256Mi"), ("250m", "256Mi"),
                ("250m", "512Mi"), ("500m", "512Mi"), ("500m", "1Gi"), ("1", "1Gi"),
                ("1", "2Gi"), ("2", "4Gi")),
    "compute": (("500m", "512Mi"), ("1", "1Gi"), ("1", "2Gi"), ("2", "2Gi"), ("1500m", "3Gi")),
    "job": (("500m", "1Gi"), ("1", "2Gi"), ("2", "4Gi")),
}
SIDECARS: tuple[ContainerRow, ...] = (
    ("istio-proxy", "docker.io/istio/proxyv2:1.22.3", "100m", "128Mi", "2", "1Gi"),
    ("log-shipper", "cr.fluentbit.io/fluent/fluent-bit:3.1.4", "50m", "64Mi", "200m", "128Mi"),
    ("otel-agent", "docker.io/otel/opentelemetry-collector-contrib:0.104.0", "100m", "128Mi",
     None, "256Mi"),
    ("vault-agent", "docker.io/hashicorp/vault:1.17.2", "25m", "64Mi", None, "128Mi"),
)
# usage / request at the daily mean on a weekday
PROFILES = {"over": (0.05, 0.25), "normal": (0.4, 0.9), "under": (1.2, 1.8), "busy": (0.8, 0.95)}
OWNERS = ("alice.nguyen", "bruno.costa", "carla.rossi", "deepak.iyer", "emma.larsen",
          "farid.haddad", "grace.kim", "hugo.martin")
PROCESSES = ("java", "python3", "node", "ruby", "envoy", "dotnet")
ECR = "123456789012.dkr.ecr.{region}.amazonaws.com"
# fmt: on


PLATFORM_ENV: dict[str, dict[str, str]] = {"grafana": {"GF_LOG_LEVEL": "info"}}
"""Environment variables of platform containers, by container: the same in every cluster
(their manifests are shared) but where ``ENVIRONMENT_VALUES`` says."""

ENVIRONMENT_VALUES: dict[tuple[str, str], dict[str, str]] = {
    ("staging", "grafana"): {"GF_LOG_LEVEL": "debug"},
}
"""(environment, container) -> the values that differ there: the fleet's one environment
difference, the ground truth of drift across clusters."""


def platform_env(environment: str, container: str) -> tuple[tuple[str, str], ...]:
    """A platform container's environment variables in an environment (``prod``, ...)."""
    values = {
        **PLATFORM_ENV.get(container, {}),
        **ENVIRONMENT_VALUES.get((environment, container), {}),
    }
    return tuple(sorted(values.items()))


def cluster_identity(index: int) -> tuple[str, str]:
    """Name and region of the fleet's cluster number ``index``: three named, then prod-N."""
    if index < len(FIRST_CLUSTERS):
        return FIRST_CLUSTERS[index]
    region = MORE_REGIONS[(index - len(FIRST_CLUSTERS)) % len(MORE_REGIONS)]
    return f"prod-{index + 1}-{region}", region
