"""Push the dashboards, their folder and their ClickHouse data source to a running Grafana
through its HTTP API (grafana-client), so that a second push updates what the first made.

The steps, in order: ``GET /api/health``; the folder by uid (``GET /api/folders/:uid``,
created by ``POST /api/folders`` when absent, else kept); the data source by uid
(``GET /api/datasources/uid/:uid``, then ``POST /api/datasources`` or ``PUT`` on its
uid; one provisioned from a file is read-only and kept); then ``POST /api/dashboards/db``
for each dashboard, with ``overwrite`` and no ``id``, so that Grafana matches it by uid.

A ``PUT`` replaces the data source's ``jsonData`` whole and overwrites each secure field
it names, so an update sends the existing ``jsonData`` with ours merged in (settings made
in Grafana's UI, such as ``tlsSkipVerify`` or ``httpHeaders``, stay) and names the
password only when one is given (a password set in the UI stays), or to clear the
previous user's when the user changes.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

from kubeopera.dashboards.clickhouse_query import DATASOURCE_TYPE
from kubeopera.dashboards.grafana import DATASOURCE_UID

DATASOURCE_NAME = "KubeOpera ClickHouse"
"""The data source's name in Grafana (unique there, as its uid is)."""

MESSAGE_LIMIT = 200
"""Characters of an answer's message an error line keeps."""

MESSAGE = "kubeopera dashboards push"
"""The note each dashboard version carries in Grafana's version history."""


class GrafanaError(Exception):
    """Grafana could not be reached or refused a step; the message is one line, with
    Grafana's status and message and never the token."""


@dataclass(frozen=True)
class ClickHouseSource:
    """Where Grafana's ClickHouse plugin finds the store: ``protocol`` native (TCP, 9000
    or 9440 with TLS) or http (8123, 8443), ``secure`` for TLS. The password (empty:
    none given) goes to Grafana's ``secureJsonData`` only and is left out of ``repr``."""

    host: str
    port: int
    protocol: Literal["native", "http"]
    username: str
    database: str
    secure: bool
    password: str = field(default="", repr=False)

    def model(self, existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The data source as Grafana's API takes it; ``jsonData`` is the plugin's
        config model (``CHConfig``), the password its secure field, sent only when
        given. ``existing`` is the data source as Grafana shows it, for an update: its
        other ``jsonData`` keys and ``isDefault`` are kept, and its password, unless
        given, or it was set for another user (then it is cleared)."""
        json_data = {
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "secure": self.secure,
            "username": self.username,
            "defaultDatabase": self.database,
        }
        secure_json_data = {"password": self.password} if self.password else {}
        is_default = False
        if existing is not None:
            held = existing.get("jsonData")
            held = held if isinstance(held, Mapping) else {}
            secrets = existing.get("secureJsonFields")
            has_password = isinstance(secrets, Mapping) and bool(secrets.get("password"))
            if not self.password and has_password and held.get("username") != self.username:
                secure_json_data = {"password": ""}  # another user's
            json_data = {**held, **json_data}
            is_default = bool(existing.get("isDefault", False))
        model: dict[str, Any] = {
            "uid": DATASOURCE_UID,
            "name": DATASOURCE_NAME,
            "type": DATASOURCE_TYPE,
            "access": "proxy",
            "isDefault": is_default,
            "jsonData": json_data,
        }
        if secure_json_data:
            model["secureJsonData"] = secure_json_data
        return model

    def describe(self) -> str:
        """``native://host:9000, database kubeopera, user default`` (no password)."""
        tls = " (TLS)" if self.secure else ""
        return (
            f"{self.protocol}://{self.host}:{self.port}{tls}, database {self.database}, "
            f"user {self.username}"
        )


@dataclass(frozen=True)
class Pushed:
    """One thing pushed: what it is, its title and uid, what Grafana did with it, and
    ``detail`` (a dashboard's version and URL, the data source's server)."""

    kind: Literal["folder", "data source", "dashboard"]
    title: str
    uid: str
    action: Literal["created", "updated", "kept"]
    detail: str = ""


@dataclass(frozen=True)
class PushReport:
    """The Grafana pushed to (its version from ``/api/health``) and each item, in order:
    the folder, the data source, the dashboards."""

    grafana_version: str
    items: tuple[Pushed, ...]


def folder_uid(title: str) -> str:
    """The folder's uid, from its title: lower case, runs of other characters than
    letters and digits as one ``-``, at most 40 characters (``KubeOpera`` -> ``kubeopera``).
    Raises ``ValueError`` for a title without a letter or digit."""
    uid = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-")
    if not uid:
        raise ValueError(f"folder title {title!r} has no letter or digit to make a uid of")
    return uid


def push(
    url: str,
    token: str,
    source: ClickHouseSource,
    dashboards: Sequence[Mapping[str, Any]],
    folder_title: str = "KubeOpera",
    token_env: str = "GRAFANA_TOKEN",
    timeout: float = 10.0,
) -> PushReport:
    """Push the folder, the data source and ``dashboards`` (Grafana dashboard models,
    each with a ``uid`` and ``title``) to the Grafana at ``url`` (its root URL, a sub
    path allowed), authenticated by the service account ``token`` (named ``token_env``
    in messages; it needs the Admin role: data sources are an admin's). ``timeout`` is
    seconds per request. Raises ``GrafanaError`` when Grafana cannot be reached or
    refuses a step (what was pushed before it stays), ``ValueError`` for a folder title
    that makes no uid."""
    uid = folder_uid(folder_title)
    grafana = _Grafana(url.rstrip("/"), token, token_env, timeout)
    health = grafana.call("reading its health", "GET", "/health")
    if not isinstance(health, dict) or "version" not in health:
        raise GrafanaError(f"{grafana.url} does not look like Grafana: /api/health has no version")
    items = [_folder(grafana, folder_title, uid), _data_source(grafana, source)]
    for dashboard in dashboards:
        title, board_uid = str(dashboard["title"]), str(dashboard["uid"])
        body = {
            "dashboard": {**dashboard, "id": None},
            "folderUid": uid,
            "overwrite": True,
            "message": MESSAGE,
        }
        saved = grafana.call(f"saving dashboard {board_uid}", "POST", "/dashboards/db", body)
        version = int(saved["version"])
        action: Literal["created", "updated"] = "created" if version == 1 else "updated"
        detail = f"version {version}, {grafana.origin}{saved['url']}"
        items.append(Pushed("dashboard", title, board_uid, action, detail))
    return PushReport(str(health["version"]), tuple(items))


def _folder(grafana: "_Grafana", title: str, uid: str) -> Pushed:
    existing = grafana.call(f"reading folder {uid}", "GET", f"/folders/{uid}", absent_ok=True)
    if existing is not None:
        return Pushed("folder", str(existing["title"]), uid, "kept")
    grafana.call(f"creating folder {uid}", "POST", "/folders", {"uid": uid, "title": title})
    return Pushed("folder", title, uid, "created")


def _data_source(grafana: "_Grafana", source: ClickHouseSource) -> Pushed:
    path = f"/datasources/uid/{DATASOURCE_UID}"
    existing = grafana.call(f"reading data source {DATASOURCE_UID}", "GET", path, absent_ok=True)
    if existing is not None and existing.get("readOnly"):
        detail = "provisioned from a file, read-only in Grafana"
        return Pushed("data source", str(existing["name"]), DATASOURCE_UID, "kept", detail)
    if existing is None:
        grafana.call(
            f"creating data source {DATASOURCE_UID}", "POST", "/datasources", source.model()
        )
    else:
        body = source.model(existing)
        grafana.call(f"updating data source {DATASOURCE_UID}", "PUT", path, body)
    action: Literal["created", "updated"] = "created" if existing is None else "updated"
    return Pushed("data source", DATASOURCE_NAME, DATASOURCE_UID, action, source.describe())


class _Grafana:
    """grafana-client on the Grafana at ``url``, the token sent as ``Authorization:
    Bearer`` (its ``TokenAuth``); what goes wrong in a call becomes one ``GrafanaError``
    line, without the token."""

    def __init__(self, url: str, token: str, token_env: str, timeout: float) -> None:
        # a sub path needs its slash: grafana-client appends "api" to it
        self.api = GrafanaApi.from_url(f"{url}/", credential=token, timeout=timeout)
        self.url, self._token, self._token_env, self._timeout = url, token, token_env, timeout
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"  # Grafana's URLs hold its sub path

    def call(
        self,
        what: str,
        method: Literal["GET", "POST", "PUT"],
        path: str,
        body: Mapping[str, Any] | None = None,
        absent_ok: bool = False,
    ) -> Any:
        """``method path`` (under ``/api``) with the JSON ``body``; returns the decoded
        answer, with ``absent_ok`` None for a 404. ``what`` says what the call does, for
        the error."""
        request = getattr(self.api.client, method)
        try:
            return request(path, json=dict(body) if body is not None else None)
        except Timeout as error:
            raise GrafanaError(
                f"Grafana at {self.url} did not answer within {self._timeout:g} s ({what})"
            ) from error
        except GrafanaException as error:
            if absent_ok and error.status_code == HTTPStatus.NOT_FOUND:
                return None
            raise GrafanaError(self._refused(what, error)) from error
        except RequestsConnectionError as error:
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {_reason(error)}") from error

    def _refused(self, what: str, error: GrafanaException) -> str:
        status = int(error.status_code)
        said = error.response.get("message") if isinstance(error.response, dict) else None
        message = " ".join(str(said or error.response or error.message).split())
        if len(message) > MESSAGE_LIMIT:  # a page that is not Grafana's: its start says enough
            message = message[:MESSAGE_LIMIT] + "..."
        if len(self._token) >= 8:  # a shorter "token" is no secret, and masks words
            message = message.replace(self._token, "***")
        if status == 0:  # no HTTP answer at all
            return f"cannot reach Grafana at {self.url}: {message}"
        answer = f"{status} {HTTPStatus(status).phrase}" if status in _STATUSES else str(status)
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            return (
                f"Grafana at {self.url} refused the token when {what} ({answer}: {message}): "
                f"set {self._token_env} to a service account token with the Admin role"
            )
        return f"Grafana at {self.url} answered {answer} when {what}: {message}"


_STATUSES = frozenset(s.value for s in HTTPStatus)


def _reason(error: BaseException) -> str:
    """The operating system's reason under a connection error (``Connection refused``,
    ``Name or service not known``), else its type."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__
