"""The action service's HTTP API (FastAPI; the OpenAPI document at ``/openapi.json``).

Every call but ``/healthz`` and the OpenAPI document needs a bearer token
(``actions.auth``) and is audited once as a ``call`` (who, route, status, reason),
refused or not. Errors are ``{"detail": ..., "rule": ...}``: 400 a body that is not
JSON, 401 no or a bad token, 403 the role or the policy (``rule`` names the policy's
rule), 404, 409 the request's state or the object changed, 411 / 413 a body without a
length or over 64 KiB, 422 what cannot be done (an unknown query parameter too), 502 the
API server did not answer an apply (the request is settled from the object), 503 the
API server cannot review the token. A ``POST`` with an ``Idempotency-Key`` header
is carried out once per caller and key: the same call again gets the first answer
(header ``Idempotent-Replayed: true``), the key with another call is refused (422).
"""

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from kubeopera.actions import records
from kubeopera.actions.auth import Authenticator, Identity
from kubeopera.actions.kube import KubeError
from kubeopera.actions.lifecycle import ActionRequest, State
from kubeopera.actions.policy import Action, Role
from kubeopera.actions.service import NewRequest, RefusedError, Service
from kubeopera.models.actions import ActionAudit, AuditEvent, AuditResult
from kubeopera.models.base import UtcDatetime

UNAUDITED = ("/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


class Problem(BaseModel):
    """Why a call was refused; ``rule``: the policy rule that refused it."""

    detail: str
    rule: str | None = None


class Comment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field("", max_length=1000)


class RequestPage(BaseModel):
    items: list[ActionRequest]
    total: int
    limit: int
    offset: int


class AuditRecord(BaseModel):
    at: datetime
    event: AuditEvent
    result: AuditResult
    who: str
    roles: list[str]
    method: str
    route: str
    status: int
    request_id: str
    action: str
    cluster: str
    namespace: str
    kind: str
    name: str
    reason: str
    before: str | None
    after: str | None
    audit_id: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    total: int
    limit: int
    offset: int


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 411, 413, 422, 502, 503)
}

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Filter = Annotated[str | None, Query(max_length=253)]
RequestId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
BEARER = HTTPBearer(auto_error=False, description="A Kubernetes or a static token")


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Identity:
    """Who calls, as the middleware authenticated them (``_identify``) before anything
    of the call was read; the dependency declares the bearer scheme in the OpenAPI."""
    who: Identity = request.state.who
    return who


Caller = Annotated[Identity, Depends(_caller)]


def _viewer(who: Caller) -> Identity:
    """A caller who may read: 403 without the viewer role."""
    if Role.VIEWER not in who.roles:
        raise RefusedError(403, f"reading needs the viewer role; {who.name} holds none")
    return who


Viewer = Annotated[Identity, Depends(_viewer)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def build_app(service: Service, authenticator: Authenticator) -> FastAPI:
    """The API over ``service``, its callers identified by ``authenticator``."""
    app = FastAPI(
        title="KubeOpera action service",
        version="1",
        description=__doc__,
        responses=ERRORS,
        dependencies=[Depends(_known_query)],
    )
    app.state.authenticator = authenticator

    _error_answers(app)
    _audited(app, service)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/requests", status_code=201, response_model=ActionRequest)
    def create(
        request: Request, body: NewRequest, who: Caller, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Ask for a remediation: checked against the policy and run as a server-side
        dry-run; the answer shows the diff and the state (pending, or approved when the
        policy auto-approves)."""
        request.state.asked = body
        return _once(service, request, who, key, body, lambda: service.create(who, body), 201)

    @app.get("/v1/requests", response_model=RequestPage)
    def list_requests(
        request: Request,
        who: Viewer,
        state: State | None = None,
        action: Action | None = None,
        cluster: Filter = None,
        namespace: Filter = None,
        kind: Filter = None,
        name: Filter = None,
        requester: Filter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> RequestPage:
        """Requests, newest first, filtered by equality."""
        filters = _given(state=state, action=action, cluster=cluster, namespace=namespace,
                         kind=kind, name=name, requester=requester)  # fmt: skip
        with service.lock:
            items, total = records.list_requests(service.store, filters, limit, offset)
        return RequestPage(items=items, total=total, limit=limit, offset=offset)

    @app.get("/v1/requests/{request_id}", response_model=ActionRequest)
    def show(request: Request, request_id: RequestId, who: Viewer) -> ActionRequest:
        """One request."""
        request.state.request_id = request_id
        found = service.get(request_id)
        request.state.target = found
        return found

    @app.post("/v1/requests/{request_id}/approve", response_model=ActionRequest)
    def approve(
        request: Request,
        request_id: RequestId,
        who: Caller,
        body: Comment | None = None,
        key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Approve a pending request (an approver other than its requester)."""
        return _decided(service.approve, service, request, request_id, who, body, key)

    @app.post("/v1/requests/{request_id}/reject", response_model=ActionRequest)
    def reject(
        request: Request,
        request_id: RequestId,
        who: Caller,
        body: Comment | None = None,
        key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Reject a request that is not applied (an approver; its requester withdraws it)."""
        return _decided(service.reject, service, request, request_id, who, body, key)

    @app.post("/v1/requests/{request_id}/apply", response_model=ActionRequest)
    def apply(
        request: Request, request_id: RequestId, who: Caller, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Apply an approved request, once, if the object is as its dry-run read it."""
        request.state.request_id = request_id
        return _once(service, request, who, key, None, lambda: service.apply(who, request_id))

    @app.post("/v1/requests/{request_id}/undo", response_model=ActionRequest)
    def undo(
        request: Request, request_id: RequestId, who: Caller, key: IdempotencyKey = None
    ) -> JSONResponse:
        """Put the object back as it was before the apply, if it is as the apply left it."""
        request.state.request_id = request_id
        return _once(service, request, who, key, None, lambda: service.undo(who, request_id))

    @app.get("/v1/audit", response_model=AuditPage)
    def audit_log(
        request: Request,
        who: Viewer,
        request_id: Filter = None,
        caller: Annotated[str | None, Query(alias="who", max_length=253)] = None,
        event: AuditEvent | None = None,
        result: AuditResult | None = None,
        action: Action | None = None,
        namespace: Filter = None,
        name: Filter = None,
        since: UtcDatetime | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AuditPage:
        """The audit, newest first."""
        filters = _given(request_id=request_id, who=caller, event=event, result=result,
                         action=action, namespace=namespace, name=name)  # fmt: skip
        with service.lock:
            rows, total = records.audit_log(service.store, filters, since, limit, offset)
        return AuditPage(
            items=[AuditRecord(**r) for r in rows], total=total, limit=limit, offset=offset
        )

    return app


def _answer(request: Request, result: ActionRequest, status: int) -> JSONResponse:
    request.state.request_id = result.id
    request.state.target = result
    return JSONResponse(result.model_dump(mode="json"), status)


def _call_record(request: Request, status: int) -> ActionAudit:
    """The ``call`` audit record of an answered call."""
    who: Identity | None = getattr(request.state, "who", None)
    known: ActionRequest | None = getattr(request.state, "target", None)
    asked: NewRequest | None = getattr(request.state, "asked", None)
    target = known.target if known else None
    return ActionAudit(
        audit_id=uuid.uuid4().hex,
        at=datetime.now(UTC),
        event=AuditEvent.CALL,
        result=AuditResult.OK
        if status < 400
        else AuditResult.FAILED
        if status >= 500
        else AuditResult.REFUSED,
        who=who.name if who else "",
        roles=sorted(who.roles) if who else [],
        method=request.method,
        route=request.url.path[:1000],
        status=status,
        request_id=str(getattr(request.state, "request_id", ""))[:64],
        action=known.action.value if known else (asked.action or "") if asked else "",
        cluster=target.cluster if target else (asked.cluster or "") if asked else "",
        namespace=target.namespace if target else asked.namespace if asked else "",
        kind=target.kind if target else (asked.kind or "") if asked else "",
        name=target.name if target else (asked.name or "") if asked else "",
        reason=str(getattr(request.state, "reason", ""))[:1000],
    )


def _error_answers(app: FastAPI) -> None:
    """Every refusal as a ``Problem``, its reason kept for the call's audit record."""

    @app.exception_handler(RefusedError)
    async def refused(request: Request, error: RefusedError) -> JSONResponse:
        request.state.reason = error.reason
        return JSONResponse(
            Problem(detail=error.reason, rule=error.rule).model_dump(), error.status
        )

    @app.exception_handler(KubeError)
    async def kube_refused(request: Request, error: KubeError) -> JSONResponse:
        """What the API server refused the service itself (its role, most often)."""
        request.state.reason = f"the API server refused the service: {error.message}"
        return JSONResponse({"detail": request.state.reason}, 502)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        request.state.reason = str(error.detail)
        return JSONResponse({"detail": str(error.detail)}, error.status_code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid"}
        if first.get("type") == "json_invalid":  # not JSON at all: a bad request
            request.state.reason = "the body is not JSON"
            return JSONResponse({"detail": request.state.reason}, 400)
        where = ".".join(str(p) for p in first.get("loc", ()))
        request.state.reason = f"{where}: {first.get('msg', 'invalid')}"
        return JSONResponse({"detail": request.state.reason}, 422)


def _audited(app: FastAPI, service: Service) -> None:
    """Every call but ``UNAUDITED``'s: refused when its caller is not authenticated
    (``_identify``) or its body is over ``MAX_BODY`` (413; 411 without a length), before
    its body is read; then one ``call`` audit record of its answer (a crash: 500)."""

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in UNAUDITED:
            return await call_next(request)
        refusal = await run_in_threadpool(_identify, request) or _oversized(request)
        if refusal is not None:
            response: Response = refusal
        else:
            try:
                response = await call_next(request)
            except Exception:
                await run_in_threadpool(service.announce, [_call_record(request, 500)])
                raise
        await run_in_threadpool(service.announce, [_call_record(request, response.status_code)])
        return response


MAX_BODY = 64 * 1024
"""The largest request body taken, in bytes (a request is a few hundred)."""


def _oversized(request: Request) -> JSONResponse | None:
    length = request.headers.get("content-length")
    if length is None and request.headers.get("transfer-encoding"):
        return _refusal(request, 411, "give the body's Content-Length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return _refusal(request, 413, f"the body is over {MAX_BODY} bytes")
    return None


def _identify(request: Request) -> JSONResponse | None:
    """Set ``request.state.who`` from the bearer token; else the refusal: 401 without a
    valid token, 503 when the API server cannot say whose it is."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refusal(request, 401, "no bearer token")
    authenticator: Authenticator = request.app.state.authenticator
    try:
        who = authenticator.identify(token.strip())
    except KubeError as refused:  # the service's own role, most often
        return _refusal(request, 503, f"the API server refuses the service's token review "
                        f"(HTTP {refused.status}): see its ClusterRole in "
                        "deploy/kubernetes/actions.yaml")  # fmt: skip
    except Exception:  # the API server did not answer the review: say so, not why
        return _refusal(request, 503, "the API server cannot review tokens now")
    if who is None:
        return _refusal(request, 401, "the token is not valid")
    request.state.who = who
    return None


def _given(**filters: object) -> dict[str, str]:
    """The filters given (not None), as the store compares them: text."""
    return {name: str(value) for name, value in filters.items() if value is not None}


def _known_query(request: Request) -> None:
    """422 for a query parameter the route does not take (a mistyped filter would list
    everything; ``?dryRun=All`` on an apply would not make it a dry-run)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    taken = _query_names(dependant) if dependant is not None else frozenset()
    unknown = sorted(set(request.query_params) - taken)
    if unknown:
        raise RefusedError(422, f"unknown query parameter {unknown[0]}")


def _query_names(dependant: Any) -> frozenset[str]:
    names = {p.alias or p.name for p in dependant.query_params}
    for inner in dependant.dependencies:
        names |= _query_names(inner)
    return frozenset(names)


def _refusal(request: Request, status: int, reason: str) -> JSONResponse:
    request.state.reason = reason
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": reason}, status, headers)


def _decided(
    decide: Callable[[Identity, str, str], ActionRequest],
    service: Service,
    request: Request,
    request_id: str,
    who: Identity,
    body: Comment | None,
    key: str | None,
) -> JSONResponse:
    """An approval or rejection (``decide``) with its comment, once per idempotency key."""
    request.state.request_id = request_id
    note = body.comment if body else ""
    return _once(service, request, who, key, body, lambda: decide(who, request_id, note))


def _once(
    service: Service,
    request: Request,
    who: Identity,
    key: str | None,
    body: BaseModel | None,
    call: Callable[[], ActionRequest],
    status: int = 200,
) -> JSONResponse:
    """``call`` once per caller and idempotency key."""
    if key is None:
        return _answer(request, call(), status)
    text = body.model_dump_json() if body is not None else ""
    fingerprint = hashlib.sha256(f"{request.method} {request.url.path} {text}".encode()).hexdigest()
    with service.lock:
        kept = records.kept_answer(service.store, who.name, key)
        if kept is not None:
            if kept[0] != fingerprint:
                raise RefusedError(422, "this Idempotency-Key was used for another call")
            request.state.reason = "replayed: the answer given to this Idempotency-Key"
            answer = json.loads(kept[2])
            request.state.request_id = answer.get("id", "")
            return JSONResponse(answer, kept[1], {"Idempotent-Replayed": "true"})
        try:
            response = _answer(request, call(), status)
        except RefusedError as refusal:
            response = JSONResponse(
                Problem(detail=refusal.reason, rule=refusal.rule).model_dump(), refusal.status
            )
            request.state.reason = refusal.reason
        records.keep_answer(
            service.store,
            who.name,
            key,
            fingerprint,
            response.status_code,
            bytes(response.body).decode(),
            service.clock(),
        )
        return response
