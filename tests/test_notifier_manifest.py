"""The notifier's manifest (deploy/kubernetes/notifier.yaml): the real API server takes
it, its subscriptions file is valid, and every secret file the subscriptions read is
mounted from the Secret, which the manifest itself never holds."""

from pathlib import Path

import yaml
from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException

from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.settings.subscriptions import read_subscriptions

MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "notifier.yaml"


def test_the_api_server_takes_it_and_its_secrets_come_from_the_secret(
    kube_cluster: LocalCluster, tmp_path: Path
) -> None:
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert not [d for d in documents if d["kind"] == "Secret"]  # created apart, never in Git
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        try:
            client.CoreV1Api(admin).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name="kubeopera"))
            )
        except ApiException as error:
            assert error.status == 409  # the collector's test made it
        created = utils.create_from_yaml(admin, str(MANIFEST))
        kinds = [o.kind for group in created for o in group]
        assert kinds == ["ServiceAccount", "ConfigMap", "Deployment"]
        deployment = client.AppsV1Api(admin).read_namespaced_deployment(
            "kubeopera-notifier", "kubeopera"
        )
    spec = deployment.spec.template.spec
    assert deployment.spec.replicas == 1 and deployment.spec.strategy.type == "Recreate"
    (secret_volume,) = [v for v in spec.volumes if v.secret is not None]
    # the container's user reads the secret files through their group
    assert spec.security_context.fs_group == spec.security_context.run_as_user
    assert secret_volume.secret.default_mode & 0o040
    mount = next(m for m in spec.containers[0].volume_mounts if m.name == secret_volume.name)
    mounted = {f"{mount.mount_path}/{item.path}" for item in secret_volume.secret.items}

    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    path = tmp_path / "subscriptions.yaml"
    path.write_text(config_map["data"]["subscriptions.yaml"])
    subscriptions = read_subscriptions(path)
    read = {
        str(ref.file) for s in subscriptions.subscriptions for ref in s.receiver.secrets().values()
    }
    assert read and read <= mounted
