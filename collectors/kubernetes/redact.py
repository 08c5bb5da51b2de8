"""Redaction: what looks like a credential never leaves the cluster.

Secrets are never read at all (the collector lists and watches their metadata only);
this strips what may still carry one: ConfigMap values (kept as hashes, so a change is
still a change), env values whose name or value looks like a credential, such
annotations, and ``kubectl.kubernetes.io/last-applied-configuration``, which holds a
whole manifest (a Secret's data included). Each is replaced by a marker with a hash of
the value: equal values stay equal, nothing is recoverable from a long secret.
"""

import hashlib
import re
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


def marker(value: str) -> str:
    return f"<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}>"


def looks_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value))


def redact(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A redacted copy of ``obj`` (a Kubernetes object as JSON) without managedFields."""
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    metadata["annotations"] = redact_annotations(metadata.get("annotations") or {})
    if kind == "Secret":  # metadata only; ``data`` is never fetched, dropped if ever present
        return {"apiVersion": obj.get("apiVersion", "v1"), "kind": kind, "metadata": metadata}
    cleaned = {key: _redact_env(value) for key, value in obj.items() if key != "metadata"}
    cleaned["metadata"] = metadata
    if kind == "ConfigMap":
        for field in ("data", "binaryData"):
            if isinstance(cleaned.get(field), dict):
                cleaned[field] = {k: marker(str(v)) for k, v in cleaned[field].items()}
    return cleaned


def redact_annotations(annotations: dict[str, str]) -> dict[str, str]:
    return {
        key: marker(value) if key == LAST_APPLIED or looks_secret(key, value) else value
        for key, value in annotations.items()
    }


def _redact_env(node: Any) -> Any:
    """Every ``env`` list anywhere (containers, init containers, pod templates)."""
    if isinstance(node, dict):
        return {
            key: _redact_env_list(value) if key == "env" else _redact_env(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_redact_env(item) for item in node]
    return node


def _redact_env_list(env: Any) -> Any:
    if not isinstance(env, list):
        return env
    return [_redact_variable(variable) for variable in env]


def _redact_variable(variable: Any) -> Any:
    if isinstance(variable, dict) and isinstance(variable.get("value"), str):
        name, value = str(variable.get("name", "")), variable["value"]
        if looks_secret(name, value):
            return {**variable, "value": marker(value)}
    return variable
