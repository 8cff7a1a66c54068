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

from collections.abc import Callable
from datetime import datetime, timedelta

from lambdas.domain.errors import DomainError, InvalidTransition
from lambdas.domain.grant import Action, Grant, GrantEvent, GrantStatus, note, transition


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


def may_decide(grant: Grant, approver: str, groups_of: GroupsOf, is_human: IsHuman) -> bool:
    """True when ``approver`` is one of the grant's approvers and is not its requester."""
    if approver == grant.requester or not is_human(approver):
        return False
    allowed = grant.decision.approvers
    return approver in allowed or any(f"group:{g}" in allowed for g in groups_of(approver))


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
