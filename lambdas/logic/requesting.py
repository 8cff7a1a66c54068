"""A principal asks for access: validate, ask policy, record, and activate if auto-approved.

Bad input raises :class:`InvalidRequest` before anything is written. A policy denial is
recorded (auditors want to see what was refused) and then raised as :class:`PolicyDenied`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from lambdas.domain.catalog import DNS_LABEL, Level
from lambdas.domain.durations import format_duration
from lambdas.domain.errors import Forbidden, InvalidRequest, InvalidTransition, PolicyDenied
from lambdas.domain.grant import Action, Decision, Grant, GrantStatus, new_grant, transition
from lambdas.domain.policy import AccessQuestion
from lambdas.logic import approvals
from lambdas.logic.lifecycle import activate
from lambdas.logic.ports import Deps


@dataclass(frozen=True)
class AccessRequest:
    requester: str
    cluster: str
    namespace: str | None
    scope: str
    duration: timedelta
    reason: str


def _namespaces(deps: Deps, req: AccessRequest) -> tuple[str, ...]:
    cluster = deps.catalog.clusters.get(req.cluster)
    if cluster is None:
        raise InvalidRequest(f"unknown cluster '{req.cluster}'", code="unknown_cluster", field="cluster")
    scope = deps.catalog.scopes.get(req.scope)
    if scope is None:
        known = ", ".join(sorted(deps.catalog.scopes))
        raise InvalidRequest(f"unknown scope '{req.scope}' (known: {known})", code="unknown_scope", field="scope")
    if scope.level is Level.CLUSTER:
        if req.namespace:
            raise InvalidRequest(
                f"scope '{req.scope}' is cluster-wide: give no namespace",
                code="namespace_not_allowed",
                field="namespace",
            )
        return ()
    if not req.namespace:
        raise InvalidRequest(f"scope '{req.scope}' needs a namespace", code="namespace_required", field="namespace")
    if not DNS_LABEL.match(req.namespace):
        raise InvalidRequest(
            "a namespace is a DNS label: lowercase letters, digits and '-', at most 63",
            code="invalid_namespace",
            field="namespace",
        )
    if req.namespace not in cluster.namespaces:
        raise InvalidRequest(
            f"namespace '{req.namespace}' is not registered for cluster '{req.cluster}'",
            code="unknown_namespace",
            field="namespace",
        )
    return (req.namespace,)


def _check_duration(deps: Deps, duration: timedelta) -> None:
    bounds = deps.catalog.settings
    if duration <= timedelta(0):
        raise InvalidRequest("duration must be positive", code="invalid_duration", field="duration")
    if duration < bounds.min_duration:
        raise InvalidRequest(
            f"duration must be at least {format_duration(bounds.min_duration)}",
            code="duration_too_short",
            field="duration",
        )
    if duration > bounds.max_duration:
        raise InvalidRequest(
            f"duration exceeds the maximum of {format_duration(bounds.max_duration)}",
            code="duration_exceeds_maximum",
            field="duration",
        )


def decide(deps: Deps, req: AccessRequest) -> tuple[tuple[str, ...], Decision]:
    """Validate ``req`` and ask policy; raises InvalidRequest for bad input (nothing written)."""
    namespaces = _namespaces(deps, req)
    _check_duration(deps, req.duration)
    questions = [
        AccessQuestion(req.requester, req.cluster, req.scope, ns, req.duration) for ns in (namespaces or ("",))
    ]
    assert deps.policies is not None, "a function that decides requests is built with its policies"
    decision = deps.policies.decide_all(questions)
    if decision.outcome == "too_long":
        raise InvalidRequest(decision.reason, code="duration_exceeds_maximum", field="duration")
    return namespaces, decision


def request_grant(deps: Deps, req: AccessRequest) -> Grant:
    """Record the request; an auto-approved one comes back already ``active`` (or ``failed``)."""
    namespaces, decision = decide(deps, req)
    return submit(deps, req, namespaces, decision)


def request_extension(deps: Deps, caller: str, grant_id: str, extra: timedelta, reason: str) -> Grant:
    """Ask to lengthen an active grant by ``extra``. Policy decides on the whole new window, so an
    extension never takes a grant past the policy maximum."""
    if extra <= timedelta(0):
        raise InvalidRequest("an extension must be positive", code="invalid_duration", field="duration")
    parent = deps.store.get(grant_id)
    if caller != parent.requester:
        raise Forbidden("only the requester may extend this grant")
    if parent.status is not GrantStatus.ACTIVE or parent.extends is not None:
        raise InvalidTransition(f"a grant that is {parent.status.value} cannot be extended")
    whole = AccessRequest(
        caller,
        parent.cluster,
        parent.namespaces[0] if parent.namespaces else None,
        parent.scope,
        parent.duration + extra,
        reason,
    )
    namespaces, decision = decide(deps, whole)
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
