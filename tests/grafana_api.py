"""Grafana's HTTP API on loopback, for the calls ``kubeopera dashboards push`` makes:
health, folders, data sources, saving dashboards, and search to read them back.

It follows Grafana 11 where a client can tell: service account tokens as ``Authorization:
Bearer`` on every call but ``GET /api/health`` (which Grafana serves to anyone), with
Grafana's 401 bodies; roles (data sources are an Admin's, folders and dashboards an
Editor's, 403 otherwise); its answers' shapes; a dashboard matched by uid, its version
bumped by each save, 412 ``version-mismatch`` for a stale one without ``overwrite``, 404
for an ``id`` it does not hold; data sources unique by uid and by name (409), an update
replacing their ``jsonData`` whole, their secure fields write-only (``secureJsonFields``
tells which are set; an update overwrites the ones it names, even with an empty value,
and keeps the others), a provisioned one read-only. It checks what it is sent (JSON
objects with the fields Grafana requires; dashboards with a uid, a title and panels)
and records every request. State lives in memory, per instance.
"""

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = "11.6.0"
UID = re.compile(r"[a-zA-Z0-9_-]{1,40}")
"""What Grafana takes as a uid (``util.IsValidShortUID``, at most 40 characters)."""

ROLES = ("Viewer", "Editor", "Admin")

Answer = tuple[int, Any]
"""A status and its JSON body."""


@dataclass(frozen=True)
class Request:
    """One request as received: ``body`` is the decoded JSON (None without a body)."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


class GrafanaAPI:
    """The server, started by ``with``: ``url`` to reach it, ``tokens`` (token -> role)
    it accepts, ``requests`` it received, and its state: ``folders`` and ``dashboards``
    by uid (a dashboard as ``{"dashboard", "folderUid", "message"}``), ``datasources``
    by uid as Grafana shows them, ``secrets`` their secure fields by uid. With
    ``sub_path`` (``/grafana``) it serves under it, as Grafana's ``serve_from_sub_path``
    does behind a proxy."""

    def __init__(self, tokens: dict[str, str], sub_path: str = "") -> None:
        assert set(tokens.values()) <= set(ROLES), tokens
        self.tokens, self.sub_path = tokens, sub_path
        self.requests: list[Request] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.sub_path}"

    def __enter__(self) -> "GrafanaAPI":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def calls(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received, in order."""
        return [(r.method, r.path) for r in self.requests]

    def provision_datasource(self, model: dict[str, Any]) -> None:
        """Hold ``model`` as a data source provisioned from a file: read-only."""
        with self._lock:
            added = self._add_datasource(model)
            self.datasources[added["datasource"]["uid"]]["readOnly"] = True

    def answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        authorization: str | None,
        body: Any,
    ) -> Answer:
        """Grafana's status and JSON answer to one request (``body`` is ``...`` when
        it was not JSON)."""
        self.requests.append(Request(method, path, query, authorization, body))
        if not path.startswith(f"{self.sub_path}/"):
            return HTTPStatus.NOT_FOUND, {"message": "Not found"}
        path = path.removeprefix(self.sub_path)
        try:
            if (method, path) == ("GET", "/api/health"):
                return HTTPStatus.OK, {"commit": "loopback", "database": "ok", "version": VERSION}
            role = self._role(authorization)
            if body is ...:
                raise RefusedError(HTTPStatus.BAD_REQUEST, "bad request data")
            with self._lock:
                return HTTPStatus.OK, self._route(role, method, path, query, body)
        except RefusedError as refused:
            return refused.status, refused.body

    def _role(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token:
            raise RefusedError(
                HTTPStatus.UNAUTHORIZED, "Unauthorized", messageId="auth.unauthorized"
            )
        if token not in self.tokens:
            raise RefusedError(
                HTTPStatus.UNAUTHORIZED, "Invalid API key", messageId="api-key.invalid"
            )
        return self.tokens[token]

    def _route(
        self, role: str, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> Any:
        folder = re.fullmatch(r"/api/folders/([^/]+)", path)
        datasource = re.fullmatch(r"/api/datasources/uid/([^/]+)", path)
        if method == "GET":
            if folder:
                if folder[1] not in self.folders:
                    raise RefusedError(
                        HTTPStatus.NOT_FOUND, "folder not found", messageId="folder.notFound"
                    )
                return self.folders[folder[1]]
            if datasource:
                return self._shown(self._datasource(datasource[1]))
            if path == "/api/search":
                return self._search(query)
        writes: dict[tuple[str, str], tuple[str, str, Callable[[dict[str, Any]], Any]]] = {
            ("POST", "/api/folders"): ("Editor", "folders:create", self._add_folder),
            ("POST", "/api/datasources"): ("Admin", "datasources:create", self._add_datasource),
            ("POST", "/api/dashboards/db"): ("Editor", "dashboards:write", self._save_dashboard),
        }
        if method == "PUT" and datasource:
            uid = datasource[1]
            writes[method, path] = ("Admin", "datasources:write", lambda b: self._update(uid, b))
        if (method, path) not in writes:
            raise RefusedError(HTTPStatus.NOT_FOUND, "Not found")
        least, permission, write = writes[method, path]
        if ROLES.index(role) < ROLES.index(least):
            raise RefusedError(
                HTTPStatus.FORBIDDEN,
                "You'll need additional permissions to perform this action. "
                f"Permissions needed: {permission}",
                accessErrorId="ACE0947587429",
                title="Access denied",
            )
        if not isinstance(body, dict):
            raise RefusedError(HTTPStatus.BAD_REQUEST, "bad request data")
        return write(body)

    def _add_folder(self, body: dict[str, Any]) -> dict[str, Any]:
        title, uid = body.get("title"), body.get("uid") or f"f{next(self._ids)}"
        if not isinstance(title, str) or not title.strip():
            raise RefusedError(HTTPStatus.BAD_REQUEST, "folder title cannot be empty")
        _check_uid(uid)
        if uid in self.folders:
            raise RefusedError(HTTPStatus.CONFLICT, "a folder with the same uid already exists")
        if any(f["title"] == title for f in self.folders.values()):
            raise RefusedError(
                HTTPStatus.CONFLICT,
                "a folder with the same name already exists in the current location",
            )
        self.folders[uid] = {
            "id": next(self._ids),
            "uid": uid,
            "orgId": 1,
            "title": title,
            "url": f"{self.sub_path}/dashboards/f/{uid}/{_slug(title)}",
            "hasAcl": False,
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canDelete": True,
            "version": 1,
        }
        return self.folders[uid]

    def _datasource(self, uid: str) -> dict[str, Any]:
        if uid not in self.datasources:
            raise RefusedError(HTTPStatus.NOT_FOUND, "Data source not found")
        return self.datasources[uid]

    def _check_datasource(self, body: dict[str, Any], uid: str) -> None:
        """Refuse ``body`` as data source ``uid`` as Grafana would."""
        name, kind, access = body.get("name"), body.get("type"), body.get("access")
        if not isinstance(name, str) or not name or not isinstance(kind, str) or not kind:
            raise RefusedError(
                HTTPStatus.BAD_REQUEST, "bad request data: name and type are required"
            )
        if access not in ("proxy", "direct"):
            raise RefusedError(HTTPStatus.BAD_REQUEST, f"bad request data: access {access!r}")
        _check_uid(uid)
        json_data, secure = body.get("jsonData", {}), body.get("secureJsonData", {})
        if not isinstance(json_data, dict) or not isinstance(secure, dict):
            raise RefusedError(HTTPStatus.BAD_REQUEST, "bad request data: jsonData, secureJsonData")
        if not all(isinstance(v, str) for v in secure.values()):
            raise RefusedError(HTTPStatus.BAD_REQUEST, "bad request data: secureJsonData")
        if any(d["name"] == name and u != uid for u, d in self.datasources.items()):
            raise RefusedError(HTTPStatus.CONFLICT, "data source with the same name already exists")

    def _add_datasource(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = body.get("uid") or f"d{next(self._ids)}"
        if uid in self.datasources:
            raise RefusedError(HTTPStatus.CONFLICT, "data source with the same uid already exists")
        self._check_datasource(body, uid)
        self.datasources[uid] = {"id": next(self._ids), "uid": uid, "version": 0}
        self.secrets[uid] = {}
        return self._store(uid, body, "Datasource added")

    def _update(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        existing = self._datasource(uid)
        if existing["readOnly"]:
            raise RefusedError(HTTPStatus.FORBIDDEN, "Cannot update read-only data source")
        self._check_datasource(body, uid)
        if body.get("version") not in (None, existing["version"]):
            raise RefusedError(
                HTTPStatus.CONFLICT,
                "Datasource has already been updated by someone else. Please reload and try again",
            )
        return self._store(uid, body, "Datasource updated")

    def _store(self, uid: str, body: dict[str, Any], message: str) -> dict[str, Any]:
        stored = self.datasources[uid]
        stored.update(
            orgId=1,
            name=body["name"],
            type=body["type"],
            typeLogoUrl="",
            access=body["access"],
            url=body.get("url", ""),
            user=body.get("user", ""),
            database=body.get("database", ""),
            basicAuth=bool(body.get("basicAuth", False)),
            isDefault=bool(body.get("isDefault", False)),
            jsonData=body.get("jsonData", {}),
            readOnly=False,
            version=stored["version"] + 1,
        )
        self.secrets[uid].update(body.get("secureJsonData", {}))
        shown = self._shown(stored)
        return {"datasource": shown, "id": shown["id"], "message": message, "name": shown["name"]}

    def _shown(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A data source as Grafana answers with it: secure fields named, not given (an
        empty one is not named)."""
        held = self.secrets[stored["uid"]]
        return {**stored, "secureJsonFields": {key: True for key, value in held.items() if value}}

    def _save_dashboard(self, body: dict[str, Any]) -> dict[str, Any]:
        dashboard, folder = body.get("dashboard"), body.get("folderUid", "")
        overwrite = body.get("overwrite", False)
        if not isinstance(dashboard, dict) or not isinstance(overwrite, bool):
            raise RefusedError(HTTPStatus.BAD_REQUEST, "bad request data")
        title, panels = dashboard.get("title"), dashboard.get("panels")
        if not isinstance(title, str) or not title.strip():
            raise RefusedError(HTTPStatus.BAD_REQUEST, "Dashboard title cannot be empty")
        # Grafana would make a uid up, and the next push would add a second dashboard
        uid = _check_uid(dashboard.get("uid"))
        if not isinstance(panels, list) or not all(
            isinstance(p, dict) and isinstance(p.get("type"), str) for p in panels
        ):
            raise RefusedError(HTTPStatus.BAD_REQUEST, "bad request data: panels")
        if folder and folder not in self.folders:
            raise RefusedError(HTTPStatus.BAD_REQUEST, "folder not found")
        existing = self.dashboards.get(uid)
        if dashboard.get("id"):
            held = [d for d in self.dashboards.values() if d["dashboard"]["id"] == dashboard["id"]]
            if not held:
                raise RefusedError(HTTPStatus.NOT_FOUND, "Dashboard not found")
            if held[0] is not existing:
                raise RefusedError(
                    HTTPStatus.BAD_REQUEST, "A dashboard with the same uid already exists"
                )
        version, number = 1, next(self._ids)
        if existing is not None:
            before = existing["dashboard"]
            if dashboard.get("version") != before["version"] and not overwrite:
                raise RefusedError(
                    HTTPStatus.PRECONDITION_FAILED,
                    "The dashboard has been changed by someone else",
                    status="version-mismatch",
                )
            version, number = before["version"] + 1, before["id"]
        self.dashboards[uid] = {
            "dashboard": {**dashboard, "id": number, "version": version},
            "folderUid": folder,
            "message": body.get("message"),
        }
        slug = _slug(title)
        return {
            "id": number,
            "uid": uid,
            "url": f"{self.sub_path}/d/{uid}/{slug}",  # Grafana's URLs carry its sub path
            "status": "success",
            "version": version,
            "slug": slug,
        }

    def _search(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        words = query.get("query", [""])[0].lower()
        kinds = query.get("type", ["dash-folder", "dash-db"])
        in_folders = set(query.get("folderUIDs", []))
        hits = []
        if "dash-folder" in kinds and not in_folders:
            for uid, f in self.folders.items():
                hits.append({**_hit(f["id"], uid, f["title"], "dash-folder"), "url": f["url"]})
        if "dash-db" in kinds:
            for uid, held in self.dashboards.items():
                if in_folders and held["folderUid"] not in in_folders:
                    continue
                board = held["dashboard"]
                folder = self.folders.get(held["folderUid"], {})
                hits.append(
                    {
                        **_hit(board["id"], uid, board["title"], "dash-db"),
                        "url": f"{self.sub_path}/d/{uid}/{_slug(board['title'])}",
                        "tags": board.get("tags", []),
                        "folderUid": held["folderUid"],
                        "folderTitle": folder.get("title", ""),
                        "folderUrl": folder.get("url", ""),
                    }
                )
        return sorted((h for h in hits if words in h["title"].lower()), key=lambda h: h["title"])


class RefusedError(Exception):
    """A request Grafana refuses: its status and JSON body (``message`` and the other
    fields Grafana gives for that error)."""

    def __init__(self, status: int, message: str, /, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **fields}
        if "messageId" in fields:  # Grafana's errutil errors say more
            self.body |= {"extra": None, "statusCode": status, "traceID": ""}


def _check_uid(uid: Any) -> str:
    """``uid`` when Grafana takes it as one."""
    if not isinstance(uid, str) or not UID.fullmatch(uid):
        raise RefusedError(
            HTTPStatus.BAD_REQUEST, f"uid {uid!r} is not a valid uid (1-40 of a-zA-Z0-9_-)"
        )
    return uid


def _hit(number: int, uid: str, title: str, kind: str) -> dict[str, Any]:
    slug = _slug(title)
    return {
        "id": number,
        "uid": uid,
        "orgId": 1,
        "title": title,
        "uri": f"db/{slug}",
        "url": f"/d/{uid}/{slug}",
        "slug": "",
        "type": kind,
        "tags": [],
        "isStarred": False,
        "sortMeta": 0,
    }


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _handler(api: GrafanaAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = ...
            status, answer = api.answer(
                method, split.path, parse_qs(split.query), self.headers.get("Authorization"), body
            )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: ``requests`` holds what came in."""

    return Handler
