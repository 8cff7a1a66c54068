"""The human path: notify approvers, take decisions from any door (API, Slack, link), hand
the outcome to the workflow. Every door ends in :func:`decide`."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain import approvals, links
from ..domain.errors import Conflict, DomainError, Forbidden, NotificationFailed, TransientAwsError
from ..domain.grant import Action, Grant, GrantStatus
from ..domain.links import LinkAlreadyUsed
from ..observability import logger
from .access_control import is_admin
from .lifecycle import SYSTEM, activate, apply_action, commit, end, record
from .ports import ApprovalAsk, ChatMessage, Deps

TOKEN, CHAT = "task_token", "chat"
DECIDED = (GrantStatus.APPROVED, GrantStatus.DENIED, GrantStatus.CANCELLED, GrantStatus.EXPIRED, GrantStatus.FAILED)


def start(deps: Deps, grant: Grant) -> Grant:
    """Start the approval workflow for a new pending request; fail it if that is impossible."""
    assert deps.workflow is not None, "a function that takes requests is built with the workflow"
    try:
        deps.workflow.start(grant)
    except TransientAwsError as exc:
        return apply_action(deps, grant, Action.FAIL, actor=SYSTEM, reason=f"approval workflow not started: {exc}")
    return grant


def approvers_of(deps: Deps, grant: Grant) -> list[str]:
    """Principal ARNs that may decide ``grant`` (never its requester)."""
    return [p.arn for p in deps.catalog.members(grant.decision.approvers) if p.arn != grant.requester]


def link_for(deps: Deps, grant: Grant, approver: str) -> str:
    """The approver's own signed, single-use link, valid until the approval timeout."""
    assert deps.secrets is not None
    key = deps.secrets.get(deps.link_key_secret)["key"].encode()
    token = links.sign(grant.id, approver, approvals.decision_deadline(grant), key)
    return f"{deps.public_url.rstrip('/')}/v1/approval-links/{token}"


@dataclass(frozen=True)
class Notified:
    """Who was told about a request, and how (what ``approvers_notified`` records)."""

    approvers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def notify(deps: Deps, grant_id: str) -> Notified:
    """The workflow's first step: tell every approver. Reads the grant and writes no grant item
    (the notify function's role cannot): recording it is the next step's, ``await_decision``."""
    grant = deps.store.get(grant_id)
    if grant.status is not GrantStatus.PENDING_APPROVAL:  # decided already: nobody to ask
        return Notified()
    names, channels, problems = [], [], []
    for principal in deps.catalog.members(grant.decision.approvers):
        if principal.arn == grant.requester:
            continue
        names.append(principal.name)
        if deps.notifier is not None:
            try:
                link = link_for(deps, grant, principal.arn)
                deps.notifier.ask(ApprovalAsk(grant, principal.arn, principal.name, link))
                channels.append(f"sns:{principal.name}")
            except DomainError as exc:
                problems.append(f"sns:{principal.name}: {exc.message}")
    if deps.chat is not None:
        try:
            message = deps.chat.ask(grant, names)
            deps.store.put_side(grant_id, CHAT, {"channel": message.channel, "ts": message.ts})
            channels.append("slack")
        except DomainError as exc:
            problems.append(f"slack: {exc.message}")
    if not channels:
        raise NotificationFailed("no approver could be notified: " + "; ".join(problems or ["no channel configured"]))
    return Notified(tuple(names), tuple(channels), tuple(problems))


def await_decision(deps: Deps, grant_id: str, task_token: str, notified: Notified) -> Grant:
    """The waitForTaskToken step: keep the task token with the grant (a decision resumes the
    execution with it), record who was notified. A request decided before the token was stored
    is resumed here (its decision found no token to resume)."""
    deps.store.put_side(grant_id, TOKEN, {"token": task_token})
    grant = deps.store.get(grant_id)
    if notified.channels:
        grant = record(
            deps,
            grant,
            "approvers_notified",
            actor=SYSTEM,
            approvers=list(notified.approvers),
            channels=list(notified.channels),
            problems=list(notified.problems),
        )
    if grant.status is not GrantStatus.PENDING_APPROVAL:
        return conclude(deps, grant, may_activate=False)  # resuming this execution activates it
    return grant


def decide(deps: Deps, grant_id: str, approver: str, verdict: str, *, comment: str = "", via: str) -> Grant:
    """One approver's approve/deny, from any door. Racing decisions produce one outcome."""
    for _ in range(8):
        grant = deps.store.get(grant_id)
        now = deps.clock.now()
        approvals.check_decider(grant, approver, deps.catalog.groups_of, deps.catalog.is_human, now)
        decide_one = approvals.approve if verdict == "approve" else approvals.deny
        try:
            updated = commit(deps, grant, decide_one(grant, approver, at=now, comment=comment, via=via))
        except Conflict:
            continue  # another decision landed first: look again (it may have settled it)
        logger.info("decision recorded", extra={"grant_id": grant_id, "verdict": verdict, "via": via})
        return conclude(deps, updated) if updated.status in DECIDED else updated
    raise Conflict(f"grant {grant_id}: too many concurrent decisions, try again")


def cancel(deps: Deps, grant_id: str, caller: str, reason: str = "") -> Grant:
    """The requester (or an admin) withdraws a pending request. A concurrent write (the workflow
    noting what it did, a decision) makes the conditional save lose: look again, as a decision
    does; the transition then refuses what is no longer pending."""
    for _ in range(8):
        grant = deps.store.get(grant_id)
        if caller != grant.requester and not is_admin(deps, caller):
            raise Forbidden("only the requester may cancel this request")
        try:
            cancelled = apply_action(
                deps, grant, Action.CANCEL, actor=caller, reason=reason or "cancelled by requester"
            )
        except Conflict:
            continue
        return conclude(deps, cancelled)
    raise Conflict(f"grant {grant_id}: too many concurrent writers, try again")


def conclude(deps: Deps, grant: Grant, *, resume: bool = True, may_activate: bool = True) -> Grant:
    """Hand a settled request to its workflow and update the approvers' messages. If the
    workflow no longer waits, an approved grant is activated here when ``may_activate`` (else,
    and if that fails, the sweeper finishes it). Workflow steps pass ``resume=False``: their
    execution is already past waiting."""
    token = deps.store.get_side(grant.id, TOKEN) if resume else None
    resumed = (
        token is not None and deps.workflow is not None and deps.workflow.resume(token["token"], grant.status.value)
    )
    if grant.status is GrantStatus.APPROVED and token and not resumed and may_activate:
        grant = activate(deps, grant)
    message = deps.store.get_side(grant.id, CHAT) if deps.chat is not None else None
    if deps.chat is not None and message:
        try:
            deps.chat.update(ChatMessage(message["channel"], message["ts"]), grant, grant.status.value)
        except DomainError as exc:
            logger.warning("chat message not updated", extra={"grant_id": grant.id, "error": exc.message})
    return grant


def pending_for(deps: Deps, caller: str) -> list[Grant]:
    """What ``caller`` may decide now."""
    return [
        g
        for g in deps.store.by_status(GrantStatus.PENDING_APPROVAL)
        if approvals.may_decide(g, caller, deps.catalog.groups_of, deps.catalog.is_human)
        and caller not in g.approved_by
    ]


def open_link(deps: Deps, token: str) -> tuple[links.LinkClaims, Grant, bool]:
    """A link's claims, its grant, and whether it was used. Raises BadLink. Changes nothing."""
    assert deps.secrets is not None
    claims = links.verify(token, deps.secrets.get(deps.link_key_secret)["key"].encode(), deps.clock.now())
    used = deps.store.get_side(claims.grant_id, f"link:{claims.nonce}") is not None
    return claims, deps.store.get(claims.grant_id), used


def use_link(deps: Deps, token: str, verdict: str, comment: str = "") -> Grant:
    """The link page's POST: consume the link (once), then decide as its approver."""
    claims, _, _ = open_link(deps, token)
    fresh = deps.store.put_side(
        claims.grant_id, f"link:{claims.nonce}", {"approver": claims.approver, "verdict": verdict}, only_if_absent=True
    )
    if not fresh:
        raise LinkAlreadyUsed("this approval link was already used")
    return decide(deps, claims.grant_id, claims.approver, verdict, comment=comment, via="link")


def workflow_step(
    deps: Deps, step: str, grant_id: str, cause: str = "", *, task_token: str = "", notified: Notified | None = None
) -> Grant:
    """The workflow's own Lambda steps. Each re-reads the grant before acting, so a retried
    or late step does nothing twice."""
    if step == "await":
        return await_decision(deps, grant_id, task_token, notified or Notified())
    grant = deps.store.get(grant_id)
    if step == "activate" and grant.status is GrantStatus.APPROVED:
        return activate(deps, grant)
    if step == "expire_request":
        if grant.status is GrantStatus.PENDING_APPROVAL:
            grant = apply_action(deps, grant, Action.EXPIRE, actor=SYSTEM, reason="nobody decided in time")
            return conclude(deps, grant, resume=False)
        if grant.status is GrantStatus.APPROVED:  # approved as the timer ran out
            return activate(deps, grant)
    if step == "fail" and not grant.status.is_terminal:
        return end(deps, grant, Action.FAIL, actor=SYSTEM, reason=f"approval workflow failed: {cause}"[:500])
    return grant
