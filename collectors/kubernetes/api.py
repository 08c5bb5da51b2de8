"""Raw calls to the Kubernetes API: JSON as it comes (no model objects per item), a
response that can be streamed (watches), paced by a client-side rate limit."""

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException


class RateLimiter:
    """Requests per second with a burst (a token bucket), like client-go's QPS and burst:
    shared by all of a collector's requests, so a relist storm stays gentle on the API
    server. Waiting happens outside the lock, in the caller's thread."""

    def __init__(
        self,
        qps: float = 20.0,
        burst: int = 40,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps, self.burst = qps, burst
        self.clock, self.sleep = clock, sleep
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
            self._at = now
            self._tokens -= 1  # may go negative: later callers wait for the debt too
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)


def get(
    api: ApiClient,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    accept: str = "application/json",
    timeout: float = 60,
    limiter: RateLimiter | None = None,
) -> Any:
    """The response (``.read()`` for the body, ``.response`` to stream); raises on 4xx/5xx."""
    return request(api, "GET", path, query, accept=accept, timeout=timeout, limiter=limiter)


def get_json(
    api: ApiClient,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    accept: str = "application/json",
    timeout: float = 60,
    limiter: RateLimiter | None = None,
) -> dict[str, Any]:
    """A GET's decoded body."""
    return _decoded(get(api, path, query, accept, timeout, limiter))


def send(
    api: ApiClient,
    method: str,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """A write (POST, PATCH, PUT, DELETE) with a JSON body; returns the decoded answer."""
    return _decoded(request(api, method, path, query, body, content_type))


def _decoded(response: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(response.read())
    return decoded


def request(
    api: ApiClient,
    method: str,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    content_type: str | None = None,
    accept: str = "application/json",
    timeout: float = 60,
    limiter: RateLimiter | None = None,
) -> Any:
    """One call; raises ``ApiException`` with the server's message on 4xx/5xx."""
    if limiter is not None:
        limiter.acquire()
    headers = {"Accept": accept}
    if content_type is not None:
        headers["Content-Type"] = content_type
    method, url, headers, payload, post = api.param_serialize(
        method, path, query_params=query or [], header_params=headers, body=body,
        auth_settings=["BearerToken"],
    )  # fmt: skip
    response = api.call_api(method, url, headers, payload, post, _request_timeout=timeout)
    if response.status >= 400:
        message: bytes = response.read()  # type: ignore[no-untyped-call]
        raise ApiException(response.status, response.reason, body=message.decode(errors="replace"))
    return response
