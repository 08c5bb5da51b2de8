"""Raw GETs on the Kubernetes API: JSON as it comes (no model objects per item), and a
response that can be streamed (watches)."""

from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException


def get(
    api: ApiClient,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    accept: str = "application/json",
    timeout: float = 60,
) -> Any:
    """The response (``.read()`` for the body, ``.response`` to stream); raises on 4xx/5xx."""
    method, url, headers, body, post = api.param_serialize(
        "GET", path, query_params=query or [], header_params={"Accept": accept},
        auth_settings=["BearerToken"],
    )  # fmt: skip
    response = api.call_api(method, url, headers, body, post, _request_timeout=timeout)
    if response.status >= 400:
        raise ApiException(status=response.status, reason=response.reason)
    return response
