"""Raw GETs on the Kubernetes API: JSON as it comes (no model objects per item), and a
response that can be streamed (watches); paced by a client-side rate limit."""

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
    if limiter is not None:
        limiter.acquire()
    method, url, headers, body, post = api.param_serialize(
        "GET", path, query_params=query or [], header_params={"Accept": accept},
        auth_settings=["BearerToken"],
    )  # fmt: skip
    response = api.call_api(method, url, headers, body, post, _request_timeout=timeout)
    if response.status >= 400:
        raise ApiException(status=response.status, reason=response.reason)
    return response
