"""``kubeopera actions`` as a user runs it: the client commands against the running
service (the real API server behind it), with each user's token from the environment;
bad input as one ``kubeopera: error:`` line."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from actions_tools import NAMESPACE, Running, create_deployment, read, user
from cli_tools import run_kubeopera
from kubernetes import client

from kubeopera.actions.auth import token_matches

pytestmark = pytest.mark.slow


def kubeopera(
    service: Running, token: str | None, *arguments: str
) -> subprocess.CompletedProcess[str]:
    env = {"KUBEOPERA_ACTIONS_URL": service.url}
    if token is not None:
        env["KUBEOPERA_ACTIONS_TOKEN"] = token
    return run_kubeopera(None, "actions", *arguments, extra_env=env)


def test_request_approve_apply_show_list_and_audit(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "cli-web", replicas=2)
    asked = kubeopera(actions_service, tokens["alice"], "request", "scale", "deployment/cli-web",
                      "-n", NAMESPACE, "--replicas", "3", "--comment", "more")  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    rid = re.match(r"request ([0-9a-f]{16}): scale Deployment shop/cli-web in kube", asked.stdout)
    assert rid is not None, asked.stdout
    assert "  state: pending" in asked.stdout
    assert "    MODIFIED /spec/replicas: 2 -> 3" in asked.stdout
    assert "  diff (its dry-run):" in asked.stdout
    approved = kubeopera(actions_service, tokens["bob"], "approve", rid[1], "--comment", "ok")
    assert f"  approved by {user('bob')}" in approved.stdout, approved.stderr
    applied = kubeopera(actions_service, tokens["alice"], "apply", rid[1], "--json")
    assert json.loads(applied.stdout)["state"] == "applied", applied.stderr
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/cli-web"
    assert read(kube_admin, path)["spec"]["replicas"] == 3
    listed = kubeopera(actions_service, tokens["carol"], "list", "--state", "applied")
    assert any(line.startswith(f"{rid[1]}  applied") for line in listed.stdout.splitlines())
    audit = kubeopera(actions_service, tokens["carol"], "audit", "--request", rid[1])
    events = [line.split()[1] for line in audit.stdout.splitlines()[:-1]]
    # newest first: the calls of apply, approve and request, each with its events
    assert [e for e in events if e != "call"] == ["apply", "apply", "approve", "dry_run"]
    again = kubeopera(actions_service, tokens["alice"], "apply", rid[1])
    assert again.returncode == 1
    assert again.stderr == (f"kubeopera: error: 409: request {rid[1]} is applied already\n")


def test_refusals_and_bad_input_are_one_line(
    actions_service: Running, tokens: dict[str, str], tmp_path: Path
) -> None:
    no_token = kubeopera(actions_service, None, "list")
    assert no_token.stderr == "kubeopera: error: no token: set KUBEOPERA_ACTIONS_TOKEN\n"
    protected = kubeopera(actions_service, tokens["bob"], "request", "scale", "deploy/dns",
                          "-n", "kube-system", "--replicas", "2")  # fmt: skip
    assert protected.stderr == (
        "kubeopera: error: 403: namespace kube-system is protected (rule protected_namespaces)\n"
    )
    assert tokens["bob"] not in protected.stderr + protected.stdout
    bad_target = kubeopera(actions_service, tokens["bob"], "request", "scale", "web")
    assert bad_target.returncode == 2 and bad_target.stderr.startswith("kubeopera: error: web:")
    unreachable = run_kubeopera(None, "actions", "list", extra_env={
        "KUBEOPERA_ACTIONS_URL": "http://127.0.0.1:9", "KUBEOPERA_ACTIONS_TOKEN": "t"})  # fmt: skip
    assert unreachable.stderr == (
        "kubeopera: error: cannot reach the action service at http://127.0.0.1:9\n"
    )
    (tmp_path / "actions.yaml").write_text("cluster: kube\npolicy: policy.yaml\nfour_eyes: maybe\n")
    bad_config = run_kubeopera(None, "actions", "serve", "--config", str(tmp_path / "actions.yaml"))
    assert bad_config.returncode == 1
    assert bad_config.stderr.startswith(
        f"kubeopera: error: {tmp_path / 'actions.yaml'}:3: four_eyes"
    )
    assert bad_config.stderr.count("\n") == 1


def test_hash_token_prints_a_salted_hash_of_standard_input() -> None:
    first = run_kubeopera(
        None, "actions", "hash-token", stdin="s3cret-token-0123456789abcdef0123456789\n"
    )
    second = run_kubeopera(
        None, "actions", "hash-token", stdin="s3cret-token-0123456789abcdef0123456789\n"
    )
    assert first.returncode == 0 and first.stdout != second.stdout  # salted
    assert token_matches("s3cret-token-0123456789abcdef0123456789", first.stdout.strip())
    assert "s3cret-token" not in first.stdout
    short = run_kubeopera(None, "actions", "hash-token", stdin="short\n")
    assert short.stderr == (
        "kubeopera: error: a static token has 32 characters at least (openssl rand -hex 32)\n"
    )
