"""``kubeopera actions``: the action service (``serve``), and its client: ask for a
remediation, list and show requests, approve, reject, apply, undo, read the audit.

The client talks to the service over HTTP (``--url``, default $KUBEOPERA_ACTIONS_URL)
with the user's token (from $KUBEOPERA_ACTIONS_TOKEN, or the variable ``--token-env``
names: never an argument, which ``ps`` would show). Each POST carries a fresh
Idempotency-Key and is retried with it when the service cannot be reached, so a retry
never acts twice.
"""

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kubeopera.settings import Settings

KINDS = {
    "deployment": "Deployment",
    "deploy": "Deployment",
    "statefulset": "StatefulSet",
    "sts": "StatefulSet",
    "daemonset": "DaemonSet",
    "ds": "DaemonSet",
    "node": "Node",
    "no": "Node",
    "pod": "Pod",
    "po": "Pod",
}
"""kubectl's names for the kinds remediations change."""

DEFAULT_URL = "http://127.0.0.1:8470"


@click.group(short_help="Remediations: the action service and its client.")
def actions() -> None:
    """Remediations through the action service: authenticated, checked against the
    policy, dry-run first, approved by a second person where the policy says so,
    audited, and undoable."""


@actions.command(short_help="Run the action service.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="KUBEOPERA_ACTIONS_CONFIG",
    required=True,
    help="The service's settings file (default $KUBEOPERA_ACTIONS_CONFIG).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Act as this kubeconfig's user (default: the pod's ServiceAccount).",
)
@click.option("--context", help="The kubeconfig's context.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8470, show_default=True)
@click.option(
    "--publish/--no-publish",
    default=False,
    show_default=True,
    help="Also send every audit record to the actions topic (kafka.bootstrap_servers).",
)
@click.pass_obj
def serve(
    settings: Settings,
    config_path: Path,
    kubeconfig: Path | None,
    context: str | None,
    host: str,
    port: int,
    publish: bool,
) -> None:
    """Serve the API (OpenAPI at /openapi.json) until stopped. Requests a stopped
    service left applying or undoing are settled first, from the objects themselves."""
    import logging

    from kubeopera.actions.config import load_service_config
    from kubeopera.actions.server import serve as run
    from kubeopera.cli.collect import api_client, redactor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    load_service_config(config_path)  # a bad file: one line, before anything starts
    publisher = None
    if publish:
        from kubeopera.collectors.publisher import Publisher
        from kubeopera.collectors.topics import ensure_topics

        kafka = settings.kafka
        ensure_topics(kafka.bootstrap_servers, **kafka.client_options())
        publisher = Publisher(
            kafka.bootstrap_servers, client_id="kubeopera-actions", **kafka.client_options()
        )
    api = api_client(kubeconfig, context)
    run(config_path, api, settings.open_store, host, port, publisher, redactor(settings).redact)


@actions.command("hash-token", short_help="Hash a static token for the settings.")
def hash_token() -> None:
    """Read a token from standard input and print its salted hash, for ``static_tokens``
    in the service's settings (the token itself is kept nowhere)."""
    from kubeopera.actions.auth import hash_token as hashed

    token = sys.stdin.readline().strip()
    if not token:
        raise click.ClickException("no token on standard input")
    click.echo(hashed(token))


def client_options(command: Any) -> Any:
    command = click.option(
        "--url",
        envvar="KUBEOPERA_ACTIONS_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The service (default $KUBEOPERA_ACTIONS_URL).",
    )(command)
    command = click.option(
        "--token-env",
        default="KUBEOPERA_ACTIONS_TOKEN",
        show_default=True,
        help="The environment variable holding your token.",
    )(command)
    command = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")(
        command
    )
    return command


class Client:
    """The service's HTTP API, as one user."""

    def __init__(self, url: str, token_env: str) -> None:
        import requests

        token = os.environ.get(token_env, "").strip()
        if not token:
            raise click.ClickException(f"no token: set {token_env}")
        if not token.isprintable() or " " in token:
            raise click.ClickException(f"{token_env} holds more than a token")
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The answer's JSON object; ``ClickException`` with the service's reason (one
        line) otherwise. Retried, with the same Idempotency-Key, when the service cannot
        be reached or does not answer in time."""
        import requests

        headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
        for attempt in range(3):
            try:
                answer = self.session.request(
                    method, self.url + path, json=body, params=params, headers=headers,
                    timeout=60,
                )  # fmt: skip
                break
            except (requests.ConnectionError, requests.Timeout):
                if attempt == 2:
                    raise click.ClickException(
                        f"cannot reach the action service at {self.url}"
                    ) from None
                time.sleep(1 + attempt)
            except requests.RequestException:  # no URL at all: a typo
                raise click.ClickException(
                    f"{self.url} is not the action service's URL (http://HOST:PORT)"
                ) from None
        try:
            found = answer.json()
        except ValueError:
            found = None
        if answer.status_code >= 400:
            problem = found if isinstance(found, dict) else {"detail": answer.text[:200]}
            rule = problem.get("rule")
            said = f" (rule {rule})" if rule and rule != "no rule" else ""
            reason = " ".join(str(problem.get("detail", "")).split())
            raise click.ClickException(f"{answer.status_code}: {reason}{said}")
        if not isinstance(found, dict):
            raise click.ClickException(f"{self.url} answered what is not the action service's")
        return found


@actions.command(short_help="Ask for a remediation.")
@click.argument(
    "action",
    type=click.Choice(
        [
            "scale",
            "restart",
            "rollback",
            "revert_drift",
            "set_resources",
            "cordon",
            "uncordon",
            "drain",
            "delete_pod",
        ]
    ),
    required=False,
)
@click.argument("target", required=False, metavar="KIND/NAME")
@click.option("--namespace", "-n", default="", help="The object's namespace (none for a node).")
@click.option("--replicas", type=click.IntRange(min=0), help="scale: the new replica count.")
@click.option("--container", help="set_resources: the container.")
@click.option(
    "--requests",
    "requests_",
    multiple=True,
    metavar="RESOURCE=QUANTITY",
    help="set_resources: cpu=500m, memory=256Mi (repeat).",
)
@click.option(
    "--limits", multiple=True, metavar="RESOURCE=QUANTITY", help="set_resources: as --requests."
)
@click.option(
    "--to",
    "to_time",
    help="rollback: the pod template as it was at this time "
    "(ISO, UTC; from `kubeopera timeline`); default: before its newest change.",
)
@click.option("--finding", help="revert_drift: the drift finding's fingerprint.")
@click.option("--from-finding", help="Ask for what this finding suggests (drift: revert).")
@click.option("--comment", default="", help="Why: shown to the approver and in the audit.")
@client_options
def request(
    action: str | None,
    target: str | None,
    namespace: str,
    replicas: int | None,
    container: str | None,
    requests_: tuple[str, ...],
    limits: tuple[str, ...],
    to_time: str | None,
    finding: str | None,
    from_finding: str | None,
    comment: str,
    url: str,
    token_env: str,
    as_json: bool,
) -> None:
    """Ask for ACTION on KIND/NAME (deployment/web, node/n1, pod/x), or with
    --from-finding for what a finding suggests. Prints the dry-run's diff and the
    request's state: pending (approve it), or approved (the policy auto-approves)."""
    body: dict[str, Any] = {"comment": comment, "namespace": namespace}
    if from_finding:
        body["from_finding"] = from_finding
    elif action is None or target is None:
        raise click.UsageError("give ACTION and KIND/NAME, or --from-finding")
    if target is not None:
        kind, _, name = target.partition("/")
        if kind.lower() not in KINDS or not name:
            raise click.UsageError(
                f"{target}: give KIND/NAME, KIND one of {', '.join(sorted(set(KINDS.values())))}"
            )
        body.update(action=action, kind=KINDS[kind.lower()], name=name)
    params: dict[str, Any] = {"replicas": replicas, "to": _utc(to_time), "finding": finding}
    if container or requests_ or limits:
        params["resources"] = {
            "container": container,
            "requests": _pairs(requests_),
            "limits": _pairs(limits),
        }
    body["params"] = {k: v for k, v in params.items() if v is not None}
    _show(Client(url, token_env).call("POST", "/v1/requests", body), as_json)


def _utc(text: str | None) -> str | None:
    """An ISO time as UTC (one without a zone is taken as UTC)."""
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise click.UsageError(
            f"--to {text}: give an ISO time, e.g. 2026-03-06T09:30:00Z"
        ) from None
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).isoformat()


def _pairs(given: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for pair in given:
        resource, _, quantity = pair.partition("=")
        if not quantity:
            raise click.UsageError(f"{pair}: give RESOURCE=QUANTITY, e.g. cpu=500m")
        pairs[resource.strip()] = quantity.strip()
    return pairs


@actions.command("list", short_help="List requests.")
@click.option("--state", help="pending, approved, applied, ...")
@click.option("--namespace", "-n")
@click.option("--requester")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@client_options
def list_(
    state: str | None,
    namespace: str | None,
    requester: str | None,
    limit: int,
    offset: int,
    url: str,
    token_env: str,
    as_json: bool,
) -> None:
    """Requests, newest first."""
    filters = {"state": state, "namespace": namespace, "requester": requester}
    params = {k: v for k, v in filters.items() if v} | {"limit": limit, "offset": offset}
    page = Client(url, token_env).call("GET", "/v1/requests", params=params)
    _print_page(page, as_json, "requests", _request_line)


@actions.command(short_help="Show a request and its diff.")
@click.argument("request_id")
@client_options
def show(request_id: str, url: str, token_env: str, as_json: bool) -> None:
    """One request: its state, rule, approvals and the dry-run's diff."""
    _show(Client(url, token_env).call("GET", f"/v1/requests/{request_id}"), as_json)


def _decision(verb: str, short: str) -> Any:
    @actions.command(verb, short_help=short)
    @click.argument("request_id")
    @click.option("--comment", default="", help="Recorded with it.")
    @client_options
    def decide(request_id: str, comment: str, url: str, token_env: str, as_json: bool) -> None:
        body = {"comment": comment} if verb in ("approve", "reject") else None
        _show(
            Client(url, token_env).call("POST", f"/v1/requests/{request_id}/{verb}", body), as_json
        )

    decide.__doc__ = short
    return decide


approve = _decision("approve", "Approve a pending request (not your own).")
reject = _decision("reject", "Reject a request, or withdraw your own.")
apply = _decision("apply", "Apply an approved request.")
undo = _decision("undo", "Put the object back as it was before the apply.")


@actions.command(short_help="Read the audit.")
@click.option("--request", "request_id", help="One request's records.")
@click.option("--who", help="One caller's records.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@client_options
def audit(
    request_id: str | None, who: str | None, limit: int, url: str, token_env: str, as_json: bool
) -> None:
    """Audit records, newest first: every call, dry-run, approval, apply and undo."""
    params = {k: v for k, v in {"request_id": request_id, "who": who}.items() if v}
    page = Client(url, token_env).call("GET", "/v1/audit", params={**params, "limit": limit})
    _print_page(page, as_json, "records", _audit_line)


def _request_line(item: dict[str, Any]) -> str:
    return (
        f"{item['id']}  {item['state']:<9} {item['action']:<13} {_target(item)}  "
        f"by {item['requester']}  {item['created_at']}"
    )


def _audit_line(row: dict[str, Any]) -> str:
    return (
        f"{row['at']}  {row['event']:<8} {row['result']:<8} {row['status'] or '':>3} "
        f"{row['who'] or '-':<24} {row['method']} {row['route']} {row['reason']}".rstrip()
    )


def _print_page(
    page: dict[str, Any], as_json: bool, what: str, line: Callable[[dict[str, Any]], str]
) -> None:
    """A page of the service's answer: as JSON, or a line per item and a count."""
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    if not isinstance(page.get("items"), list) or "total" not in page:
        raise click.ClickException("the answer is not a page of the action service")
    for item in page["items"]:
        click.echo(line(item))
    click.echo(f"{len(page['items'])} of {page['total']} {what} (from {page['offset']})")


def _target(item: dict[str, Any]) -> str:
    target = item["target"]
    where = f"{target['namespace']}/" if target["namespace"] else ""
    return f"{target['kind']} {where}{target['name']}"


def _show(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(item, indent=2))
        return
    if not {"id", "action", "target", "state", "diff"} <= item.keys():
        raise click.ClickException("the answer is not a request of the action service")
    click.echo(
        f"request {item['id']}: {item['action']} {_target(item)} in {item['target']['cluster']}"
    )
    click.echo(f"  state: {item['state']}" + (f" ({item['reason']})" if item["reason"] else ""))
    click.echo(
        f"  requested by {item['requester']} at {item['created_at']}; rule {item['rule']}"
        + (" (auto-approved)" if item["auto_approve"] else "")
    )
    for approval in item["approvals"]:
        click.echo(f"  approved by {approval['by']} at {approval['at']}")
    if item["applied_at"]:
        click.echo(f"  applied by {item['applied_by']} at {item['applied_at']}")
    if item["undone_at"]:
        click.echo(f"  undone by {item['undone_by']} at {item['undone_at']}")
    if item.get("rejected_by"):
        click.echo(f"  rejected by {item['rejected_by']}")
    if item.get("undo") is None and item.get("undo_note"):
        click.echo(f"  not undoable: {item['undo_note']}")
    click.echo("  diff (its dry-run):" if item["diff"] else "  diff (its dry-run): none")
    for change in item["diff"]:
        old, new = ("(none)" if change[side] is None else change[side] for side in ("old", "new"))
        click.echo(f"    {change['change']:<8} {change['path']}: {old} -> {new}")
    for pod, answer in item["evictions"].items():
        click.echo(f"    evict {pod}: {answer}")
