"""A principal asks for access: validate, ask policy, record, and activate if auto-approved.

Bad input raises :class:`InvalidRequest` before anything is written. A policy denial is
recorded (auditors want to see what was refused) and then raised as :class:`PolicyDenied`.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from ..domain.errors import Forbidden, InvalidRequest, InvalidTransition, PolicyDenied
from ..domain.grant import (
    Action,
    Decision,
    ExtensionNotExtendable,
    Grant,
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


def request_grant(deps: Deps, req: AccessRequest) -> Grant:
    """Record the request; an auto-approved one comes back already ``active`` (or ``failed``)."""
    namespaces, decision = decide(deps, req)
    check_reason(req.reason)
    return submit(deps, req, namespaces, decision)


def request_extension(
    deps: Deps,
    caller: str,
    grant_id: str,
    extra: timedelta,
    reason: str,
    context: RequestContext | None = None,
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
    )
    namespaces, decision = decide(deps, whole)
    check_reason(reason)
    return submit(deps, replace(whole, duration=extra), namespaces, decision, extends=parent.id)


def submit(
    deps: Deps, req: AccessRequest, namespaces: tuple[str, ...], decision: Decision, *, extends: str | None = None
) -> Grant:
    """Record a decided request: denied (recorded, then raised), auto-approved (activated now),
    or pending (handed to the approval workflow)."""
    now = deps.clock.now()
    grant, requested = new_grant(
        grant_id=str(uuid.uuid4()),
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
    )
    policy_actor = "policy:" + ",".join(decision.policy_ids or ("default-deny",))
    if decision.outcome == "deny":
        denied, event = transition(grant, Action.DENY, at=now, actor=policy_actor, reason=decision.reason)
        deps.store.create(denied, [requested, event])
        raise PolicyDenied(decision.reason, grant_id=denied.id)
    if decision.outcome == "auto_approve":
        approved, event = transition(grant, Action.APPROVE, at=now, actor=policy_actor)
        deps.store.create(approved, [requested, event])
        return activate(deps, approved)
    deps.store.create(grant, [requested])
    return approvals.start(deps, grant)
