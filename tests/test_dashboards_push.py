"""``kubeopera dashboards push`` against Grafana's HTTP API on loopback (``grafana_api``):
the calls it makes and what Grafana then holds, a second push updating the first, the
errors a user meets as one line without the token; and the provisioning files, which
must describe the same data source and folder."""

import http.server
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_tools import run_kubeopera
from click.testing import CliRunner
from grafana_api import GrafanaAPI
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from kubeopera.cli.main import cli
from kubeopera.dashboards import DASHBOARDS
from kubeopera.dashboards.clickhouse_query import DATASOURCE_TYPE
from kubeopera.dashboards.grafana import DATASOURCE_UID, dashboard_json
from kubeopera.deploy.grafana.push import (
    DATASOURCE_NAME,
    ClickHouseSource,
    GrafanaError,
    folder_uid,
    push,
)

TOKEN = "glsa_pushTestToken0123456789abcdef_0a1b2c3d"  # a service account token's form
EDITOR_TOKEN = "glsa_editorTestToken0123456789abcdef_0a1b2c"
PASSWORD = "ch-password-never-shown"
RO_PASSWORD = "ro-password-never-shown"
NO_STORAGE_PASSWORD = {"KUBEOPERA_STORAGE__PASSWORD": ""}
PROVISIONING = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "provisioning"

FIRST_PUSH = [
    ("GET", "/api/health"),
    ("GET", "/api/folders/kubeopera"),
    ("POST", "/api/folders"),
    ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
    ("POST", "/api/datasources"),
    *[("POST", "/api/dashboards/db")] * len(DASHBOARDS),
]
SECOND_PUSH = [
    ("GET", "/api/health"),
    ("GET", "/api/folders/kubeopera"),
    ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
    ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}"),
    *[("POST", "/api/dashboards/db")] * len(DASHBOARDS),
]


@pytest.fixture
def grafana() -> Iterator[GrafanaAPI]:
    with GrafanaAPI({TOKEN: "Admin", EDITOR_TOKEN: "Editor"}) as server:
        yield server


def push_command(
    grafana: GrafanaAPI, *options: str, env: dict[str, str] | None = None
) -> list[str]:
    """``kubeopera dashboards push`` run in this process (click's runner), the storage
    password PASSWORD unless ``env`` says otherwise; its lines."""
    result = CliRunner().invoke(
        cli,
        ["dashboards", "push", "--url", grafana.url, *options],
        env={"GRAFANA_TOKEN": TOKEN, "KUBEOPERA_STORAGE__PASSWORD": PASSWORD, **(env or {})},
    )
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output and PASSWORD not in result.output
    assert RO_PASSWORD not in result.output
    lines: list[str] = result.output.splitlines()
    return lines


def test_a_push_creates_the_folder_data_source_and_every_dashboard(grafana: GrafanaAPI) -> None:
    lines = push_command(grafana)
    assert lines[0] == f"Grafana 11.6.0 at {grafana.url}"
    assert lines[1] == "created  folder KubeOpera (kubeopera)"
    assert lines[2] == (
        f"created  data source {DATASOURCE_NAME} ({DATASOURCE_UID}): "
        "native://localhost:9000, database kubeopera, user default"
    )
    for line, board in zip(lines[3 : 3 + len(DASHBOARDS)], DASHBOARDS, strict=True):
        assert line.startswith(f"created  dashboard {board.title} ({board.uid}): version 1, ")
        assert line.endswith(f"{grafana.url}/d/{board.uid}/{slug(board.title)}")
    assert grafana.calls() == FIRST_PUSH
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}

    assert grafana.folders["kubeopera"]["title"] == "KubeOpera"
    assert list(grafana.datasources) == [DATASOURCE_UID]
    source = grafana.datasources[DATASOURCE_UID]
    assert (source["name"], source["type"], source["access"]) == (
        DATASOURCE_NAME,
        DATASOURCE_TYPE,
        "proxy",
    )
    assert source["jsonData"] == {
        "host": "localhost",
        "port": 9000,
        "protocol": "native",
        "secure": False,
        "username": "default",
        "defaultDatabase": "kubeopera",
    }
    assert grafana.secrets[DATASOURCE_UID] == {"password": PASSWORD}
    sent = [r.body for r in grafana.requests]
    assert [b["secureJsonData"] for b in sent if b and "secureJsonData" in b] == [
        {"password": PASSWORD}
    ]
    assert PASSWORD not in json.dumps([{**b, "secureJsonData": None} for b in sent if b])

    assert set(grafana.dashboards) == {board.uid for board in DASHBOARDS}
    for board in DASHBOARDS:
        held = grafana.dashboards[board.uid]
        assert held["folderUid"] == "kubeopera"
        assert held["message"] == "kubeopera dashboards push"
        built = dashboard_json(board)
        assert {k: v for k, v in held["dashboard"].items() if k not in ("id", "version")} == {
            k: v for k, v in built.items() if k not in ("id", "version")
        }
        references = list(data_sources(held["dashboard"]))
        assert references, f"{board.uid} reads no data source"
        assert all(r == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID} for r in references)

    found = GrafanaApi.from_url(grafana.url, credential=TOKEN).client.GET(
        "/search?type=dash-db&folderUIDs=kubeopera"
    )
    assert sorted(hit["uid"] for hit in found) == sorted(board.uid for board in DASHBOARDS)


def test_a_second_push_updates_what_the_first_made(grafana: GrafanaAPI) -> None:
    push_command(grafana)
    ids = {uid: held["dashboard"]["id"] for uid, held in grafana.dashboards.items()}
    lines = push_command(
        grafana,
        "--clickhouse-host",
        "ch.example",
        "--clickhouse-protocol",
        "http",
        "--clickhouse-secure",
    )
    assert lines[1] == "kept     folder KubeOpera (kubeopera)"
    assert lines[2] == (
        f"updated  data source {DATASOURCE_NAME} ({DATASOURCE_UID}): "
        "http://ch.example:8443 (TLS), database kubeopera, user default"
    )
    assert all(
        line.startswith(f"updated  dashboard {board.title} ({board.uid}): version 2, ")
        for line, board in zip(lines[3 : 3 + len(DASHBOARDS)], DASHBOARDS, strict=True)
    )
    assert grafana.calls() == FIRST_PUSH + SECOND_PUSH
    assert len(grafana.dashboards) == len(DASHBOARDS)
    assert {held["dashboard"]["version"] for held in grafana.dashboards.values()} == {2}
    assert {uid: held["dashboard"]["id"] for uid, held in grafana.dashboards.items()} == ids
    assert all(r.body["dashboard"]["id"] is None for r in grafana.requests if r.path.endswith("db"))
    assert list(grafana.datasources) == [DATASOURCE_UID]
    source = grafana.datasources[DATASOURCE_UID]
    assert source["version"] == 2
    assert source["jsonData"] == {
        "host": "ch.example",
        "port": 8443,
        "protocol": "http",
        "secure": True,
        "username": "default",
        "defaultDatabase": "kubeopera",
    }
    assert grafana.secrets[DATASOURCE_UID] == {"password": PASSWORD}


def test_a_second_push_keeps_the_password_and_settings_made_in_grafana(
    grafana: GrafanaAPI,
) -> None:
    """Grafana's PUT replaces jsonData whole and overwrites each secure field it is sent:
    an update merges into the existing jsonData and sends no password when none is
    given."""
    push_command(grafana)
    api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
    shown = api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    assert shown["secureJsonFields"] == {"password": True}
    ui_settings = {"tlsSkipVerify": True, "path": "/ch", "httpHeaders": [{"name": "X-A"}]}
    edited = {**shown, "isDefault": True, "jsonData": {**shown["jsonData"], **ui_settings}}
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, edited)  # as Grafana's UI does

    lines = push_command(grafana, "--clickhouse-host", "ch.example", env=NO_STORAGE_PASSWORD)
    assert lines[2].startswith(f"updated  data source {DATASOURCE_NAME}")
    put = grafana.requests[-1 - len(DASHBOARDS)]
    assert (put.method, "secureJsonData" in put.body) == ("PUT", False)
    source = grafana.datasources[DATASOURCE_UID]
    assert source["jsonData"] == {
        "host": "ch.example",
        "port": 9000,
        "protocol": "native",
        "secure": False,
        "username": "default",
        "defaultDatabase": "kubeopera",
        **ui_settings,
    }
    assert source["isDefault"] is True
    assert grafana.secrets[DATASOURCE_UID] == {"password": PASSWORD}

    push_command(grafana, env={"KUBEOPERA_STORAGE__PASSWORD": "a-new-one"})  # given: sent
    assert grafana.secrets[DATASOURCE_UID] == {"password": "a-new-one"}
    assert grafana.datasources[DATASOURCE_UID]["jsonData"]["tlsSkipVerify"] is True


def test_another_user_never_gets_the_storage_users_password(grafana: GrafanaAPI) -> None:
    lines = push_command(grafana, "--clickhouse-user", "ro")
    assert lines[2].endswith("native://localhost:9000, database kubeopera, user ro")
    assert grafana.datasources[DATASOURCE_UID]["jsonData"]["username"] == "ro"
    assert grafana.secrets[DATASOURCE_UID] == {}
    assert not any(r.body and "secureJsonData" in r.body for r in grafana.requests)

    given = ("--clickhouse-user", "ro", "--clickhouse-password-env", "RO_PASSWORD")
    push_command(grafana, *given, env={"RO_PASSWORD": RO_PASSWORD})
    assert grafana.secrets[DATASOURCE_UID] == {"password": RO_PASSWORD}
    push_command(grafana, "--clickhouse-user", "ro")  # none given: Grafana's is kept
    assert grafana.secrets[DATASOURCE_UID] == {"password": RO_PASSWORD}

    push_command(grafana, "--clickhouse-user", "default")  # storage.user: its password
    assert grafana.secrets[DATASOURCE_UID] == {"password": PASSWORD}
    push_command(grafana, "--clickhouse-user", "ro")  # the previous user's is cleared
    assert grafana.secrets[DATASOURCE_UID] == {"password": ""}
    shown = GrafanaApi.from_url(grafana.url, credential=TOKEN).datasource.get_datasource_by_uid(
        DATASOURCE_UID
    )
    assert shown["secureJsonFields"] == {}


@pytest.mark.parametrize(
    ("options", "env", "port"),
    [
        (("--clickhouse-secure",), {}, 9440),
        ((), {"KUBEOPERA_STORAGE__SECURE": "true"}, 9440),
        (("--clickhouse-secure", "--clickhouse-protocol", "http"), {}, 8443),
        (("--clickhouse-protocol", "http"), {}, 8123),
        (("--clickhouse-protocol", "http"), {"KUBEOPERA_STORAGE__PORT": "19000"}, 8123),
        (("--clickhouse-secure",), {"KUBEOPERA_STORAGE__PORT": "19440"}, 19440),
        ((), {"KUBEOPERA_STORAGE__PORT": "19000"}, 19000),
        (("--clickhouse-secure", "--clickhouse-port", "9000"), {}, 9000),
        (("--clickhouse-port", "9999", "--clickhouse-protocol", "http"), {}, 9999),
    ],
)
def test_the_default_port_follows_the_protocol_and_tls(
    grafana: GrafanaAPI, options: tuple[str, ...], env: dict[str, str], port: int
) -> None:
    """9000/9440 native, 8123/8443 http, unless --clickhouse-port or (native) a
    storage.port other than 9000 says otherwise."""
    push_command(grafana, *options, env=env)
    assert grafana.datasources[DATASOURCE_UID]["jsonData"]["port"] == port


def test_the_test_server_updates_data_sources_as_grafana_does(grafana: GrafanaAPI) -> None:
    """A PUT replaces jsonData whole; it overwrites the secure fields it names (an empty
    one then is not shown as set) and keeps the others."""
    api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
    model = {"uid": "t", "name": "T", "type": DATASOURCE_TYPE, "access": "proxy"}
    api.datasource.create_datasource(
        {**model, "jsonData": {"a": 1, "b": 2}, "secureJsonData": {"password": "p", "k": "v"}}
    )
    api.datasource.update_datasource_by_uid("t", {**model, "jsonData": {"a": 3}})
    shown = api.datasource.get_datasource_by_uid("t")
    assert shown["jsonData"] == {"a": 3}
    assert shown["secureJsonFields"] == {"password": True, "k": True}
    assert "secureJsonData" not in shown
    api.datasource.update_datasource_by_uid("t", {**model, "secureJsonData": {"password": ""}})
    assert api.datasource.get_datasource_by_uid("t")["secureJsonFields"] == {"k": True}
    assert grafana.secrets["t"] == {"password": "", "k": "v"}


def test_a_token_without_the_admin_role_is_told_which(grafana: GrafanaAPI) -> None:
    with pytest.raises(GrafanaError) as refused:
        push(grafana.url, EDITOR_TOKEN, source(), [dashboard_json(DASHBOARDS[0])])
    assert str(refused.value) == (
        f"Grafana at {grafana.url} refused the token when creating data source "
        f"{DATASOURCE_UID} (403 Forbidden: You'll need additional permissions to perform "
        "this action. Permissions needed: datasources:create): set GRAFANA_TOKEN to a "
        "service account token with the Admin role"
    )
    assert list(grafana.folders) == ["kubeopera"]  # what came before stays
    assert not grafana.datasources and not grafana.dashboards


def test_a_grafana_behind_a_proxy_under_a_sub_path() -> None:
    with GrafanaAPI({TOKEN: "Admin"}, sub_path="/grafana") as grafana:
        report = push(grafana.url, TOKEN, source(), [dashboard_json(DASHBOARDS[0])])
    assert grafana.url.endswith("/grafana")
    assert grafana.calls() == [(method, f"/grafana{path}") for method, path in FIRST_PUSH[:6]]
    board = DASHBOARDS[0]
    assert report.items[-1].detail == f"version 1, {grafana.url}/d/{board.uid}/{slug(board.title)}"


def test_any_other_refusal_is_grafanas_status_and_message(grafana: GrafanaAPI) -> None:
    grafana.provision_datasource(  # the name taken by another data source
        {"uid": "by-hand", "name": DATASOURCE_NAME, "type": DATASOURCE_TYPE, "access": "proxy"}
    )
    with pytest.raises(GrafanaError) as refused:
        push(grafana.url, TOKEN, source(), [])
    assert str(refused.value) == (
        f"Grafana at {grafana.url} answered 409 Conflict when creating data source "
        f"{DATASOURCE_UID}: data source with the same name already exists"
    )


def test_a_server_that_is_not_grafana_gives_the_start_of_its_answer() -> None:
    page = "<html><body>" + "<p>Not Found: no such page here.</p>" * 200 + "</body></html>"

    class NotGrafana(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page.encode())

        def log_message(self, *_: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotGrafana) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(GrafanaError) as refused:
            push(url, TOKEN, source(), [])
        server.shutdown()
    line = str(refused.value)
    assert line.startswith(f"Grafana at {url} answered 404 Not Found when ")
    assert "\n" not in line and len(line) < 400 and line.endswith("...")


def test_a_data_source_provisioned_from_the_file_is_kept(grafana: GrafanaAPI) -> None:
    provisioned = provisioning("datasources")["datasources"][0]
    grafana.provision_datasource(provisioned)
    report = push(grafana.url, TOKEN, source(), [dashboard_json(b) for b in DASHBOARDS])
    kept = report.items[1]
    assert (kept.kind, kept.uid, kept.action) == ("data source", DATASOURCE_UID, "kept")
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") not in grafana.calls()
    assert grafana.datasources[DATASOURCE_UID]["jsonData"]["host"] == "clickhouse"
    assert len(grafana.dashboards) == len(DASHBOARDS)


def test_the_provisioning_files_describe_what_push_makes() -> None:
    """One data source and one folder, whichever way they reach Grafana."""
    files = provisioning("datasources")
    assert files["apiVersion"] == 1
    (provisioned,) = files["datasources"]
    pushed = source().model()
    for key in ("uid", "name", "type", "access"):
        assert provisioned[key] == pushed[key], key
    # the plugin's config model (CHConfig in grafana/clickhouse-datasource src/types/config.ts)
    assert set(provisioned["jsonData"]) == set(pushed["jsonData"]) == {
        "host", "port", "protocol", "secure", "username", "defaultDatabase",
    }  # fmt: skip
    assert provisioned["jsonData"]["protocol"] in ("native", "http")
    assert provisioned["secureJsonData"] == {"password": "${CLICKHOUSE_PASSWORD}"}

    dashboards = provisioning("dashboards")
    (provider,) = dashboards["providers"]
    assert (provider["folder"], provider["folderUid"]) == ("KubeOpera", folder_uid("KubeOpera"))
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/kubeopera"


@pytest.mark.parametrize(
    ("title", "uid"),
    [
        ("KubeOpera", "kubeopera"),
        ("FinOps / Cost (prod)", "finops-cost-prod"),
        ("x" * 50, "x" * 40),
    ],
)
def test_a_folder_uid_is_made_from_its_title(title: str, uid: str) -> None:
    assert folder_uid(title) == uid


def test_a_folder_title_without_letters_is_refused() -> None:
    with pytest.raises(ValueError, match="no letter or digit"):
        folder_uid(" / ")


def test_the_test_server_saves_dashboards_as_grafana_does(grafana: GrafanaAPI) -> None:
    """Matched by uid, a version per save; a stale version without overwrite is refused
    (412), an id it does not hold is not found (404)."""
    api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
    board = {"uid": "kubeopera-t", "title": "T", "panels": []}
    assert api.dashboard.update_dashboard({"dashboard": board})["version"] == 1
    again = api.dashboard.update_dashboard({"dashboard": {**board, "version": 1}})
    assert (again["version"], again["url"]) == (2, "/d/kubeopera-t/t")
    with pytest.raises(GrafanaClientError) as stale:
        api.dashboard.update_dashboard({"dashboard": {**board, "version": 1}})
    assert stale.value.status_code == 412
    assert stale.value.response["status"] == "version-mismatch"
    with pytest.raises(GrafanaClientError) as missing:
        api.dashboard.update_dashboard({"dashboard": {**board, "id": 999}, "overwrite": True})
    assert missing.value.status_code == 404
    assert len(grafana.dashboards) == 1


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``kubeopera: error:`` line a failed command printed (and nothing
    else), which never holds the token or the password."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kubeopera: error: "), lines[0]
    assert TOKEN not in result.stderr + result.stdout
    assert PASSWORD not in result.stderr + result.stdout
    assert not result.stdout
    return lines[0]


@pytest.mark.slow  # the `kubeopera` command as a subprocess
def test_a_refused_token_is_one_line_without_it(grafana: GrafanaAPI) -> None:
    wrong = TOKEN[::-1]
    line = one_error_line(push_subprocess(grafana.url, {"GRAFANA_TOKEN": wrong}))
    assert line == (
        f"kubeopera: error: Grafana at {grafana.url} refused the token when reading folder "
        "kubeopera (401 Unauthorized: Invalid API key): set GRAFANA_TOKEN to a service "
        "account token with the Admin role"
    )
    assert wrong not in line
    assert grafana.requests[-1].authorization == f"Bearer {wrong}"
    assert not grafana.folders and not grafana.datasources and not grafana.dashboards


@pytest.mark.slow
def test_no_grafana_listening_is_one_line() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    line = one_error_line(push_subprocess(url, {"GRAFANA_TOKEN": TOKEN}))
    assert line == f"kubeopera: error: cannot reach Grafana at {url}: Connection refused"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "env", "said"),
    [
        ((), {}, "$GRAFANA_TOKEN is not set: export it with a Grafana service account token"),
        (("--token-env", "MY_TOKEN"), {"GRAFANA_TOKEN": TOKEN}, "$MY_TOKEN is not set"),
        (
            ("--clickhouse-password-env", "CH_PASSWORD"),
            {"GRAFANA_TOKEN": TOKEN},
            "$CH_PASSWORD is not set: export it with a password, or name another variable",
        ),
    ],
)
def test_a_missing_variable_is_one_line(
    grafana: GrafanaAPI, arguments: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    line = one_error_line(push_subprocess(grafana.url, env, *arguments))
    assert said in line and line.endswith("(see kubeopera dashboards push --help)")
    assert not grafana.requests


@pytest.mark.slow
def test_credentials_in_the_url_are_refused_unshown(grafana: GrafanaAPI) -> None:
    url = grafana.url.replace("http://", f"http://admin:{PASSWORD}@")
    line = one_error_line(push_subprocess(url, {"GRAFANA_TOKEN": TOKEN}))
    assert "no credentials in the URL" in line
    assert not grafana.requests


def push_subprocess(
    url: str, env: dict[str, str], *arguments: str
) -> subprocess.CompletedProcess[str]:
    """``kubeopera dashboards push --url URL`` as a user runs it, ``GRAFANA_TOKEN`` and the
    like only from ``env``."""
    clean = {"GRAFANA_TOKEN": "", "MY_TOKEN": "", "CH_PASSWORD": "", **env}
    return run_kubeopera(None, "dashboards", "push", "--url", url, *arguments, extra_env=clean)


def source() -> ClickHouseSource:
    return ClickHouseSource("localhost", 9000, "native", "default", "kubeopera", False, PASSWORD)


def provisioning(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROVISIONING / kind / "kubeopera.yaml").read_text())
    return loaded


def data_sources(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``datasource`` reference in a dashboard model, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                yield value
            else:
                yield from data_sources(value)
    elif isinstance(node, list):
        for item in node:
            yield from data_sources(item)


def slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())
