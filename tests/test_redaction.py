"""Redaction: credentials found wherever they hide, and nothing else.

- the planted-credential matrix (tests/data/planted_credentials.yaml) through the pure
  redactor, then created on the real kube-apiserver and collected through Kafka and
  ``--embedded``: no value, base64 or plain SHA-256 of one anywhere;
- the over-redaction budget: on the real manifests of ../shared/data, the exact list of
  what is replaced;
- each rule on its own: names, command lines, forms, markers.
"""

import hashlib
import hmac
import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SHARED_DATA
from kafka_tools import read_all
from kubernetes import client, config
from planted import APPLICATION_CRD, APPLICATIONS_WATCH, NAMESPACE, PLACES, Case, cases

from kubeopera.collectors.kubernetes.api import request
from kubeopera.collectors.kubernetes.changes import Owners, to_change
from kubeopera.collectors.kubernetes.command_line import (
    credentials_in_command,
    credentials_in_text,
)
from kubeopera.collectors.kubernetes.credential_names import credential_name
from kubeopera.collectors.kubernetes.credential_values import credentials_in, placeholder
from kubeopera.collectors.kubernetes.events import to_event
from kubeopera.collectors.kubernetes.redact import LAST_APPLIED, Redactor
from kubeopera.deploy.kafka import Broker
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models import ChangeType, Topic

KEY = b"the-planted-clusters-own-hmac-key"
AT = datetime(2026, 12, 5, 10, tzinfo=UTC)
CASES = cases()


def published(case: Case, redactor: Redactor) -> str:
    """The case's object as the collector publishes it, as JSON."""
    resource, obj = case.object()
    if resource.kind == "Event":
        return to_event("c", obj, AT, redactor).model_dump_json()
    return to_change("c", resource, obj, ChangeType.ADDED, AT, Owners(), redactor).model_dump_json()


def leaks(case: Case, text: str) -> list[str]:
    return [trace for trace, found in case.traces.items() if found in text]


def fragments(case: Case, text: str) -> list[str]:
    """Any 8 characters in a row of the value (a half-hidden credential)."""
    windows = {case.value[i : i + 8] for i in range(max(1, len(case.value) - 7))}
    return sorted(w for w in windows if w in text)


def test_the_matrix_covers_every_place_with_40_or_more_credentials() -> None:
    assert len(CASES) >= 40
    assert len({c.value for c in CASES}) == len(CASES)  # one case cannot hide another
    assert {c.place for c in CASES} == set(PLACES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_no_planted_credential_survives_the_redactor(case: Case) -> None:
    text = published(case, Redactor(KEY))
    assert not leaks(case, text), text
    assert not fragments(case, text), text
    assert "<redacted hmac-sha256:" in text or case.place in ("secret", "helm_release")


def test_a_credential_keeps_its_marker_wherever_it_is_and_a_rotated_one_changes() -> None:
    redactor = Redactor(KEY)
    marker = f"<redacted hmac-sha256:{hmac.new(KEY, b'Pa55-word-1', 'sha256').hexdigest()[:16]}>"
    env = redactor.redact("Pod", pod(env=[{"name": "DB_PASSWORD", "value": "Pa55-word-1"}]))
    args = redactor.redact("Pod", pod(args=["--db-password", "Pa55-word-1", "--port=5432"]))
    assert env["spec"]["containers"][0]["env"][0]["value"] == marker
    assert args["spec"]["containers"][0]["args"] == ["--db-password", marker, "--port=5432"]
    rotated = redactor.redact("Pod", pod(env=[{"name": "DB_PASSWORD", "value": "Pa55-word-2"}]))
    assert rotated["spec"]["containers"][0]["env"][0]["value"] not in (marker, "Pa55-word-2")
    assert Redactor(b"another-clusters-hmac-key").marker("Pa55-word-1") != marker
    plain = hashlib.sha256(b"Pa55-word-1").hexdigest()[:16]
    assert Redactor().marker("Pa55-word-1") == f"<redacted sha256:{plain}>"


def test_only_the_credential_is_replaced_and_the_rest_stays_readable() -> None:
    redactor = Redactor(KEY)
    script = "mysql -uroot -pS3cret-pw shop < /init.sql && echo done"
    command = redactor.redact("Pod", pod(command=["sh", "-c", script]))
    hidden = command["spec"]["containers"][0]["command"][2]
    assert hidden == script.replace("S3cret-pw", redactor.marker("S3cret-pw"))
    values = "auth:\n  username: shop\n  password: V4lues-pw\nreplicas: 3 # keep\n"
    app = {"metadata": {"name": "a"}, "spec": {"source": {"helm": {"values": values}}}}
    kept = redactor.redact("Application", app)["spec"]["source"]["helm"]["values"]
    assert kept == values.replace("V4lues-pw", redactor.marker("V4lues-pw"))
    url = redactor.text("dial postgres://app:Url-pw-99@db:5432/shop: timeout")
    assert url == f"dial postgres://app:{redactor.marker('Url-pw-99')}@db:5432/shop: timeout"


def test_a_weak_password_does_not_show_through_its_surroundings() -> None:
    """Replaced only where it stands as a word: were ``postgres`` replaced inside
    ``postgresql`` too, ``<marker>ql:`` would give it away; so the whole string goes."""
    redactor = Redactor(KEY)
    values = "postgresql:\n  auth:\n    username: postgres\n    password: postgres\n"
    app = {"metadata": {"name": "a"}, "spec": {"source": {"helm": {"values": values}}}}
    hidden = redactor.redact("Application", app)["spec"]["source"]["helm"]["values"]
    assert hidden == redactor.marker(values)
    args = ["--db-password=admin", "--admin-port=9000", "--port=8081"]
    hidden_args = redactor.redact("Pod", pod(args=args))["spec"]["containers"][0]["args"]
    marker = redactor.marker("admin")
    assert hidden_args == [f"--db-password={marker}", redactor.marker(args[1]), args[2]]


def test_odd_shapes_neither_crash_nor_stall_and_still_hide() -> None:
    """Shapes that would crash the collector, or keep it busy for minutes, read naively:
    YAML keys that are numbers or booleans, a date where a password is, a key written
    twice, aliases of aliases, nesting that overflows the C loader's stack, a string
    holding thousands of credentials or detector matches. Each is redacted."""
    redactor = Redactor(KEY)
    ports = "ports:\n  80: http\n  443: https\non: push\npassword: 2023-10-05\n"
    expected = ports.replace("2023-10-05", redactor.marker("2023-10-05"))
    assert redactor.text(ports, "values") == expected
    twice = "password: Tw1ce-pw-1\nreplicas: 2\npassword: Tw1ce-pw-2\n"
    assert "Tw1ce" not in redactor.text(twice, "values")
    anchored = "x-common: &pw Anch0r-pw-1\ndb:\n  password: *pw\n"
    assert "Anch0r" not in redactor.text(anchored, "values")
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "password: B0mb-pw-1\n"
    )
    assert redactor.text(bomb, "values") == redactor.marker(bomb)  # too large: whole
    # too deep for the walk: hidden whole, or, where libyaml itself refuses such nesting
    # (PyYAML 6.0.4's stops at 1,000 levels), searched as text: either way no credential
    for deep in ("[" * 5000 + "password=Deep-pw-1" + "]" * 5000,
                 "[" * 30000 + "\npassword=Deep-pw-1\n" + "]" * 30000):  # fmt: skip
        assert "Deep-pw-1" not in redactor.text(deep, "values")
    nested: Any = {"password": "D33p-pw-1"}
    for _ in range(500):
        nested = {"spec": nested}
    assert "D33p-pw-1" not in json.dumps(
        redactor.redact("Widget", {"metadata": {}, "spec": nested})
    )
    many = "&".join(f"password=Many-pw-{i}" for i in range(3000))  # a secrets file
    assert redactor.text(many, "message") == redactor.marker(many)
    for repeated in ("-----BEGIN RSA PRIVATE KEY-----\n" * 1500, "AKIA" * 15000, "eyJ" * 20000):
        assert redactor.text(repeated, "values") in (repeated, redactor.marker(repeated))
    words = "x" * 60_000 + " token=W0rds-pw-1"
    assert redactor.text(words, "message").endswith(f"token={redactor.marker('W0rds-pw-1')}")
    huge = "x" * 70_000  # longer than 64 KiB: a file, hidden whole
    assert redactor.text(huge, "message") == redactor.marker(huge)


def test_fields_skipped_as_identities_are_skipped_only_when_they_hold_one() -> None:
    """``image`` of a container is a reference, never a credential; ``image`` of a Helm
    values object is a section that may hold one."""
    redactor = Redactor(KEY)
    values = {"image": {"repository": "shop", "pullPassword": "Im4ge-Pw-123"}}
    app = {"metadata": {"name": "a"}, "spec": {"source": {"helm": {"valuesObject": values}}}}
    hidden = redactor.redact("Application", app)["spec"]["source"]["helm"]["valuesObject"]
    assert hidden["image"] == {
        "repository": "shop",
        "pullPassword": redactor.marker("Im4ge-Pw-123"),
    }


SSH_PUBLIC_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
CA_BUNDLE = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJpRENDQVMrZ0F3SUJBZ0lRRHU0OUNa"

HIDDEN_IN_TEXT = [
    ("-Dspring.datasource.password=Jv4-pw-1 -Xmx1g", "Jv4-pw-1"),  # a whole flag, no space
    ("--db-password=Ex7-pw-1", "Ex7-pw-1"),
    ("https://api.example.com/v1?access_token=Ur1-tok-9&x=1", "Ur1-tok-9"),  # after a scheme
    ('Get "http://10.0.0.1:8080/health?token=Ev1-tok-2": EOF', "Ev1-tok-2"),
    ("kubectl create secret generic db --from-literal=password=Kc1-pw-3", "Kc1-pw-3"),
    ("redis-cli CONFIG SET requirepass Rq1-pw-4", "Rq1-pw-4"),
    ("aws configure set aws_secret_access_key Aw1-pw-5", "Aw1-pw-5"),
    ("psql -c \"ALTER USER app PASSWORD 'Sq1-pw-6'\"", "Sq1-pw-6"),
    ("mysql -e \"CREATE USER 'a'@'%' IDENTIFIED BY 'Sq2-pw-6'\"", "Sq2-pw-6"),
    ("mongosh -u admin -p Mg1-pw-7 mongodb://db", "Mg1-pw-7"),
    ("ldapsearch -x -D cn=admin -w Ld1-pw-8", "Ld1-pw-8"),
    ("smbclient -U admin%Sm1-pw-9 //host/share", "Sm1-pw-9"),
    ("sshpass -pSs1-pw-10 ssh host", "Ss1-pw-10"),
    ("app:Go1-pw-10@tcp(db:3306)/shop?parseTime=true", "Go1-pw-10"),  # Go's MySQL DSN
    ("app/Or1-pw-11@//db:1521/ORCL", "Or1-pw-11"),  # Oracle
    ("<user>app</user><password>Xm1-pw-11</password>", "Xm1-pw-11"),
    ("curl -H 'authorization: basic dXNlcjpwYXNz9w=='", "dXNlcjpwYXNz9w=="),
    ("wget --header 'X-Upstream: Basic dXNlcjpwYXNzd29yZA==' http://x", "dXNlcjpwYXNzd29yZA=="),
    ("mysql -uroot -p'Qu0ted pass' shop", "Qu0ted pass"),  # quoted, a space inside
]
KEPT_IN_TEXT = [
    "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "https://monitoring.googleapis.com/v1/projects/PROJECT_ID/location/global/prometheus",
    "projects/PRJCTID/zones/us-central1-a/disks/mysql-recovery",
    "arn:aws:iam::123456789012:role/service-role/MyLambdaRole",
    "export TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token) && run",
    'failed to fetch token: serviceaccounts "default" not found',
    "an anonymous token: unexpected status: 401 Unauthorized",
    "set `automountServiceAccountToken: true` to mount it",
    'sum(kube_secret_info{secret=~"db-.*"}) by (namespace)',
    "kubectl get secret db-creds -o yaml; kubeadm token create",
    "credentials defines a key of a Secret that holds the credentials for authentication.",
    "Normal TokenRequest token requested for serviceaccount vault-auth, expiration 3600",
    'Error: secret "db-credentials" not found',
    "uses basic authentication over TLS",
]


@pytest.mark.parametrize(("text", "credential"), HIDDEN_IN_TEXT)
def test_credentials_in_every_kind_of_text(text: str, credential: str) -> None:
    redactor = Redactor(KEY)
    hidden = redactor.text(text, "args")
    assert credential not in hidden and redactor.marker(credential) in hidden


@pytest.mark.parametrize("text", KEPT_IN_TEXT)
def test_ordinary_text_is_kept(text: str) -> None:
    assert Redactor(KEY).text(text, "args") == text


@pytest.mark.parametrize(
    ("fields", "credential"),
    [
        ({"key": "DB_PASSWORD", "value": "Kv1-pw-1"}, "Kv1-pw-1"),
        ({"name": "db-password", "default": "Df1-pw-2"}, "Df1-pw-2"),  # Argo Workflows, Tekton
        ({"name": "db-password", "value": ["Ar1-pw-3"]}, "Ar1-pw-3"),  # a Tekton array
        ({"op": "add", "path": "/spec/password", "value": "Jp1-pw-4"}, "Jp1-pw-4"),  # JSON patch
        ({"type": "password", "value": "Kc1-pw-5"}, "Kc1-pw-5"),  # Keycloak credentials
        ({"ParameterKey": "DbPassword", "ParameterValue": "Cf1-pw-6"}, "Cf1-pw-6"),
        ({"password": {"value": "Nv1-pw-7"}}, "Nv1-pw-7"),  # the value under its parent's name
        ({"name": "MAX_TOTAL_TOKENS", "value": "2048"}, None),  # a count
        ({"name": "MYSQL_ALLOW_EMPTY_PASSWORD", "value": "1"}, None),  # a switch
        ({"name": "AUTH", "value": "oidc"}, None),  # a mode
        ({"x-kubernetes-list-map-keys": ["name"]}, None),
        ({"secretKey": "password", "remoteRef": {"key": "db"}}, None),  # a key's name
        ({"adminPasswordKey": "postgres-password"}, None),
        (
            {
                "name": "PUBLIC_KEY",
                "value": f"ssh-ed25519 {SSH_PUBLIC_KEY} ci",
            },
            None,
        ),
        (
            {"caBundle": CA_BUNDLE},
            None,
        ),
    ],
)
def test_name_value_pairs_of_every_shape(fields: dict[str, Any], credential: str | None) -> None:
    app = {"metadata": {"name": "a"}, "spec": {"params": [fields]}}
    redacted = Redactor(KEY).redact("Pipeline", app)
    hidden = json.dumps(redacted)
    if credential is None:
        assert redacted["spec"] == app["spec"]
    else:
        assert credential not in hidden and Redactor(KEY).marker(credential) in hidden


def test_a_jwt_is_hidden_to_its_signature_whatever_its_name() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLWp3dA"
    redactor = Redactor(KEY)
    env = redactor.redact("Pod", pod(env=[{"name": "SESSION_ID", "value": f"Bearer {jwt}"}]))
    assert env["spec"]["containers"][0]["env"][0]["value"] == f"Bearer {redactor.marker(jwt)}"


def test_a_credential_written_differently_inside_a_string_hides_the_whole_string() -> None:
    """JSON in a string escapes what it holds: the credential (``pa"ss``) is not found as
    written, so the whole string is replaced rather than left half-hidden."""
    redactor = Redactor(KEY)
    annotation = json.dumps({"password": 'pa"ss-\\-word'})
    obj = redactor.redact("Pod", {"metadata": {"name": "p", "annotations": {"cfg": annotation}}})
    assert obj["metadata"]["annotations"]["cfg"] == redactor.marker(annotation)


def test_secrets_are_metadata_only_and_configmap_values_hashes() -> None:
    redactor = Redactor(KEY)
    secret = {"metadata": {"name": "db"}, "data": {"pw": "aHVudGVyMg=="}, "type": "Opaque"}
    assert set(redactor.redact("Secret", secret)) == {"apiVersion", "kind", "metadata"}
    configmap = {"metadata": {"name": "cfg"}, "data": {"LOG_LEVEL": "info"}}
    assert redactor.redact("ConfigMap", configmap)["data"] == {"LOG_LEVEL": redactor.marker("info")}


def pod(**container: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", **container}]}}


# --- names ---------------------------------------------------------------------------

CREDENTIAL_NAMES = [
    "MYSQL_PWD", "DB_PW", "PGPASSWORD", "MYSQL_ROOT_PASSWORD", "passwd", "passphrase",
    "OAUTH_CLIENT_SECRET", "VAULT_TOKEN", "AWS_CREDENTIALS", "creds", "PASSWORD_2",
    "DB_PASSWORD_OLD", "API_TOKEN_PROD", "API_KEY_US", "LDAP_BINDPW", "-storepass",
    "SECRET_KEY_BASE", "GITHUB_PAT", "VAULT_SECRET_ID", "AUTH_HEADER", "PSK",
    "REDIS_AUTH", "SENTRY_DSN", "STRIPE_KEY", "apiKey", "api_key", "privateKey",
    "ENCRYPTION_KEY_B64", "--db-password", "-password", "requirepass", "masterauth",
    "postgresql.auth.password", "smtp.credentials", "Authorization",
]  # fmt: skip
NOT_CREDENTIAL_NAMES = [
    "KEY_FILE_PATH", "TOKEN_FILE", "secretName", "SECRET_NAME", "secretKeyRef", "key",
    "topologyKey", "TOKEN_TTL", "PASSWORD_MIN_LENGTH", "AUTH_ENABLED", "auth.username",
    "existingSecret", "checksum/secret", "image", "bypass", "compass", "author",
    "passwordSecretRef", "TOKEN_URL", "keyspace", "LOG_LEVEL", "MAX_TOTAL_TOKENS",
    "x-kubernetes-list-map-keys", "matchLabelKeys", "ROUTING_KEY", "PUBLIC_KEY", "S3_KEY",
]  # fmt: skip


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_names_the_field_knows_are_credential_names(name: str) -> None:
    assert credential_name(name)


@pytest.mark.parametrize("name", NOT_CREDENTIAL_NAMES)
def test_names_that_only_mention_a_credential_are_not(name: str) -> None:
    assert not credential_name(name)


@pytest.mark.parametrize(
    ("value", "is_placeholder"),
    [
        ("$(DB_PASSWORD)", True),  # Kubernetes' expansion of another env variable
        ("${DB_PASSWORD}", True),
        ("{{ .Values.db.password }}", True),
        ("/var/run/secrets/db/password", True),  # a mounted file
        ("", True),
        ("false", True),
        ("hunter2", False),
        ("/hunter2", False),  # one segment: not a path
        ("123456", False),
        ("$uperS3cret", False),  # Kubernetes expands $(VAR) only
        ("<S3cret>", False),
        ("{S3cret}", False),
    ],
)
def test_a_value_that_stands_for_a_credential_is_not_one(value: str, is_placeholder: bool) -> None:
    assert placeholder(value) is is_placeholder
    hidden = Redactor(KEY).redact("Pod", pod(env=[{"name": "DB_PASSWORD", "value": value}]))
    assert (hidden["spec"]["containers"][0]["env"][0]["value"] == value) is is_placeholder


# --- command lines and text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["/app", "--db-password=p1x", "--token", "t2y", "--port=8080"], {"p1x", "t2y"}),
        (["/app", "-password", "p3z", "-v"], {"p3z"}),
        (["mysql", "-uroot", "-pS3c", "shop"], {"S3c"}),
        (["mysqldump", "-p", "shop"], set()),  # -p alone prompts; "shop" is the database
        (["tar", "-pxf", "a.tar"], set()),  # -p of another program is not a password
        (["redis-cli", "-h", "cache", "-a", "r3d", "ping"], {"r3d"}),
        (["curl", "-u", "deploy:cu4", "https://x"], {"cu4"}),
        (["curl", "--user=deploy:cu5", "https://x"], {"cu5"}),
        (["sh", "-c", "export PGPASSWORD=pg6 && psql -h db"], {"pg6"}),
        (["sh", "-c", "cd /x; mysqladmin -pma7 ping | grep alive"], {"ma7"}),
        (["/app", "--token", "$(API_TOKEN)", "--password=${PW}"], set()),
        (["/app", "--tls-key=/etc/tls/tls.key", "--key-file", "/etc/k"], set()),
    ],
)
def test_credentials_on_a_command_line(words: list[str], expected: set[str]) -> None:
    assert credentials_in_command(words) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("db.user=shop\ndb.password = pr0p\n", {"pr0p"}),
        ("Server=db;User Id=sa;Password=ad0;", {"ad0"}),
        ("GET /healthz?api_key=q5k&deep=1", {"q5k"}),
        ('{"password": "js0n"}', {"js0n"}),
        ("curl -H 'Authorization: Bearer b3arer.tok' http://x", {"b3arer.tok"}),
        ("Readiness probe failed: mysqladmin ping -uroot -pev3: exit 1", {"ev3"}),
        ("password: |", set()),  # no word: the start of a block, not a credential
        ("/app --auth ; echo ok", set()),  # a switch, then the end of the command
        ("Successfully assigned shop/web-1 to node-1", set()),
        ("uses basic authentication and a token", set()),
    ],
)
def test_credentials_in_free_text(text: str, expected: set[str]) -> None:
    assert credentials_in_text(text) == expected


# --- forms ----------------------------------------------------------------------------

PEM = "-----BEGIN EC PRIVATE KEY-----\n  MHcCAQEEIA\n  -----END EC PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:Em9ty-user@cache:6379/0", {"Em9ty-user"}),  # our rule: empty user
        ("postgres://app:Us3r-pw@db/shop", {"Us3r-pw"}),  # the library's
        (f"key: |\n  {PEM}\ncert: public", {PEM}),  # the PEM block, not the whole text
        ("ghp_vxxGKZWGlby02BcHboRBcynXMgWJoleSrcBr", {"ghp_vxxGKZWGlby02BcHboRBcynXMgWJoleSrcBr"}),
        ("sha256:0d750dc2fe4c73868e442230beb74ca300a7c8aad7c8d2c75e432dbd33c335e4", set()),
        ("pod-template-hash 7d4b9c8f5 run b803642b9d884c42", set()),  # hex: left to names
        ("gcr.io/google-samples/microservices-demo/emailservice:v0.8.0", set()),
        ("550e8400-e29b-41d4-a716-446655440000", set()),  # a UUID (the library's filter)
        ("10.0.0.12 and 34.120.5.1", set()),  # IP addresses are no credential
    ],
)
def test_credentials_by_their_form(text: str, expected: set[str]) -> None:
    assert credentials_in(text) == expected


def test_a_random_value_under_a_digest_name_is_not_a_credential() -> None:
    random = "pGf0Rk2wLq8ZtV1xNcB7sHy3DmJ9uAeQ4oTiW6bE"
    redactor = Redactor(KEY)
    obj = redactor.redact("Pod", {"metadata": {"name": "p", "annotations": {"a": random}}})
    assert obj["metadata"]["annotations"]["a"] == redactor.marker(random)
    digest = {"checksum/config": random, "example.com/commit-sha": random}
    obj = redactor.redact("Pod", {"metadata": {"name": "p", "annotations": digest}})
    assert obj["metadata"]["annotations"] == digest


# --- the over-redaction budget ---------------------------------------------------------


def replaced(before: Any, after: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(JSON pointer, original) of every string the redactor changed."""
    if isinstance(before, dict):
        for key, value in before.items():
            if key != "managedFields":
                yield from replaced(value, after.get(key), f"{path}/{key}")
    elif isinstance(before, list):
        for index, value in enumerate(before):
            yield from replaced(value, after[index], f"{path}/{index}")
    elif before != after:
        yield path, before


def test_on_real_manifests_only_credentials_are_replaced() -> None:
    """Online Boutique, Sock Shop and the Kubernetes examples: every value replaced is
    listed here, each a credential or justified."""
    root = SHARED_DATA / "manifests"
    if not root.exists():
        pytest.skip(f"{root} is not there")
    redactor = Redactor(KEY)
    found = set()
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                for pointer, value in replaced(doc, redactor.redact(doc["kind"], doc)):
                    found.add((path.relative_to(root).as_posix(), doc["kind"], pointer, value))
    adapter = "kubernetes-examples/AI/vllm-deployment/hpa/prometheus-adapter.yaml"
    (config_map,) = [
        d
        for d in yaml.safe_load_all((root / adapter).read_text())
        if d and d["kind"] == "ConfigMap"
    ]
    assert found == {
        # credentials: the examples' MySQL root passwords
        ("kubernetes-examples/databases/mysql-cinder-pd/mysql.yaml", "Pod",
         "/spec/containers/0/env/0/value", "yourpassword"),
        ("sock-shop/deploy/kubernetes/complete-demo.yaml", "Deployment",
         "/spec/template/spec/containers/0/env/0/value", "fake_password"),
        # justified: every ConfigMap value is kept as a hash (configuration files may
        # hold anything; a change still shows)
        (adapter, "ConfigMap", "/data/config.yaml", config_map["data"]["config.yaml"]),
    }  # fmt: skip


def test_on_a_real_clusters_objects_and_events_only_last_applied_is_replaced() -> None:
    """A real cluster's Pods, Deployments, DaemonSets, Nodes and Events (Sonobuoy's dump,
    the Honeycomb agent's test data): digests, run ids, image references and mirror
    hashes stay; only ``last-applied-configuration`` (a whole manifest) is replaced."""
    root = SHARED_DATA / "k8s-samples"
    if not root.exists():
        pytest.skip(f"{root} is not there")
    redactor = Redactor(KEY)
    found = set()
    for path in sorted(root.rglob("*.json")):
        data = json.loads(path.read_text())
        items = data.get("items", [data]) if isinstance(data, dict) else data
        for obj in items:
            if "involvedObject" in obj:
                message = obj.get("message", "")
                if redactor.text(message, "message") != message:
                    found.add((path.name, "message"))
            elif "metadata" in obj:
                found.update((path.name, p) for p, _ in replaced(obj, redactor.redact("", obj)))
    assert found and {p for _, p in found} == {f"/metadata/annotations/{LAST_APPLIED}"}


# --- on the real API server, through Kafka and into ClickHouse -------------------------


def plant_all(kube_cluster: LocalCluster) -> None:
    """Every case created on the API server."""
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core = client.CoreV1Api(admin)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        extensions = client.ApiextensionsV1Api(admin)
        extensions.create_custom_resource_definition(APPLICATION_CRD)
        deadline = time.monotonic() + 30
        while not _established(extensions):
            assert time.monotonic() < deadline, "the Application CRD was not established"
            time.sleep(0.2)
        for case in CASES:
            resource, obj = case.object()
            obj["metadata"].pop("uid")
            path = resource.object_path("", NAMESPACE).rstrip("/")
            request(admin, "POST", path, body=obj, content_type="application/json")


def _established(extensions: client.ApiextensionsV1Api) -> bool:
    crd = extensions.read_custom_resource_definition(APPLICATION_CRD["metadata"]["name"])
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def collect(kube_cluster: LocalCluster, extra_env: dict[str, str], *flags: str) -> None:
    env = {**os.environ, "KUBEOPERA_COLLECTOR__REDACTION_KEY": KEY.decode(), **extra_env}
    result = subprocess.run(
        ["kubeopera", "collect", "--kubeconfig", str(kube_cluster.kubeconfig),
         "--cluster-name", "planted", "--watch", APPLICATIONS_WATCH, "--stop-after", "8", *flags],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def assert_no_trace(dump: str, where: str) -> None:
    found = {(case.id, trace) for case in CASES for trace in leaks(case, dump)}
    assert not found, f"{where}: {sorted(found)}"


def test_no_planted_credential_reaches_kafka_or_clickhouse(
    kube_cluster: LocalCluster, kafka: Broker, tmp_path: Path
) -> None:
    from kubeopera.sinks.clickhouse import ChdbBackend, Store

    plant_all(kube_cluster)
    names = {case.object()[1]["metadata"]["name"] for case in CASES}
    collect(kube_cluster, {"KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap})
    records = [r for topic in Topic for r in read_all(kafka.bootstrap, topic.value)]
    mine = [json.loads(r.value) for r in records if b'"cluster":"planted"' in r.value]
    assert names <= {m["name"] for m in mine if m.get("namespace") == NAMESPACE}
    assert_no_trace("\n".join(r.value.decode(errors="replace") for r in records), "Kafka")

    store_path = tmp_path / "store"
    collect(kube_cluster, {"KUBEOPERA_STORAGE__PATH": str(store_path)}, "--embedded")
    with Store(ChdbBackend(store_path), 0) as store:
        tables = store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
        dumps = {t: str(store.query(f"SELECT * FROM {t}").rows()) for t in tables["name"]}
    assert all(f"'{name}'" in dumps["raw_objects"] + dumps["raw_events"] for name in names)
    for table, dump in dumps.items():
        assert_no_trace(dump, table)
