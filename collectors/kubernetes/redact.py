"""Redaction: what looks like a credential never leaves the cluster.

Secrets are never read at all (the collector lists and watches their metadata only);
this strips what may still carry one: ConfigMap values (kept as hashes, so a change is
still a change), env values whose name or value looks like a credential, such
annotations, and ``kubectl.kubernetes.io/last-applied-configuration``, which holds a
whole manifest (a Secret's data included). Each is replaced by a marker with a hash of
the value, so equal values stay equal and a change is still seen.

With a per-cluster key the hash is an HMAC: without the key nobody can test guesses
against a marker, which a plain hash of a short password would allow. Without one it is
a plain SHA-256, and the collector says so when it starts.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SECRET_NAME = re.compile(
    r"pass|secret|token|credential|private|api[-_.]?key|access[-_.]?key|auth|dsn|session"
    r"|cookie|signature|bearer|cert",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"  # PEM keys
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."  # JWTs
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|://[^/\s:@]+:[^/\s@]+@",  # user:password@ in a URL
)


def looks_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value))


@dataclass(frozen=True)
class Redactor:
    key: bytes | None = None  # the cluster's HMAC key; None: plain SHA-256

    def marker(self, value: str) -> str:
        if self.key is None:
            return f"<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}>"
        keyed = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:16]
        return f"<redacted hmac-sha256:{keyed}>"

    def redact(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``obj`` (a Kubernetes object as JSON) without managedFields."""
        metadata = dict(obj.get("metadata") or {})
        metadata.pop("managedFields", None)
        metadata["annotations"] = self.annotations(metadata.get("annotations") or {})
        if kind == "Secret":  # metadata only; ``data`` is never fetched, dropped if ever present
            return {"apiVersion": obj.get("apiVersion", "v1"), "kind": kind, "metadata": metadata}
        cleaned = {key: self._env(value) for key, value in obj.items() if key != "metadata"}
        cleaned["metadata"] = metadata
        if kind == "ConfigMap":
            for field in ("data", "binaryData"):
                if isinstance(cleaned.get(field), dict):
                    cleaned[field] = {k: self.marker(str(v)) for k, v in cleaned[field].items()}
        return cleaned

    def annotations(self, annotations: dict[str, str]) -> dict[str, str]:
        return {
            key: self.marker(value) if key == LAST_APPLIED or looks_secret(key, value) else value
            for key, value in annotations.items()
        }

    def _env(self, node: Any) -> Any:
        """Every ``env`` list anywhere (containers, init containers, pod templates)."""
        if isinstance(node, dict):
            return {
                key: self._env_list(value) if key == "env" else self._env(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [self._env(item) for item in node]
        return node

    def _env_list(self, env: Any) -> Any:
        if not isinstance(env, list):
            return env
        return [self._variable(variable) for variable in env]

    def _variable(self, variable: Any) -> Any:
        if isinstance(variable, dict) and isinstance(variable.get("value"), str):
            name, value = str(variable.get("name", "")), variable["value"]
            if looks_secret(name, value):
                return {**variable, "value": self.marker(value)}
        return variable


UNKEYED = Redactor()
