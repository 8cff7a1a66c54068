"""The grant and its lifecycle.

A grant is one request for one scope on one cluster (in one or more namespaces) for a
bounded time. Its status only moves along :data:`TRANSITIONS`; every move produces exactly
one :class:`GrantEvent` with the next ``version``, and the store writes both atomically,
conditioned on the version it read. Nothing here knows about AWS.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .durations import format_duration
from .errors import InvalidTransition
from .holds import HeldCommand


class ExtensionNotRevocable(InvalidTransition):
    """An extension is never revoked on its own (HTTP 409): revoke the grant it extends."""

    code = "extension_not_revocable"


class ExtensionNotExtendable(InvalidTransition):
    """An extension is never extended itself (HTTP 409): extend the grant it extends."""

    code = "extension_not_extendable"


MIN_REASON = 3  # characters, after trimming: what an approver at 3 a.m. and an auditor read


def why_reason_is_short(reason: str) -> str | None:
    if len(reason.strip()) >= MIN_REASON:
        return None
    return f"give a reason of at least {MIN_REASON} characters: the approver and the audit read it"


class GrantStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DENIED = "denied"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {GrantStatus.EXPIRED, GrantStatus.REVOKED, GrantStatus.DENIED, GrantStatus.CANCELLED, GrantStatus.FAILED}
)


class Action(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    ACTIVATE = "activate"
    EXPIRE = "expire"
    REVOKE = "revoke"
    FAIL = "fail"


S, A = GrantStatus, Action
TRANSITIONS: dict[tuple[GrantStatus, Action], GrantStatus] = {
    (S.PENDING_APPROVAL, A.APPROVE): S.APPROVED,
    (S.PENDING_APPROVAL, A.DENY): S.DENIED,
    (S.PENDING_APPROVAL, A.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, A.EXPIRE): S.EXPIRED,  # nobody decided before the approval timeout
    (S.PENDING_APPROVAL, A.FAIL): S.FAILED,
    (S.APPROVED, A.ACTIVATE): S.ACTIVE,
    (S.APPROVED, A.REVOKE): S.REVOKED,
    (S.APPROVED, A.FAIL): S.FAILED,
    (S.ACTIVE, A.EXPIRE): S.EXPIRED,
    (S.ACTIVE, A.REVOKE): S.REVOKED,
    (S.ACTIVE, A.FAIL): S.FAILED,
}
"""The whole lifecycle. Anything not listed is refused with :class:`InvalidTransition`."""

EVENT_OF_ACTION: dict[Action, str] = {
    A.APPROVE: "approved",
    A.DENY: "denied",
    A.CANCEL: "cancelled",
    A.ACTIVATE: "activated",
    A.EXPIRE: "expired",
    A.REVOKE: "revoked",
    A.FAIL: "failed",
}


def next_status(status: GrantStatus, action: Action) -> GrantStatus:
    """Where ``action`` takes a grant in ``status``; raises if the table has no such move."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(f"a grant that is {status} cannot be {EVENT_OF_ACTION[action]}") from None


def ensure_revocable(grant: Grant) -> None:
    """Raise unless ``grant`` may be revoked by a user (the transition table, and one rule).

    An extension carries no access of its own: its effect is the longer window of the grant it
    extends. Marking it ``revoked`` would not take that window back, so the record would say
    something ended while the access it gave remains. Revoking it alone is refused; revoking
    the grant it extends ends both (docs/decisions.md, "Extensions").
    """
    next_status(grant.status, Action.REVOKE)  # pending or ended: InvalidTransition
    if grant.extends is not None:
        raise ExtensionNotRevocable(
            f"{grant.id} is an extension of grant {grant.extends}: it cannot be revoked on its own; "
            f"revoke {grant.extends} to end the access",
            grant_id=grant.extends,
        )


class Decision(BaseModel):
    """What policy said about a request (kept on the grant for the auditor)."""

    model_config = ConfigDict(frozen=True)

    outcome: str  # "auto_approve" | "needs_approval" | "deny" | "too_long"
    policy_ids: tuple[str, ...] = ()
    reason: str = ""
    max_duration: timedelta | None = None
    approvals_required: int = 0
    approvers: tuple[str, ...] = ()  # principal ARNs and "group:<name>" entries
    approval_timeout: timedelta | None = None


class RequestContext(BaseModel):
    """What the requester says the access is for, for the approver and the audit: an incident or
    alert link, the alert's text, a task id, the commands it plans to run. Untrusted text: the
    API bounds it (lambdas/api/models.py) and whoever shows it renders it with
    :func:`context_rows`, never as markup."""

    model_config = ConfigDict(frozen=True)

    incident_url: str | None = None
    alert: str | None = None
    task_id: str | None = None
    commands: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.incident_url or self.alert or self.task_id or self.commands)

    def to_json(self) -> dict[str, Any]:
        """Only what was given (the stored item, the ``requested`` event)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class Grant(BaseModel):
    """A request for access and everything that happened to it since."""

    model_config = ConfigDict(frozen=True)

    id: str
    requester: str  # IAM role/user ARN, never an STS session ARN
    cluster: str
    namespaces: tuple[str, ...]
    scope: str
    reason: str
    duration: timedelta
    status: GrantStatus
    version: int = Field(ge=1)
    created_at: datetime
    decision: Decision
    approved_at: datetime | None = None
    approved_by: tuple[str, ...] = ()
    activated_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    status_reason: str = ""
    extends: str | None = None  # set on an extension request: the grant whose window it lengthens
    extended_by: tuple[str, ...] = ()  # on a grant: the extensions applied to it
    context: RequestContext | None = None  # what the requester said it is for (untrusted)
    session: str | None = None
    """On a gateway cluster: the STS role session name the grant is bound to (one agent task, not
    every holder of the role). None: every session of the requester's role."""
    command: HeldCommand | None = None
    """On a held command's grant (scope ``command``, domain/holds.py): the one request it lets through once."""

    def justifies_access(self) -> bool:
        """Only an active grant puts anything into an access entry; an extension never does
        (its effect is the longer window of the grant it extends)."""
        return self.status is GrantStatus.ACTIVE and self.extends is None


class GrantEvent(BaseModel):
    """One append-only entry in a grant's history. ``version`` is the grant version it produced."""

    model_config = ConfigDict(frozen=True)

    grant_id: str
    version: int
    type: str
    at: datetime
    actor: str
    detail: dict[str, Any] = Field(default_factory=dict)


def new_grant(
    *,
    grant_id: str,
    requester: str,
    cluster: str,
    namespaces: tuple[str, ...],
    scope: str,
    reason: str,
    duration: timedelta,
    decision: Decision,
    now: datetime,
    extends: str | None = None,
    context: RequestContext | None = None,
    session: str | None = None,
    command: HeldCommand | None = None,
) -> tuple[Grant, GrantEvent]:
    """A freshly requested grant (version 1) and its ``requested`` event (which keeps the
    request's context: the audit reads it there too)."""
    context = None if context is None or context.is_empty() else context
    grant = Grant(
        id=grant_id,
        requester=requester,
        cluster=cluster,
        namespaces=namespaces,
        scope=scope,
        reason=reason,
        duration=duration,
        status=GrantStatus.PENDING_APPROVAL,
        version=1,
        created_at=now,
        decision=decision,
        extends=extends,
        context=context,
        session=session,
        command=command,
    )
    event = GrantEvent(
        grant_id=grant_id,
        version=1,
        type="requested",
        at=now,
        actor=requester,
        detail={
            "cluster": cluster,
            "namespaces": list(namespaces),
            "scope": scope,
            "duration_seconds": int(duration.total_seconds()),
            "reason": reason,
            "decision": decision.outcome,
            "policies": list(decision.policy_ids),
            **({"extends": extends} if extends else {}),
            **({"session": session} if session else {}),
            **({"command": command.to_json()} if command else {}),
            **({"context": context.to_json()} if context else {}),
        },
    )
    return grant, event


def transition(
    grant: Grant,
    action: Action,
    *,
    at: datetime,
    actor: str,
    reason: str = "",
    expires_at: datetime | None = None,
    **detail: Any,
) -> tuple[Grant, GrantEvent]:
    """Apply ``action``: the next grant (version + 1) and the event that records it. An
    activation ends ``duration`` from now unless ``expires_at`` says otherwise (extensions)."""
    status = next_status(grant.status, action)
    changes: dict[str, Any] = {"status": status, "version": grant.version + 1}
    if action is A.APPROVE:
        changes |= {"approved_at": at, "approved_by": (*grant.approved_by, actor)}
    elif action is A.ACTIVATE:
        changes |= {"activated_at": at, "expires_at": expires_at or at + grant.duration}
    if status.is_terminal:
        changes["ended_at"] = at
    if reason:
        changes["status_reason"] = reason
    updated = grant.model_copy(update=changes)
    event_detail = {"from": grant.status.value, "to": status.value, **detail}
    if reason:
        event_detail["reason"] = reason
    if action is A.ACTIVATE:
        event_detail["expires_at"] = updated.expires_at.isoformat() if updated.expires_at else None
    event = GrantEvent(
        grant_id=grant.id,
        version=updated.version,
        type=EVENT_OF_ACTION[action],
        at=at,
        actor=actor,
        detail=event_detail,
    )
    return updated, event


def extend(grant: Grant, by: timedelta, *, at: datetime, actor: str, extension_id: str) -> tuple[Grant, GrantEvent]:
    """Lengthen an active grant's window by ``by`` (an approved extension); version + 1."""
    if grant.status is not GrantStatus.ACTIVE or grant.expires_at is None:
        raise InvalidTransition(f"a grant that is {grant.status.value} cannot be extended")
    updated = grant.model_copy(
        update={
            "version": grant.version + 1,
            "expires_at": grant.expires_at + by,
            "duration": grant.duration + by,
            "extended_by": (*grant.extended_by, extension_id),
        }
    )
    assert updated.expires_at is not None
    detail = {
        "extension": extension_id,
        "by_seconds": int(by.total_seconds()),
        "from": grant.expires_at.isoformat(),
        "to": updated.expires_at.isoformat(),
    }
    return updated, GrantEvent(
        grant_id=grant.id, version=updated.version, type="extended", at=at, actor=actor, detail=detail
    )


def note(grant: Grant, kind: str, *, at: datetime, actor: str, **detail: Any) -> tuple[Grant, GrantEvent]:
    """Record something that happened to a grant without changing its status (version + 1)."""
    updated = grant.model_copy(update={"version": grant.version + 1})
    return updated, GrantEvent(grant_id=grant.id, version=updated.version, type=kind, at=at, actor=actor, detail=detail)


NEWLINES = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
REASON = "Reason, in the requester's words"
"""The label of the one row of :func:`summary_rows` that the requester wrote (untrusted)."""
SESSION = "Only for the STS session"
"""The label of the session row of :func:`summary_rows`: a name the requester chose (the API checks
it is an STS role session name, so it is one short line of ``[A-Za-z0-9_+=,.@-]``; shown as text)."""


def untrusted_line(text: str, limit: int = 500) -> str:
    """Text a requester wrote, made into one line an approver can read but that cannot imitate
    the message around it: line breaks (``\\n``, ``\\r``, U+2028...) become a visible ``⏎``,
    other control and format characters (tabs, bidi overrides, zero-width) become a space or
    go, runs of spaces shrink to one, and it is cut at ``limit`` characters. Whoever shows it
    still quotes it and escapes it for the medium (HTML, Slack)."""
    out = []
    for char in text.replace("\r\n", "\n"):
        if char in NEWLINES:
            out.append(" \u23ce ")
        elif unicodedata.category(char) in ("Cc", "Zs"):
            out.append(" ")
        elif unicodedata.category(char) not in ("Cf", "Co", "Cs", "Cn"):
            out.append(char)
    line = re.sub(" {2,}", " ", "".join(out)).strip()
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def summary_rows(grant: Grant) -> list[tuple[str, str]]:
    """What a person deciding a request is shown (Slack message, approval page), in order.
    Every value is one line; the requester's own words come last, under :data:`REASON`."""
    return [
        ("Requester", grant.requester),
        ("Cluster", grant.cluster),
        ("Namespace", ", ".join(grant.namespaces) or "(cluster-wide)"),
        ("Scope", grant.scope),
        ("Duration", format_duration(grant.duration)),
        *([(SESSION, untrusted_line(grant.session))] if grant.session else []),
        *(_command_rows(grant.command) if grant.command else []),
        (REASON, untrusted_line(grant.reason)),
    ]


def _command_rows(command: HeldCommand) -> list[tuple[str, str]]:
    """A held command as its approver is shown it: the request the gateway received (the path is the
    canonical one it authorized; the body is named by its digest, the session log shows it masked)."""
    target = command.path + (f"?{command.query}" if command.query else "")
    return [
        ("Held command", untrusted_line(command.describe or command.method)),
        ("Request", untrusted_line(f"{command.method} {target}")),
        ("Body SHA-256", command.body_sha256),
        ("Under grant", command.grant),
        ("Held by guardrail", ", ".join(command.guardrails) or "(unnamed)"),
    ]


CONTEXT_LABELS = {
    "incident_url": "Incident / alert link",
    "alert": "Alert",
    "task_id": "Task",
    "commands": "Command it plans to run",
}
"""The labels of :func:`context_rows`: every value under them is the requester's (untrusted)."""
CONTEXT_SHOWN = 300  # characters of one context value an approver is shown (the API bounds what is kept)


def context_rows(context: RequestContext | None) -> list[tuple[str, str]]:
    """The request's context as an approver is shown it, in order: (label, one line). Each value
    goes through :func:`untrusted_line` (one line, no control or format characters, cut at
    :data:`CONTEXT_SHOWN`); whoever shows it still quotes it and escapes it for the medium, and a
    link is shown as text (the page may make an ``https:`` one clickable, see ``lambdas/api/pages.py``)."""
    if context is None:
        return []
    rows: list[tuple[str, str]] = []
    for key in ("incident_url", "alert", "task_id"):
        value = getattr(context, key)
        if value:
            rows.append((CONTEXT_LABELS[key], untrusted_line(value, CONTEXT_SHOWN)))
    for number, command in enumerate(context.commands, start=1):
        rows.append((f"{CONTEXT_LABELS['commands']} ({number})", untrusted_line(command, CONTEXT_SHOWN)))
    return rows
