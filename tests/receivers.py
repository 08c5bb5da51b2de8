"""Slack's incoming webhooks, PagerDuty's Events API v2 and a plain webhook, on loopback,
for the notifier's tests.

Each follows its published protocol where a client can tell, and checks every request
against it:
- Slack (api.slack.com/messaging/webhooks, /reference/block-kit/blocks): ``POST`` to the
  webhook's path, a JSON object with ``text`` or ``blocks``; at most 50 blocks of known
  types, a header's plain text at most 150 characters, a section's text 3,000, at most
  10 fields of 2,000 each, a context's at most 10 elements; ``text`` at most 40,000
  characters. ``200 ok``; ``400 invalid_blocks`` / ``invalid_payload`` / ``no_text``,
  ``404 no_service`` for another path.
- PagerDuty (developer.pagerduty.com, "Send an Alert Event"): ``POST /v2/enqueue``,
  ``routing_key`` of 32 characters, ``event_action`` trigger, acknowledge or resolve,
  ``dedup_key`` at most 255 characters (required but for a trigger); a trigger's
  ``payload`` with ``summary`` (1 to 1,024 characters), ``source``, ``severity``
  (critical, error, warning, info), an ISO 8601 ``timestamp``; no unknown field. ``202
  {"status": "success", "message": "Event processed", "dedup_key"}``; ``400 {"status":
  "invalid event", "errors": [...]}``. Incidents are kept by dedup_key: a trigger opens
  one unless one is open, a resolve closes it. Change events ("Send a Change Event"):
  ``POST /v2/change/enqueue``, the routing key and a ``payload`` with ``summary``;
  ``202``.
- Webhook: any JSON object, ``200``.

``script`` queues answers to give before the protocol's own (a status, a body and
headers), to play a receiver that fails, limits or is slow (``delay``); ``slow`` queues
waits before the protocol's own answers are sent (the request is taken at once). State lives in
memory, per instance; every request received is recorded with its time.
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text"}
SEVERITIES = {"critical", "error", "warning", "info"}
PAYLOAD_FIELDS = {
    "summary", "source", "severity", "timestamp", "component", "group", "class",
    "custom_details",
}  # fmt: skip
EVENT_FIELDS = {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url",
                "images", "links"}  # fmt: skip


@dataclass(frozen=True)
class Received:
    """A request as received: when (``time.monotonic()``), its path and JSON body."""

    at: float
    path: str
    body: Any


@dataclass(frozen=True)
class Scripted:
    """An answer given instead of the protocol's (after ``delay`` seconds)."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """A receiver on loopback, started by ``with``: ``url``, ``received`` (every request,
    valid or not) and ``accepted`` (the requests it took)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.accepted: list[Received] = []
        self.script: deque[Scripted] = deque()
        self.slow: deque[float] = deque()
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                request = Received(time.monotonic(), self.path, body)
                with owner.lock:
                    owner.received.append(request)
                    scripted = owner.script.popleft() if owner.script else None
                    wait = owner.slow.popleft() if owner.slow and scripted is None else 0.0
                if scripted is not None:
                    time.sleep(scripted.delay)
                    status, text, headers = scripted.status, scripted.body, scripted.headers
                else:
                    status, text, headers = owner.answer(request)
                    if 200 <= status < 300:
                        with owner.lock:
                            owner.accepted.append(request)
                    time.sleep(wait)  # taken at once, answered late
                data = text.encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client is gone (killed while it waited)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, request: Received) -> tuple[int, str, dict[str, str]]:
        raise NotImplementedError

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


class Slack(Receiver):
    """An incoming webhook at ``url`` (a path with its secret parts)."""

    PATH = "/services/T0KUBEOPERA/B0NOTIFIER/s3cr3tW3bh00kT0k3n"

    @property
    def url(self) -> str:
        return self.base + self.PATH

    def answer(self, request: Received) -> tuple[int, str, dict[str, str]]:
        if request.path != self.PATH:
            return 404, "no_service", {}
        body = request.body
        if not isinstance(body, dict):
            return 400, "invalid_payload", {}
        if not body.get("text") and not body.get("blocks"):
            return 400, "no_text", {}
        if len(body.get("text", "")) > 40_000:
            return 400, "invalid_payload", {}
        problem = block_problem(body.get("blocks", []))
        return (400, "invalid_blocks", {}) if problem else (200, "ok", {})

    def messages(self) -> list[dict[str, Any]]:
        return [r.body for r in self.accepted]


def block_problem(blocks: Any) -> str | None:
    """What breaks Block Kit's documented limits in ``blocks``, or None."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "more than 50 blocks"
    return next((p for p in map(_block_problem, blocks) if p), None)


def _block_problem(block: dict[str, Any]) -> str | None:
    kind = block.get("type")
    problem: str | None = None
    if kind not in BLOCK_TYPES:
        problem = f"unknown block {kind!r}"
    elif kind == "header":
        text = block["text"]
        if text["type"] != "plain_text" or not 0 < len(text["text"]) <= 150:
            problem = "header"
    elif kind == "section":
        fields = block.get("fields", [])
        if "text" not in block and not fields:
            problem = "section without text or fields"
        elif "text" in block and not 0 < len(block["text"]["text"]) <= 3000:
            problem = "section text"
        elif len(fields) > 10 or any(not 0 < len(f["text"]) <= 2000 for f in fields):
            problem = "section fields"
    elif kind == "context":
        elements = block["elements"]
        if not 0 < len(elements) <= 10 or any(len(e["text"]) > 3000 for e in elements):
            problem = "context"
    return problem


class PagerDuty(Receiver):
    """The Events API v2 at ``url``; ``incidents`` opened (dedup_key, in order) and
    ``open`` now."""

    def __init__(self) -> None:
        super().__init__()
        self.incidents: list[str] = []
        self.open: set[str] = set()

    @property
    def url(self) -> str:
        return self.base + "/v2/enqueue"

    def answer(self, request: Received) -> tuple[int, str, dict[str, str]]:
        if request.path == "/v2/change/enqueue":
            errors = change_errors(request.body)
            if errors:
                refusal = {"status": "invalid event", "message": "Event object is invalid"}
                return 400, json.dumps({**refusal, "errors": errors}), {}
            return 202, json.dumps({"status": "success", "message": "Change event processed"}), {}
        if request.path != "/v2/enqueue":
            return 404, json.dumps({"status": "not found"}), {}
        errors = event_errors(request.body)
        if errors:
            refusal = {"status": "invalid event", "message": "Event object is invalid"}
            return 400, json.dumps({**refusal, "errors": errors}), {}
        event = request.body
        key = event["dedup_key"]
        with self.lock:
            if event["event_action"] == "trigger" and key not in self.open:
                self.open.add(key)
                self.incidents.append(key)
            elif event["event_action"] == "resolve":
                self.open.discard(key)
        answer = {"status": "success", "message": "Event processed", "dedup_key": key}
        return 202, json.dumps(answer), {}

    def events(self) -> list[dict[str, Any]]:
        return [r.body for r in self.accepted if r.path == "/v2/enqueue"]

    def changes(self) -> list[dict[str, Any]]:
        """The change events taken, in order."""
        return [r.body for r in self.accepted if r.path == "/v2/change/enqueue"]


def change_errors(event: Any) -> list[str]:
    """Why PagerDuty would refuse a change event ("Send a Change Event": ``routing_key``,
    ``payload`` with ``summary`` (1 to 1024 characters), optional ``source``,
    ``timestamp`` (ISO 8601), ``custom_details``; ``links``, ``images``)."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = [f"'{k}' is not a known field" for k in event
              if k not in ("routing_key", "payload", "links", "images")]  # fmt: skip
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be 32 characters")
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing"]
    known = ("summary", "source", "timestamp", "custom_details")
    errors += [f"'payload.{k}' is not a known field" for k in payload if k not in known]
    return [*errors, *_summary_and_time_errors(payload)]


def _summary_and_time_errors(payload: dict[str, Any]) -> list[str]:
    """What PagerDuty checks of a payload's ``summary`` and ``timestamp``."""
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
        errors.append("'payload.summary' must be 1 to 1024 characters")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(payload["timestamp"])
        except (TypeError, ValueError):
            errors.append("'payload.timestamp' is not ISO 8601")
    return errors


def event_errors(event: Any) -> list[str]:
    """Why PagerDuty would refuse ``event`` (empty: it takes it)."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = [f"'{k}' is not a known field" for k in event if k not in EVENT_FIELDS]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be 32 characters")
    action = event.get("event_action")
    if action not in {"trigger", "acknowledge", "resolve"}:
        errors.append("'event_action' is invalid")
    dedup = event.get("dedup_key")
    if action != "trigger" and not dedup:
        errors.append("'dedup_key' is required")
    if dedup is not None and not (isinstance(dedup, str) and 0 < len(dedup) <= 255):
        errors.append("'dedup_key' must be 1 to 255 characters")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        unknown = [k for k in payload if k not in PAYLOAD_FIELDS]
        errors += [f"'payload.{k}' is not a known field" for k in unknown]
        errors += _summary_and_time_errors(payload)
        if not payload.get("source"):
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in SEVERITIES:
            errors.append("'payload.severity' is invalid")
    return errors


class Webhook(Receiver):
    """A webhook taking any JSON object at ``url``."""

    @property
    def url(self) -> str:
        return self.base + "/hooks/kubeopera"

    def answer(self, request: Received) -> tuple[int, str, dict[str, str]]:
        ok = request.path == "/hooks/kubeopera" and isinstance(request.body, dict)
        return (200, "", {}) if ok else (400, "bad request", {})

    def groups(self) -> list[dict[str, Any]]:
        return [r.body for r in self.accepted]
