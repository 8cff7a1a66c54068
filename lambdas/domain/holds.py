"""One Kubernetes request a guardrail holds for its own approval.

A Cedar guardrail that permits a request only with ``@approval("manual")`` (domain/policy.py,
``PolicySet.guard``) holds it at the gateway. The hold becomes a grant of its own, of the reserved
scope :data:`HELD_SCOPE`, carrying a :class:`HeldCommand`: the covering grant, and the request exactly
as it arrived (method, canonical path, query, and the SHA-256 of its body). That grant is decided by
the doors every grant is decided by (the API, Slack, a signed link; never its requester), with the
guardrail's approvers and count. Once it is active, the same request from the same principal and STS
session, under the same covering grant, passes once: the gateway's hold call expires it as it lets
the request through (a conditional write, so two tries cannot both use it). It lasts
:data:`HOLD_WINDOW` from its approval at most; a second try needs a new approval.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HELD_SCOPE = "command"
"""The scope of a held command's grant. Reserved: no catalog scope may be named so (domain/catalog.py)."""
HOLD_WINDOW = timedelta(minutes=10)
"""How long an approved held command may be sent once: from its approval (activation)."""
HOLD_REASON_PREFIX = "approval required: eks-jit approve "
"""What a held request's refusal starts with, followed by the hold's grant id (kubectl prints it)."""


@dataclass(frozen=True)
class HoldAsk:
    """What the gateway says it holds: the request as it arrived, from whom, under which grant."""

    grant_id: str
    principal: str
    session: str | None
    cluster: str
    method: str
    path: str
    """The path the gateway would forward (percent-escaped, as parsed: domain/kube_request.py)."""
    query: str
    body_sha256: str


@dataclass(frozen=True)
class HoldVerdict:
    """What the API answered the gateway: wait for ``grant_id``'s approval, or pass (it was used)."""

    outcome: Literal["held", "pass"]
    grant_id: str
    message: str


class HoldRefused(Exception):
    """The API would not hold the request (a 4xx: not covered, not held any more, the grant ended)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class HeldCommand(BaseModel):
    """The one request a held command's grant lets through, as the gateway received it."""

    model_config = ConfigDict(frozen=True)

    grant: str = Field(description="the grant that covers the request (its scope allows it)")
    method: str
    path: str = Field(description="the canonical path the gateway authorized (domain/kube_request.py)")
    query: str = ""
    body_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    describe: str = Field(default="", description="the request as a person reads it: verb, resource, name")
    guardrails: tuple[str, ...] = Field(default=(), description="the ids of the policies that held it")

    def same_request(self, other: HeldCommand) -> bool:
        """Whether ``other`` is the same request under the same covering grant (what it was made for)."""
        return (self.grant, self.method, self.path, self.query, self.body_sha256) == (
            other.grant,
            other.method,
            other.path,
            other.query,
            other.body_sha256,
        )

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def hold_message(hold_id: str, describe: str, guardrails: tuple[str, ...], approvers: tuple[str, ...]) -> str:
    """The refusal kubectl prints for a held request: what to run first, then why."""
    return (
        f"{HOLD_REASON_PREFIX}{hold_id} (eks-jit guardrail {', '.join(guardrails)} holds {describe}; "
        f"an approver of {', '.join(approvers) or 'the policy'} approves it, then send the same request again: "
        f"it passes once, within {int(HOLD_WINDOW.total_seconds() // 60)} minutes)"
    )
