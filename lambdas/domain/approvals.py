"""Who may decide a pending grant, and what one decision does. Pure rules.

- The requester can never approve or deny their own request, even if they are in the
  approver set (``self_approval``).
- Only principals named by the deciding policy, directly or through a group, may decide, and
  only humans (``not_an_approver``).
- The same approver counts once (``already_voted``).
- N approvals are needed; one deny from an allowed approver ends the request.
- Nothing is decided once the approval timeout has passed (``approval_timed_out``), even if
  the request is still ``pending_approval`` because the sweeper has not expired it yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from .errors import DomainError, InvalidTransition
from .grant import Action, Decision, Grant, GrantEvent, GrantStatus, note, transition


class NotAllowedToDecide(DomainError):
    """The caller may not decide this request (HTTP 403)."""

    code = "not_an_approver"


class SelfApproval(NotAllowedToDecide):
    code = "self_approval"


class AlreadyVoted(DomainError):
    """This approver already approved this request; a vote counts once (HTTP 409)."""

    code = "already_voted"


class ApprovalTimedOut(InvalidTransition):
    """The time to decide this request is over (HTTP 409); it is expired, not approved."""

    code = "approval_timed_out"


DEFAULT_APPROVAL_TIMEOUT = timedelta(hours=1)  # as the approval links and the workflow's timer


def decision_deadline(grant: Grant) -> datetime:
    """The moment after which no decision on ``grant`` counts."""
    return grant.created_at + (grant.decision.approval_timeout or DEFAULT_APPROVAL_TIMEOUT)


GroupsOf = Callable[[str], tuple[str, ...]]
"""principal ARN -> its registry groups."""
IsHuman = Callable[[str], bool]


def is_approver(
    approvers: tuple[str, ...], requester: str, approver: str, groups_of: GroupsOf, is_human: IsHuman
) -> bool:
    """True when ``approver`` is a human named by ``approvers`` (directly or by group) and is
    not the requester."""
    if approver == requester or not is_human(approver):
        return False
    return approver in approvers or any(f"group:{g}" in approvers for g in groups_of(approver))


def may_decide(grant: Grant, approver: str, groups_of: GroupsOf, is_human: IsHuman) -> bool:
    """True when ``approver`` is one of the grant's approvers and is not its requester."""
    return is_approver(grant.decision.approvers, grant.requester, approver, groups_of, is_human)


VOTE_EVENTS = ("approval_recorded", "approved")


def votes_missing(
    decision: Decision, requester: str, events: Iterable[GrantEvent], groups_of: GroupsOf, is_human: IsHuman
) -> str:
    """Why the approvals recorded in ``events`` do not meet what ``decision`` requires ('' when
    they do): distinct humans the decision names, never the requester, at least the count."""
    if decision.outcome == "auto_approve":
        return ""
    if decision.outcome != "needs_approval":
        return f"policy does not allow it now: {decision.reason or decision.outcome}"
    voters = {e.actor for e in events if e.type in VOTE_EVENTS}
    valid = {v for v in voters if is_approver(decision.approvers, requester, v, groups_of, is_human)}
    required = max(1, decision.approvals_required)
    if len(valid) < required:
        return f"{len(valid)} of the {required} approvals policy requires are recorded"
    return ""


def check_decider(grant: Grant, approver: str, groups_of: GroupsOf, is_human: IsHuman, now: datetime) -> None:
    """Raise the precise reason ``approver`` may not decide ``grant`` at ``now``."""
    if grant.status is not GrantStatus.PENDING_APPROVAL:
        raise InvalidTransition(f"this request is {grant.status.value}: nothing left to decide")
    if now >= decision_deadline(grant):
        raise ApprovalTimedOut(
            f"the time to decide this request ended at {decision_deadline(grant).isoformat()}: it expires undecided"
        )
    if approver == grant.requester:
        raise SelfApproval("you cannot approve or deny your own request")
    if not may_decide(grant, approver, groups_of, is_human):
        raise NotAllowedToDecide("you are not one of this request's approvers")
    if approver in grant.approved_by:
        raise AlreadyVoted("you already approved this request; an approver counts once")


def approve(grant: Grant, approver: str, *, at: datetime, comment: str, via: str) -> tuple[Grant, GrantEvent]:
    """One approval: recorded, or (the Nth distinct one) the request becomes ``approved``."""
    votes = len(grant.approved_by) + 1
    required = max(1, grant.decision.approvals_required)
    if votes >= required:
        return transition(grant, Action.APPROVE, at=at, actor=approver, comment=comment, via=via, votes=votes)
    updated, event = note(
        grant, "approval_recorded", at=at, actor=approver, comment=comment, via=via, votes=votes, required=required
    )
    return updated.model_copy(update={"approved_by": (*grant.approved_by, approver)}), event


def deny(grant: Grant, approver: str, *, at: datetime, comment: str, via: str) -> tuple[Grant, GrantEvent]:
    return transition(grant, Action.DENY, at=at, actor=approver, reason=comment or "denied by approver", via=via)
