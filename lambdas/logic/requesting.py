"""A principal asks for access: validate, ask policy, record, and activate if auto-approved.

Bad input raises :class:`InvalidRequest` before anything is written. A policy denial is
recorded (auditors want to see what was refused) and then raised as :class:`PolicyDenied`.

A request may name the id to record it under (``record_as``: the HTTP edge derives it from the
caller's Idempotency-Key and the request). If a grant is already recorded under that id, an
earlier attempt of the same request got that far and was cut short (a crash, a timeout, a lost
answer): the request goes on with that grant from where it stopped, and never records a second.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from ..domain.errors import Conflict, Forbidden, GrantNotFound, InvalidRequest, InvalidTransition, PolicyDenied
from ..domain.grant import (
    Action,
    Decision,
    ExtensionNotExtendable,
    Grant,
    GrantEvent,
    GrantStatus,
    RequestContext,
    new_grant,
    transition,
)
from . import approvals
from .deciding import AccessRequest, check_reason, decide
from .lifecycle import activate
from .ports import Deps

__all__ = ["AccessRequest", "request_extension", "request_grant", "submit"]


def request_grant(deps: Deps, req: AccessRequest, *, record_as: str | None = None) -> Grant:
    """Record the request; an auto-approved one comes back already ``active`` (or ``failed``)."""
    namespaces, decision = decide(deps, req)
    check_reason(req.reason)
    return submit(deps, req, namespaces, decision, record_as=record_as)


def request_extension(
    deps: Deps,
    caller: str,
    grant_id: str,
    extra: timedelta,
    reason: str,
    context: RequestContext | None = None,
    *,
    record_as: str | None = None,
) -> Grant:
    """Ask to lengthen an active grant by ``extra``. Policy decides on the whole new window, so an
    extension never takes a grant past the policy maximum. ``context`` is the extension's own (what
    the extra time is for); the grant's stays on the grant."""
    if extra <= timedelta(0):
        raise InvalidRequest("an extension must be positive", code="invalid_duration", field="duration")
    parent = deps.store.get(grant_id)
    if caller != parent.requester:
        raise Forbidden("only the requester may extend this grant")
    if parent.extends is not None:
        raise ExtensionNotExtendable(
            f"{parent.id} is an extension of grant {parent.extends}: extend {parent.extends} instead",
            grant_id=parent.extends,
        )
    if parent.status is not GrantStatus.ACTIVE:
        raise InvalidTransition(f"a grant that is {parent.status.value} cannot be extended")
    whole = AccessRequest(
        caller,
        parent.cluster,
        parent.namespaces[0] if parent.namespaces else None,
        parent.scope,
        parent.duration + extra,
        reason,
        context,
        session=parent.session,  # an extension lengthens the same access: the same session
    )
    namespaces, decision = decide(deps, whole)
    check_reason(reason)
    return submit(deps, replace(whole, duration=extra), namespaces, decision, extends=parent.id, record_as=record_as)


def submit(
    deps: Deps,
    req: AccessRequest,
    namespaces: tuple[str, ...],
    decision: Decision,
    *,
    extends: str | None = None,
    record_as: str | None = None,
) -> Grant:
    """Record a decided request: denied (recorded, then raised), auto-approved (activated now),
    or pending (handed to the approval workflow). Under ``record_as``, a grant an earlier attempt
    recorded there is resumed instead (:func:`resume`), if it is the requester's and younger than
    the idempotency window; an older one means the key came back after its window: a new id."""
    try:
        return _submit(deps, req, namespaces, decision, extends, record_as)
    except _Taken as taken:
        earlier, now = taken.grant, deps.clock.now()
        if earlier.requester == req.requester and earlier.created_at >= now - deps.timing.idempotency_window:
            return resume(deps, earlier)
        return _submit(deps, req, namespaces, decision, extends, None)


def _submit(
    deps: Deps,
    req: AccessRequest,
    namespaces: tuple[str, ...],
    decision: Decision,
    extends: str | None,
    record_as: str | None,
) -> Grant:
    now = deps.clock.now()
    grant, requested = new_grant(
        grant_id=record_as or str(uuid.uuid4()),
        requester=req.requester,
        cluster=req.cluster,
        namespaces=namespaces,
        scope=req.scope,
        reason=req.reason,
        duration=req.duration,
        decision=decision,
        now=now,
        extends=extends,
        context=req.context,
        session=req.session,
        command=req.command,
    )
    keyed = record_as is not None
    policy_actor = "policy:" + ",".join(decision.policy_ids or ("default-deny",))
    if decision.outcome == "deny":
        denied, event = transition(grant, Action.DENY, at=now, actor=policy_actor, reason=decision.reason)
        _create(deps, denied, [requested, event], keyed=keyed)
        raise PolicyDenied(decision.reason, grant_id=denied.id)
    if decision.outcome == "auto_approve":
        approved, event = transition(grant, Action.APPROVE, at=now, actor=policy_actor)
        _create(deps, approved, [requested, event], keyed=keyed)
        try:
            return activate(deps, approved)
        except Conflict:
            if not keyed:
                raise
            return deps.store.get(approved.id)  # a retry of this request resumed it and moved first
    _create(deps, grant, [requested], keyed=keyed)
    return approvals.start(deps, grant)


class _Taken(Exception):
    """The id a keyed request is recorded under holds a grant already (an earlier attempt's)."""

    def __init__(self, grant: Grant) -> None:
        super().__init__(grant.id)
        self.grant = grant


def _create(deps: Deps, grant: Grant, events: list[GrantEvent], *, keyed: bool) -> None:
    """The first write of a request: put-if-absent, so a keyed retry finds its earlier attempt
    here rather than by reading first (nothing extra in the common case, and no race)."""
    try:
        deps.store.create(grant, events)
    except Conflict:
        if not keyed:
            raise
        try:
            earlier = deps.store.get(grant.id)
        except GrantNotFound:  # a transaction conflict, not a recorded grant: the conflict stands
            raise Conflict(f"grant {grant.id} is being recorded by another attempt: retry") from None
        raise _Taken(earlier) from None


def resume(deps: Deps, grant: Grant) -> Grant:
    """Go on with a request an earlier attempt recorded: raise its denial again, activate it if it
    was approved but not yet active, start its approval workflow again if pending (a start is
    harmless twice: one execution per grant), else answer it as it now is."""
    if grant.status is GrantStatus.DENIED:
        raise PolicyDenied(grant.decision.reason, grant_id=grant.id)
    if grant.status is GrantStatus.APPROVED:
        try:
            return activate(deps, grant)
        except (Conflict, InvalidTransition):  # the sweeper (or another attempt) activated it first
            return deps.store.get(grant.id)
    if grant.status is GrantStatus.PENDING_APPROVAL:
        return approvals.start(deps, grant)
    return grant
