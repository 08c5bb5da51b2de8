"""The action service's core: create a request (checked against the policy and run as a
server-side dry-run), approve, reject, apply (once), undo, and after a restart settle
what a stopped service left half done. HTTP is ``actions.api``'s; this is the same for
any caller.

One lock serialises every change of state: the service runs as one replica, and an
approved request moves to ``applying`` (written to the store) before its change is sent,
so a retried or concurrent apply finds it no longer approved. Every step is audited
(``models.actions.ActionAudit``) through ``announce``.
"""

import contextlib
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.actions import records, remediations
from kubeopera.actions.auth import Identity
from kubeopera.actions.config import ServiceConfig
from kubeopera.actions.kube import Cluster, ConflictError, KubeError
from kubeopera.actions.lifecycle import ActionRequest, Approval, FieldDiff, State
from kubeopera.actions.policy import Action, Change, Decision, Policy, Role
from kubeopera.actions.remediations import FieldValue, Params, RemediationError, Target
from kubeopera.collectors.kubernetes.redact import UNKEYED
from kubeopera.models import Finding, FindingKind, FindingStatus
from kubeopera.models.actions import ActionAudit, AuditEvent, AuditResult
from kubeopera.reports.drift import finding as stored_finding
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.object_diff import comparable, differences

log = logging.getLogger("kubeopera.actions")


class RefusedError(Exception):
    """A call the service does not carry out: ``status`` (HTTP), ``reason``, and the
    policy ``rule`` that refused it, if one did."""

    def __init__(self, status: int, reason: str, rule: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.rule = status, reason, rule


RECOVERED = {
    "applied": "applied: the change reached the API server before the service stopped",
    "not applied": "not applied: the service stopped before the API server took the change",
    "undone": "undone: the undo reached the API server before the service stopped",
    "not undone": "not undone: the service stopped before the API server took the undo",
}
"""How ``Service.recover`` settles an interrupted apply or undo (the request's reason)."""


ALLOWED, EVICTED = "allowed", "evicted"
PROTECTED = "not evicted: its namespace is protected"
"""A drain's answers for a pod: its dry-run allowed it, it was evicted, it was left."""


KEPT = 10_000
"""Requests kept in memory (about 2 KB each)."""


class NewRequest(BaseModel):
    """A request to create: the ``action`` on the object ``kind``/``namespace``/``name``
    with ``params``, or (``from_finding``) the remediation a finding suggests.
    ``cluster``: the service's own when not given."""

    model_config = ConfigDict(extra="forbid")

    action: Action | None = None
    kind: str | None = Field(None, max_length=63)
    namespace: str = Field("", max_length=63)
    name: str | None = Field(None, max_length=253)
    cluster: str | None = Field(None, max_length=253)
    params: Params = Field(default_factory=Params)
    from_finding: str | None = Field(None, min_length=1, max_length=255)
    comment: str = Field("", max_length=1000)


Announce = Callable[[list[ActionAudit]], None]
"""Where audit records go: the store, and the ``actions`` topic when configured."""

Redact = Callable[[str, dict[str, Any]], dict[str, Any]]
"""The collector's redaction of an object of a kind (``collectors.kubernetes.redact``)."""

Tell = Callable[[ActionRequest, str], None]
"""Told of an applied or undone request (``applied``, ``undone``): PagerDuty change events."""


class Service:
    def __init__(
        self,
        config: ServiceConfig,
        policy: Policy,
        cluster: Cluster,
        store: Store,
        announce: Announce,
        tell: Tell | None = None,
        redact: Redact = UNKEYED.redact,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config, self.policy, self.cluster, self.store = config, policy, cluster, store
        self.announce, self.tell, self.redact, self.clock = announce, tell, redact, clock
        self.lock = threading.RLock()
        self._kept: OrderedDict[str, ActionRequest] = OrderedDict()

    # ---- reading ------------------------------------------------------------------

    def get(self, request_id: str) -> ActionRequest:
        """The request; ``RefusedError`` 404 when there is none. The service is the only
        writer of requests, so those it saved or read lately are answered from memory
        (the newest ``KEPT``)."""
        with self.lock:
            found = self._kept.get(request_id) or records.load_request(self.store, request_id)
            if found is None:
                raise RefusedError(404, f"no request {request_id}")
            if found.state in (State.APPLYING, State.UNDOING):  # left so by an unanswered call
                with contextlib.suppress(Exception):
                    found = self._settle(found)
            self._keep(found)
        return found

    def _save(self, request: ActionRequest) -> None:
        records.save_request(self.store, request)
        self._keep(request)

    def _keep(self, request: ActionRequest) -> None:
        self._kept[request.id] = request
        self._kept.move_to_end(request.id)
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)

    # ---- creating ------------------------------------------------------------------

    def create(self, who: Identity, new: NewRequest) -> ActionRequest:
        """Check, dry-run and record a new request (approved at once when its rule
        auto-approves). RefusedError: 403 (role, policy), 404 (object, finding), 409 (the
        object changed during the dry-run, a resolved finding), 422 (what cannot be
        done: wrong kind, missing parameter, nothing to change, the API server's
        validation)."""
        _needs(who, Role.REQUESTER, "asking for a remediation")
        now = self.clock()
        with self.lock:
            action, target, params, finding = self._resolved(new)
            try:
                remediations.check_params(action, target, params)
            except RemediationError as problem:
                raise RefusedError(422, str(problem)) from None
            self._allowed(action, who.roles, target, Change(), now)  # before saying what exists
            live = self.cluster.get(target)
            if live is None:
                raise RefusedError(404, f"no {target}")
            fields = self._fields(action, target, live, params, finding)
            try:
                writes = remediations.writes(action, live, params, now, fields)
                desired = remediations.written(live, writes)
                change = remediations.change(action, live, desired)
            except (ValueError, TypeError, AttributeError) as problem:  # odd finding evidence
                raise RefusedError(422, str(problem)) from None
            decision = self._allowed(action, who.roles, target, change, now)
            dry = self._dry_run(action, target, live, desired)
            if dry.after is not None:  # as the API server writes them: 0.5 -> "500m"
                writes = remediations.reverse(dry.after, writes)
            undo, undo_note = self._undo_plan(action, target, live, writes)
            request = ActionRequest(
                id=uuid.uuid4().hex[:16],
                action=action,
                target=target,
                params=params,
                comment=new.comment,
                finding=finding.fingerprint if finding else None,
                requester=who.name,
                roles=sorted(who.roles),
                created_at=now,
                updated_at=now,
                state=State.APPROVED if decision.auto_approve else State.PENDING,
                rule=decision.rule,
                auto_approve=decision.auto_approve,
                resource_version=str(live["metadata"].get("resourceVersion", "")),
                uid=str(live["metadata"].get("uid", "")),
                generation=live["metadata"].get("generation"),
                writes=writes,
                undo=undo,
                undo_note=undo_note,
                diff=dry.diff,
                evictions=dry.evictions,
                evicted_uids=dry.evicted_uids,
            )
            self._save(request)
            self._audit(
                AuditEvent.DRY_RUN,
                AuditResult.OK,
                who,
                request,
                f"dry-run: {len(dry.diff)} fields; {decision.rule}: {request.state}",
                *_sides(dry.diff),
            )
        return request

    def _allowed(
        self,
        action: Action,
        roles: Iterable[Role],
        target: Target,
        change: Change,
        now: datetime,
    ) -> Decision:
        """The policy's decision; ``RefusedError`` 403 naming the rule when it refuses."""
        decision = self.policy.decide(
            action, set(roles), target.cluster, target.namespace, change, now
        )
        if not decision.allowed:
            raise RefusedError(403, decision.reason, decision.rule)
        return decision

    def _resolved(self, new: NewRequest) -> tuple[Action, Target, Params, Finding | None]:
        """The action, target and parameters asked for, from the request or its finding."""
        finding = None
        if new.from_finding is not None:
            finding = self._finding(new.from_finding)
            subject = finding.subject
            action = _suggested(finding)
            params = (
                new.params.model_copy(update={"finding": finding.fingerprint})
                if action == Action.REVERT_DRIFT
                else new.params
            )
            where = (subject.cluster, subject.kind, subject.namespace, subject.name)
        else:
            if new.action is None or new.kind is None or new.name is None:
                raise RefusedError(422, "give action, kind and name, or from_finding")
            action, params = new.action, new.params
            where = (new.cluster or self.config.cluster, new.kind, new.namespace, new.name)
            if action == Action.REVERT_DRIFT and params.finding is not None:
                finding = self._finding(params.finding)
        cluster, kind, namespace, name = where
        if cluster != self.config.cluster:
            raise RefusedError(
                422, f"this service acts on cluster {self.config.cluster}, not {cluster}"
            )
        try:
            target = Target(cluster=cluster, kind=kind, namespace=namespace, name=name)
        except ValueError as problem:
            raise RefusedError(422, _first_error(problem)) from None
        if finding is not None and (
            finding.subject.kind,
            finding.subject.namespace,
            finding.subject.name,
        ) != (kind, namespace, name):
            raise RefusedError(422, f"finding {finding.fingerprint} is about another object")
        return action, target, params, finding

    def _finding(self, fingerprint: str) -> Finding:
        found = stored_finding(self.store, fingerprint)
        if found is None:
            raise RefusedError(404, f"no finding {fingerprint}")
        if found.status == FindingStatus.RESOLVED:
            raise RefusedError(409, f"finding {fingerprint} is resolved: nothing to remediate")
        return found

    def _fields(
        self,
        action: Action,
        target: Target,
        live: dict[str, Any],
        params: Params,
        finding: Finding | None,
    ) -> list[remediations.FieldValue]:
        """What rollback and revert_drift write: from the change timeline, the finding."""
        if action == Action.REVERT_DRIFT:
            assert finding is not None  # check_params: params.finding given, _finding found it
            if finding.kind != FindingKind.DRIFT:
                raise RefusedError(422, f"finding {finding.fingerprint} is not a drift finding")
            return remediations.drift_fields(finding.evidence)
        if action == Action.ROLLBACK:
            uid = str(live["metadata"].get("uid", ""))
            since = params.to
            if since is None:
                newest = records.newest_template_change(self.store, target, uid)
                if newest is None:
                    raise RefusedError(422, f"the change timeline has no change of {target}'s pods")
                since = newest - timedelta(milliseconds=1)
            rows = records.template_changes(self.store, target, uid, since)
            if not rows:
                raise RefusedError(
                    422, f"the pod template of {target} has not changed since {since}"
                )
            return remediations.rollback_fields(rows)
        return []

    def _dry_run(
        self, action: Action, target: Target, live: dict[str, Any], desired: dict[str, Any]
    ) -> "DryRun":
        """The API server's dry-run of the change."""
        evictions: dict[str, str] = {}
        uids: dict[str, str] = {}
        try:
            if action == Action.DELETE_POD:
                self.cluster.delete(target, live["metadata"]["resourceVersion"], dry_run=True)
                after = None
            else:
                after = self.cluster.replace(target, desired, dry_run=True)
            if action == Action.DRAIN:
                for pod in _evictable(self.cluster.pods_on(target.name)):
                    name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                    if pod["metadata"]["namespace"] in self.policy.protected_namespaces:
                        evictions[name] = PROTECTED
                    else:
                        evictions[name] = self.cluster.evict(pod, dry_run=True) or ALLOWED
                        uids[name] = _version(pod)[0]
        except ConflictError as changed:
            raise RefusedError(
                409, f"{target} changed during the dry-run: {changed.message}"
            ) from None
        except KubeError as refused:
            raise RefusedError(
                422, f"the API server refused the dry-run: {refused.message}"
            ) from None
        diff = self._diff(target, live, after)
        if not diff and not evictions:
            raise RefusedError(422, f"nothing to change: {target} is as asked already")
        return DryRun(diff, evictions, uids, after)

    def _diff(
        self, target: Target, before: dict[str, Any], after: dict[str, Any] | None
    ) -> list[FieldDiff]:
        """The timeline's diff of the two objects, each redacted as the collector does."""
        shown = [self.redact(target.kind, _kept(o)) if o else None for o in (before, after)]
        return [
            FieldDiff(path=c.path, change=c.change, old=c.old, new=c.new, category=c.category)
            for c in differences(
                comparable(shown[0] or {}), comparable(shown[1]) if shown[1] else None
            )
        ]

    def _undo_plan(
        self, action: Action, target: Target, live: dict[str, Any], writes: list[FieldValue]
    ) -> tuple[list[FieldValue] | None, str]:
        """What undo writes back, or None and why not. A field whose value the collector
        would redact is never kept, so a change of one cannot be undone."""
        if action == Action.DELETE_POD:
            return None, "a deleted pod is not made again: its controller makes a new one"
        undo = remediations.reverse(live, writes)
        shown = remediations.reverse(self.redact(target.kind, live), writes)
        if any(remediations.REDACTED in (field.value or "") for field in shown):
            return None, "a field it changes holds a credential, of which the service keeps no copy"
        note = "the evicted pods are not brought back" if action == Action.DRAIN else ""
        return undo, note

    # ---- approving -----------------------------------------------------------------

    def approve(self, who: Identity, request_id: str, comment: str = "") -> ActionRequest:
        """Approve a pending request. RefusedError: 403 (not an approver; the requester
        itself, under four eyes), 409 (not pending)."""
        _needs(who, Role.APPROVER, "approving")
        with self.lock:
            request = self.get(request_id)
            if self.config.four_eyes and who.name == request.requester:
                raise RefusedError(
                    403, "four eyes: a request is approved by someone other than its requester"
                )
            _in(request, State.PENDING, "approved")
            now = self.clock()
            request = request.moved(
                State.APPROVED,
                now,
                approvals=[*request.approvals, Approval(by=who.name, at=now, comment=comment)],
            )
            self._save(request)
            self._audit(AuditEvent.APPROVE, AuditResult.OK, who, request, comment)
        return request

    def reject(self, who: Identity, request_id: str, comment: str = "") -> ActionRequest:
        """Reject a pending or approved request (an approver, or its requester
        withdrawing it). RefusedError: 403, 409 (applied or ended already)."""
        with self.lock:
            request = self.get(request_id)
            if who.name != request.requester:
                _needs(who, Role.APPROVER, "rejecting someone else's request")
            _in(request, (State.PENDING, State.APPROVED), "rejected")
            request = request.moved(
                State.REJECTED, self.clock(), rejected_by=who.name, reason=comment
            )
            self._save(request)
            self._audit(AuditEvent.REJECT, AuditResult.OK, who, request, comment)
        return request

    # ---- applying ------------------------------------------------------------------

    def apply(self, who: Identity, request_id: str) -> ActionRequest:
        """Apply an approved request, once: its requester or an approver. Refused: 403
        (role; outside the change windows now), 409 (not approved, applied already, the
        approval expired, the object changed since the dry-run), 422 (the API server
        refused), 502 (the API server did not answer: the request is settled from the
        object, as after a restart)."""
        _needs(who, Role.REQUESTER, "applying")
        with self.lock:
            request = self.get(request_id)
            if who.name != request.requester:
                _needs(who, Role.APPROVER, "applying someone else's request")
            _in(request, State.APPROVED, "applied")
            now = self.clock()
            approved_at = request.approvals[-1].at if request.approvals else request.created_at
            if now - approved_at > self.config.approval_ttl:
                expired = request.moved(
                    State.PENDING,
                    now,
                    approvals=[],
                    reason=f"the approval of {approved_at:%Y-%m-%d %H:%M:%S} UTC expired",
                )
                self._save(expired)
                raise RefusedError(409, f"{expired.reason}: approve it again")
            self._allowed(request.action, request.roles, request.target, Change(), now)
            live = self.cluster.get(request.target)
            if live is None or not _as_read(request, live):
                raise self._failed(who, request, 409, "the object changed since the dry-run")
            self._audit(AuditEvent.APPLY, AuditResult.STARTED, who, request, "sending the change")
            request = request.moved(State.APPLYING, now)
            self._save(request)
            return self._apply(who, request, live)

    def _apply(self, who: Identity, request: ActionRequest, live: dict[str, Any]) -> ActionRequest:
        target = request.target
        try:
            if request.action == Action.DELETE_POD:
                self.cluster.delete(target, request.resource_version, dry_run=False)
                version = None
            else:
                desired = remediations.written(live, request.writes)
                answer = self.cluster.replace(target, desired, dry_run=False)
                version = answer["metadata"]["resourceVersion"]
        except ConflictError as changed:
            raise self._failed(
                who, request, 409, f"the object changed since the dry-run: {changed.message}"
            ) from None
        except KubeError as refused:
            raise self._failed(
                who, request, 422, f"the API server refused: {refused.message}"
            ) from None
        except Exception as lost:  # no answer: the change may or may not have been made
            raise self._unanswered(request, lost) from None
        now = self.clock()
        applied = request.moved(
            State.APPLIED, now, applied_at=now, applied_by=who.name, applied_version=version
        )
        self._save(applied)
        if request.action == Action.DRAIN:
            evictions = self._evict(applied)
            applied = applied.moved(
                State.APPLIED, self.clock(), evictions=evictions, reason=_eviction_note(evictions)
            )
            self._save(applied)
        self._audit(
            AuditEvent.APPLY, AuditResult.OK, who, applied, applied.reason, *_sides(applied.diff)
        )
        self._told(applied, "applied")
        return applied

    def _told(self, request: ActionRequest, what: str) -> None:
        """PagerDuty told (``tell``); its failure is logged, the change stands."""
        if self.tell is not None:
            try:
                self.tell(request, what)
            except Exception as error:
                log.warning("request %s %s; change event not sent: %s", request.id, what,
                            type(error).__name__)  # fmt: skip

    def _unanswered(self, request: ActionRequest, lost: Exception) -> RefusedError:
        """The refusal for a change the API server did not answer, the request settled
        from the object at once (``_settle``)."""
        said = f"the API server did not answer ({type(lost).__name__})"
        try:
            settled = self._settle(request)
        except Exception:  # it still does not: settled when the request is next read
            return RefusedError(502, f"{said}; the request is {request.state.value} until "
                                "the object can be read")  # fmt: skip
        return RefusedError(502, f"{said}; the request is {settled.state.value}")

    def _failed(
        self, who: Identity, request: ActionRequest, status: int, reason: str
    ) -> RefusedError:
        """The request failed (not applied), recorded and audited; the refusal to raise."""
        failed = request.moved(State.FAILED, self.clock(), reason=reason)
        self._save(failed)
        result = AuditResult.REFUSED if status == 409 else AuditResult.FAILED
        self._audit(AuditEvent.APPLY, result, who, failed, reason)
        return RefusedError(status, reason)

    def _evict(self, request: ActionRequest) -> dict[str, str]:
        """Evict the pods the dry-run allowed, and only those (the ones the approver saw);
        each with its answer: "evicted", or why not."""
        outcomes = {}
        for name, answer in request.evictions.items():
            if answer != ALLOWED:
                outcomes[name] = answer
                continue
            namespace, pod_name = name.split("/", 1)
            pod = self.cluster.get(
                Target(
                    cluster=request.target.cluster, kind="Pod", namespace=namespace, name=pod_name
                )
            )
            same = pod is not None and _version(pod)[0] == request.evicted_uids.get(name)
            if pod is None or not same or pod["spec"].get("nodeName") != request.target.name:
                outcomes[name] = "not evicted: gone from the node since the dry-run"
                continue
            try:
                outcomes[name] = self.cluster.evict(pod, dry_run=False) or EVICTED
            except Exception as refused:  # recorded, the drain goes on
                outcomes[name] = (
                    f"not evicted: {getattr(refused, 'message', type(refused).__name__)}"
                )
        return outcomes

    # ---- undoing -------------------------------------------------------------------

    def undo(self, who: Identity, request_id: str) -> ActionRequest:
        """Write back the fields as they were before the apply, dry-run first, if the
        object is still as the apply left it. An approver may undo, and the requester of
        a request its rule auto-approved. Refused: 403, 409 (not applied; cannot be
        undone; changed since), 422, 502 (as apply)."""
        with self.lock:
            request = self.get(request_id)
            if not (request.auto_approve and who.name == request.requester):
                _needs(who, Role.APPROVER, "undoing")
            _in(request, State.APPLIED, "undone")
            if request.undo is None:
                raise RefusedError(
                    409, f"request {request.id} cannot be undone: {request.undo_note}"
                )
            target = request.target
            live = self.cluster.get(target)
            if live is None or _version(live)[0] != request.uid:
                raise RefusedError(409, f"{target} is gone or made again since the apply")
            if not remediations.holds(live, request.writes):
                raise RefusedError(
                    409, f"{target} changed since the apply: undo would overwrite that"
                )
            try:
                restored = remediations.written(live, request.undo)
            except RemediationError as problem:
                raise RefusedError(
                    409, f"{target} cannot take its fields back: {problem}"
                ) from None
            # who may, where and when; not the limits: undo goes back to what was
            self._allowed(request.action, who.roles, target, Change(), self.clock())
            try:
                self.cluster.replace(target, restored, dry_run=True)
            except KubeError as refused:
                raise RefusedError(
                    409 if isinstance(refused, ConflictError) else 422,
                    f"the API server refused the undo's dry-run: {refused.message}",
                ) from None
            undoing = request.moved(State.UNDOING, self.clock())
            self._save(undoing)
            try:
                self.cluster.replace(target, restored, dry_run=False)
            except KubeError as refused:
                self._save(undoing.moved(State.APPLIED, self.clock(), reason=refused.message))
                self._audit(AuditEvent.UNDO, AuditResult.REFUSED, who, request, refused.message)
                raise RefusedError(
                    409 if isinstance(refused, ConflictError) else 422,
                    f"the API server refused the undo: {refused.message}",
                ) from None
            except Exception as lost:
                raise self._unanswered(undoing, lost) from None
            now = self.clock()
            undone = undoing.moved(State.UNDONE, now, undone_at=now, undone_by=who.name)
            self._save(undone)
            after, before_fields = _sides(request.diff)
            self._audit(AuditEvent.UNDO, AuditResult.OK, who, undone, "", before_fields, after)
            self._told(undone, "undone")
        return undone

    # ---- after a restart -----------------------------------------------------------

    def recover(self) -> list[ActionRequest]:
        """Settle each request a stopped service left ``applying`` or ``undoing``
        (``_settle``)."""
        with self.lock:
            return [self._settle(request) for request in records.unfinished(self.store)]

    def _settle(self, request: ActionRequest) -> ActionRequest:
        """From the object, whether the change reached the API server: an apply ends
        applied or failed; an undo ends undone or applied. Audited as a ``recover`` event.
        Raises what reading the object raises (the request stays as it was)."""
        live = self.cluster.get(request.target)
        now = self.clock()
        if request.state == State.APPLYING:
            if _landed(request, live):
                note = RECOVERED["applied"]
                if request.action == Action.DRAIN:
                    note += "; its evictions are not known: drain again to evict what is left"
                ended = request.moved(State.APPLIED, now, applied_at=now, reason=note)
            else:
                ended = request.moved(State.FAILED, now, reason=RECOVERED["not applied"])
        elif live is not None and remediations.holds(live, request.undo or []):
            ended = request.moved(State.UNDONE, now, undone_at=now, reason=RECOVERED["undone"])
        else:
            ended = request.moved(State.APPLIED, now, reason=RECOVERED["not undone"])
        self._save(ended)
        self._audit(AuditEvent.RECOVER, AuditResult.OK, None, ended, ended.reason)
        log.info("request %s: %s", ended.id, ended.reason)
        return ended

    # ---- audit ---------------------------------------------------------------------

    def _audit(
        self,
        event: AuditEvent,
        result: AuditResult,
        who: Identity | None,
        request: ActionRequest,
        reason: str,
        before: str | None = None,
        after: str | None = None,
    ) -> None:
        target = request.target
        self.announce(
            [
                ActionAudit(
                    audit_id=uuid.uuid4().hex,
                    at=self.clock(),
                    event=event,
                    result=result,
                    who=who.name if who else "",
                    roles=sorted(who.roles) if who else [],
                    request_id=request.id,
                    action=request.action.value,
                    cluster=target.cluster,
                    namespace=target.namespace,
                    kind=target.kind,
                    name=target.name,
                    reason=reason,
                    before=before,
                    after=after,
                )
            ]
        )


def _needs(who: Identity, role: Role, what: str) -> None:
    if role not in who.roles:
        raise RefusedError(
            403,
            f"{what} needs the {role.value} role; "
            f"{who.name} holds {', '.join(sorted(who.roles)) or 'none'}",
        )


def _in(request: ActionRequest, states: State | tuple[State, ...], to_be: str) -> None:
    wanted = states if isinstance(states, tuple) else (states,)
    if request.state.value == to_be:
        raise RefusedError(409, f"request {request.id} is {to_be} already")
    if request.state not in wanted:
        raise RefusedError(
            409, f"request {request.id} is {request.state.value}: it cannot be {to_be}"
        )


def _suggested(finding: Finding) -> Action:
    """The remediation a finding suggests: a drift's revert; a workload's anomaly, a
    restart."""
    if finding.kind == FindingKind.DRIFT:
        return Action.REVERT_DRIFT
    if finding.kind == FindingKind.ANOMALY and finding.subject.kind in remediations.WORKLOADS:
        return Action.RESTART
    raise RefusedError(
        422,
        f"no remediation is suggested for a {finding.kind.value} finding "
        f"of a {finding.subject.kind}",
    )


def _kept(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without its status and managedFields."""
    kept = {k: v for k, v in obj.items() if k != "status"}
    metadata = obj.get("metadata") or {}
    kept["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return kept


def _version(obj: Mapping[str, Any] | None) -> tuple[str, str]:
    """The object's uid and resourceVersion ("" for what is gone)."""
    metadata = (obj or {}).get("metadata") or {}
    return str(metadata.get("uid", "")), str(metadata.get("resourceVersion", ""))


def _sides(diff: list[FieldDiff]) -> tuple[str, str]:
    """The diff's before and after: JSON objects of field path -> value (JSON, null
    where absent)."""
    return (
        json.dumps({d.path: d.old for d in diff}, sort_keys=True),
        json.dumps({d.path: d.new for d in diff}, sort_keys=True),
    )


@dataclass(frozen=True)
class DryRun:
    """A dry-run's answer: the diff (redacted), for a drain each pod's eviction answer
    ("allowed", or why not) and its uid, and the object the API server would store (None:
    a deletion)."""

    diff: list[FieldDiff]
    evictions: dict[str, str]
    evicted_uids: dict[str, str]
    after: dict[str, Any] | None


def _as_read(request: ActionRequest, live: dict[str, Any]) -> bool:
    """Whether ``live`` is the object the dry-run read: the same uid, and the same
    generation (its spec unchanged: status updates do not count) where it has one, else
    the same resourceVersion, or for a Node (no generation; its kubelet updates its
    status all the time) the fields the request writes as they were read."""
    uid, version = _version(live)
    if uid != request.uid:
        return False
    generation = live["metadata"].get("generation")
    if request.generation is not None and generation is not None:
        return bool(generation == request.generation)
    if request.target.kind == "Node" and request.undo is not None:
        return remediations.holds(live, request.undo)
    return version == request.resource_version


def _landed(request: ActionRequest, live: dict[str, Any] | None) -> bool:
    """Whether the object shows the request's apply."""
    if request.action == Action.DELETE_POD:  # gone, made again, or going (finalizers)
        return (
            live is None
            or _version(live)[0] != request.uid
            or bool(live["metadata"].get("deletionTimestamp"))
        )
    return live is not None and remediations.holds(live, request.writes)


def _evictable(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods a drain evicts: not DaemonSet pods or mirror pods (as ``kubectl drain``
    with ``--ignore-daemonsets``), not those finished already."""
    kept = []
    for pod in pods:
        metadata = pod["metadata"]
        owners = {o.get("kind") for o in metadata.get("ownerReferences") or []}
        mirror = "kubernetes.io/config.mirror" in (metadata.get("annotations") or {})
        done = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if "DaemonSet" not in owners and not mirror and not done:
            kept.append(pod)
    return kept


def _eviction_note(evictions: Mapping[str, str]) -> str:
    blocked = {pod: why for pod, why in evictions.items() if why != EVICTED}
    if not blocked:
        return ""
    return f"{len(blocked)} of {len(evictions)} pods not evicted: " + "; ".join(
        f"{pod}: {why}" for pod, why in sorted(blocked.items())
    )


def _first_error(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(error)
