"""A request a guardrail holds: ask for its approval, or let it pass once it has one.

The gateway calls :func:`hold` (through ``POST /v1/holds``, which only the gateway's role may call)
when a guardrail holds a request its caller's grant covers. Nothing the gateway says is taken on
trust: the covering grant is read again, the request parsed again from its method, path and query,
its coverage and the guardrail's hold derived again here, as activation re-derives a grant's decision
(logic/justification.py). Then, in order:

- an active held-command grant of this principal and session for the same request (domain/holds.py,
  ``HeldCommand.same_request``) is used: expired with a conditional write, and the answer is
  ``pass``. Of two tries at once, one wins the write; the other is held again.
- else a pending one for the same request is the answer (``held``): asking again does not ask anew.
- else a new one is recorded and handed to the approval workflow (``held``), with the guardrail's
  approvers and count: the doors that decide grants decide it, and never its requester.

Two identical requests held at the same instant may each record one; either's approval lets the
request through once (docs/decisions.md, "One held command").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from ..domain.catalog import Catalog
from ..domain.errors import Conflict, DomainError, Forbidden, GrantNotFound, InvalidRequest, InvalidTransition
from ..domain.grant import Action, Decision, Grant, GrantStatus
from ..domain.holds import HELD_SCOPE, HOLD_WINDOW, HeldCommand, HoldAsk
from ..domain.kube_request import KubeRequest, KubeRequestError, parse_request
from ..domain.kube_rules import Caller, HeldGrant, Outcome, authorize, in_force
from ..domain.policy import Guard
from ..observability import logger
from .deciding import AccessRequest
from .gateway import guardrails
from .lifecycle import apply_action
from .ports import Deps
from .requesting import submit

GATEWAY = "eks-jit:gateway"
"""The actor of a held command's use in its events."""


@dataclass(frozen=True)
class HoldAnswer:
    outcome: Literal["held", "pass"]
    grant: Grant
    """The held command's grant: pending (held), or just used (pass)."""
    guard: Guard


def hold(deps: Deps, ask: HoldAsk) -> HoldAnswer:
    parent = _covering_grant(deps, ask.grant_id)
    if parent.requester != ask.principal or parent.cluster != ask.cluster:
        raise Forbidden(f"grant {parent.id} is not the caller's on cluster {ask.cluster}", code="not_covered")
    request, guard = _held(deps, parent, Caller(ask.principal, ask.session), ask.method, ask.path, ask.query)
    command = HeldCommand(
        grant=parent.id,
        method=ask.method,
        path=request.path,
        query=ask.query,
        body_sha256=ask.body_sha256,
        describe=request.describe(),
        guardrails=guard.policy_ids,
    )
    if used := _use_approved(deps, ask, command):
        return HoldAnswer("pass", used, guard)
    for pending in deps.store.by_requester(ask.principal, GrantStatus.PENDING_APPROVAL, limit=100):
        if _is_for(pending, ask, command):
            return HoldAnswer("held", pending, guard)
    decision = Decision(
        outcome="needs_approval",
        policy_ids=guard.policy_ids,
        reason=guard.reason,
        approvals_required=max(1, guard.approvals_required),
        approvers=guard.approvers,
        approval_timeout=guard.approval_timeout,
    )
    req = AccessRequest(
        ask.principal,
        ask.cluster,
        request.namespace,
        HELD_SCOPE,
        HOLD_WINDOW,
        parent.reason,  # the requester's own words, as on the grant the command runs under
        parent.context,
        session=ask.session,
        command=command,
    )
    made = submit(deps, req, (request.namespace,) if request.namespace else (), decision)
    logger.info("command held", extra={"grant_id": made.id, "under": parent.id, "command": command.describe})
    return HoldAnswer("held", made, guard)


def why_not_justified(deps: Deps, grant: Grant) -> str:
    """'' when a held command's grant may be activated now; else why not: its covering grant must be
    in force, must still cover the request, a guardrail must still hold it (one that now blocks it
    wins), and the guardrail's approvers must have voted (logic/justification.py counts them)."""
    from ..domain.approvals import votes_missing  # the same count as every grant's

    assert grant.command is not None
    if deps.policies is None:
        return "this function was built without the policies, so it cannot check the held command"
    try:
        parent = _covering_grant(deps, grant.command.grant)
    except (GrantNotFound, InvalidTransition) as exc:
        return exc.message
    if parent.requester != grant.requester or parent.cluster != grant.cluster:
        return "the held command is not under a grant of its requester on its cluster"
    command = grant.command
    try:
        _, guard = _held(
            deps, parent, Caller(grant.requester, grant.session), command.method, command.path, command.query
        )
    except DomainError as exc:
        return exc.message
    decision = Decision(
        outcome="needs_approval",
        policy_ids=guard.policy_ids,
        approvals_required=max(1, guard.approvals_required),
        approvers=guard.approvers,
    )
    catalog = deps.catalog
    return votes_missing(decision, grant.requester, deps.store.events(grant.id), catalog.groups_of, catalog.is_human)


def _covering_grant(deps: Deps, grant_id: str) -> Grant:
    parent = deps.store.get(grant_id)
    if parent.command is not None or parent.extends is not None:
        raise InvalidRequest(f"{grant_id} is not a grant a command runs under", code="not_covered", field="grant_id")
    if parent.status is not GrantStatus.ACTIVE:
        raise InvalidTransition(f"grant {grant_id} is {parent.status.value}: it covers nothing")
    return parent


def _held(deps: Deps, parent: Grant, caller: Caller, method: str, path: str, query: str) -> tuple[KubeRequest, Guard]:
    catalog: Catalog = deps.catalog
    cluster = catalog.clusters.get(parent.cluster)
    if cluster is None or not cluster.gateway:
        raise InvalidRequest(f"cluster {parent.cluster} is not behind the gateway", code="not_a_gateway_cluster")
    try:
        request = parse_request(method, path, query)
    except KubeRequestError as exc:
        raise InvalidRequest(f"not a Kubernetes request: {exc.message}", code="invalid_command", field="path") from None
    if not isinstance(request, KubeRequest):
        raise InvalidRequest("a non-resource request is never held", code="invalid_command", field="path")
    now = deps.clock.now()
    held = HeldGrant(parent, parent.session)
    if not in_force(held, caller, parent.cluster, now):
        raise Forbidden(f"grant {parent.id} does not cover the caller now", code="not_covered")
    decision = authorize(request, caller=caller, cluster=parent.cluster, grants=[held], scopes=catalog.scopes, now=now)
    # a write the scope narrows was judged on its body by the gateway; the body is not sent here
    if decision.outcome not in (Outcome.ALLOWED, Outcome.NEEDS_CHANGES):
        raise Forbidden(f"grant {parent.id} does not cover {request.describe()}", code="not_covered")
    guard = guardrails(deps.policies, caller, parent.cluster, request, parent)
    if guard is None or guard.outcome != "hold":
        verdict = "blocks" if guard is not None and guard.outcome == "block" else "does not hold"
        raise InvalidRequest(f"no guardrail holds {request.describe()} (policy {verdict} it)", code="not_held")
    return request, guard


def _is_for(grant: Grant, ask: HoldAsk, command: HeldCommand) -> bool:
    return (
        grant.command is not None
        and grant.command.same_request(command)
        and grant.requester == ask.principal
        and grant.cluster == ask.cluster
        and grant.session == ask.session
    )


def _use_approved(deps: Deps, ask: HoldAsk, command: HeldCommand) -> Grant | None:
    now = deps.clock.now()
    for grant in deps.store.active_for(ask.principal, ask.cluster):
        if not _is_for(grant, ask, command) or grant.expires_at is None or grant.expires_at <= now:
            continue
        try:
            used = apply_action(
                deps, grant, Action.EXPIRE, actor=GATEWAY, reason="used once by the request it was approved for"
            )
        except (Conflict, InvalidTransition):  # another try used it first (or it just ended)
            continue
        with contextlib.suppress(DomainError):  # it will fire, find the grant ended, and change nothing
            deps.scheduler.cancel(grant.id)
        return used
    return None
