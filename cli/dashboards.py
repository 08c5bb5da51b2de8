"""``kubeopera dashboards``: the Grafana dashboards; ``push`` sends them, their folder and
their ClickHouse data source to a running Grafana through its HTTP API."""

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import click

from kubeopera.settings import Settings


@click.group(short_help="The Grafana dashboards: build their JSON, push them to a Grafana.")
def dashboards() -> None:
    """The dashboards as code (kubeopera.dashboards) and what Grafana needs to show them."""


@dashboards.command(short_help="Write each dashboard's Grafana JSON into a folder.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dashboards/json"),
    show_default=True,
    help="The folder (created when absent); the repository commits dashboards/json.",
)
def build(output: Path) -> None:
    """Write <uid>.json of every dashboard into --output, as Grafana's provisioning reads
    them (deploy/grafana/provisioning/dashboards)."""
    from kubeopera.dashboards.grafana import write_all

    for path in write_all(output):
        click.echo(f"wrote {path}")


@dashboards.command(short_help="Create or update the folder, data source and dashboards.")
@click.option(
    "--url", required=True, metavar="URL", help="Grafana's root URL, e.g. http://localhost:3000."
)
@click.option(
    "--folder",
    default="KubeOpera",
    metavar="TITLE",
    show_default=True,
    help="The folder's title (its uid is made from it: kubeopera).",
)
@click.option(
    "--token-env",
    default="GRAFANA_TOKEN",
    show_default=True,
    metavar="NAME",
    help="The environment variable holding a service account token (Admin role).",
)
@click.option(
    "--clickhouse-host", metavar="HOST", help="Where Grafana reaches ClickHouse [storage.host]."
)
@click.option(
    "--clickhouse-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="[native: 9000, or 9440 with TLS; http: 8123, or 8443 with TLS; native takes "
    "storage.port instead when it is not 9000]",
)
@click.option(
    "--clickhouse-protocol",
    type=click.Choice(["native", "http"]),
    default="native",
    show_default=True,
)
@click.option("--clickhouse-user", metavar="USER", help="[storage.user]; a read-only user is best.")
@click.option("--clickhouse-database", metavar="NAME", help="[storage.database]")
@click.option(
    "--clickhouse-secure/--clickhouse-insecure", default=None, help="TLS [storage.secure]"
)
@click.option(
    "--clickhouse-password-env",
    metavar="NAME",
    help="The environment variable holding that user's password [storage.password when "
    "the user is storage.user, else none]; on an update, none keeps the password Grafana "
    "holds for the same user.",
)
@click.pass_context
def push(
    ctx: click.Context,
    /,
    url: str,
    folder: str,
    token_env: str,
    clickhouse_host: str | None,
    clickhouse_port: int | None,
    clickhouse_protocol: Literal["native", "http"],
    clickhouse_user: str | None,
    clickhouse_database: str | None,
    clickhouse_secure: bool | None,
    clickhouse_password_env: str | None,
) -> None:
    """Push the dashboards to the Grafana at --url, in the folder --folder (created when
    absent), with the ClickHouse data source they read (kubeopera-clickhouse: created, or
    updated to these settings). Grafana needs the grafana-clickhouse-datasource plugin.
    A second push updates each dashboard (a new version), nothing is duplicated.

    The data source's server defaults to the storage settings (storage.host, .port,
    .user, .password, .database, .secure): give the --clickhouse-* options where Grafana
    reaches ClickHouse by another address or user. An update keeps what was set in
    Grafana's UI besides these settings (e.g. tlsSkipVerify), and the password when none
    is given."""
    from kubeopera.dashboards import DASHBOARDS
    from kubeopera.dashboards.grafana import dashboard_json
    from kubeopera.deploy.grafana.push import ClickHouseSource, GrafanaError, folder_uid
    from kubeopera.deploy.grafana.push import push as send

    _check_url(url)
    try:
        folder_uid(folder)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--folder") from error
    token = _from_env(token_env, "--token-env", "a Grafana service account token (Admin role)")
    settings = ctx.find_object(Settings)
    assert settings is not None, "the group callback loads the settings"
    storage = settings.storage
    secure = storage.secure if clickhouse_secure is None else clickhouse_secure
    if clickhouse_port is None:
        clickhouse_port = _default_port(clickhouse_protocol, secure, storage.port)
    user = clickhouse_user or storage.user
    # storage.password is storage.user's: never another user's
    password = storage.password.get_secret_value() if user == storage.user else ""
    if clickhouse_password_env is not None:
        password = _from_env(clickhouse_password_env, "--clickhouse-password-env", "a password")
    source = ClickHouseSource(
        host=clickhouse_host or storage.host,
        port=clickhouse_port,
        protocol=clickhouse_protocol,
        username=user,
        database=clickhouse_database or storage.database,
        secure=secure,
        password=password,
    )
    boards = [dashboard_json(board) for board in DASHBOARDS]
    try:
        report = send(url, token, source, boards, folder, token_env)
    except GrafanaError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Grafana {report.grafana_version} at {url.rstrip('/')}")
    for item in report.items:
        detail = f": {item.detail}" if item.detail else ""
        click.echo(f"{item.action:<8} {item.kind} {item.title} ({item.uid}){detail}")
    if storage.backend == "chdb" and clickhouse_host is None:
        click.echo(
            "note: the store is embedded (storage.backend chdb), which Grafana cannot read: "
            "the dashboards show a ClickHouse server's data (storage.backend server)"
        )


_PORTS = {
    ("native", False): 9000,
    ("native", True): 9440,
    ("http", False): 8123,
    ("http", True): 8443,
}
"""ClickHouse's default ports by protocol and TLS."""


def _default_port(protocol: Literal["native", "http"], secure: bool, storage_port: int) -> int:
    """The port for ``protocol`` with TLS or not, or, for native, ``storage_port`` (a
    native port) when it is set to another than the plain default 9000."""
    if protocol == "native" and storage_port != _PORTS["native", False]:
        return storage_port
    return _PORTS[protocol, secure]


def _check_url(url: str) -> None:
    """Refuse what is not a Grafana root URL, and credentials in it (they belong in the
    token's environment variable, and would be printed with the URL)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise click.BadParameter(
            "no credentials in the URL: the token goes in the --token-env variable",
            param_hint="--url",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise click.BadParameter(
            f"{url!r} is not Grafana's root URL (http[s]://host[:port][/path])",
            param_hint="--url",
        )


def _from_env(name: str, option: str, what: str) -> str:
    """The value of the environment variable ``name``; a ``UsageError`` naming ``option``
    when it is unset or empty."""
    value = os.environ.get(name, "")
    if not value:
        raise click.UsageError(
            f"${name} is not set: export it with {what}, or name another variable with {option}"
        )
    return value
