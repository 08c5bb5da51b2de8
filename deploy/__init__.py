"""How KubeOpera runs outside the embedded mode: the development Kafka broker, and
(with their issues) Kubernetes manifests and the Helm chart."""
