"""The HTTP API's models: what callers send and get back. Mapped explicitly from the domain,
so the stored shape and the public shape can change independently. The committed OpenAPI
document (docs/openapi.json) is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..domain.durations import format_duration
from ..domain.grant import Decision, Grant, GrantEvent, GrantStatus

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# At least 3 characters (eks_jit.server.domain.grant.MIN_REASON), checked after the cluster, scope,
# namespace and duration so that the most useful error wins: 400 reason_too_short.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class GrantRequest(BaseModel):
    """Ask for access. ``duration`` takes ``90s``, ``15m``, ``1h`` or ISO-8601 (``PT15M``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cluster": "prod-eks",
                    "namespace": "payments",
                    "scope": "rollout-restart",
                    "duration": "15m",
                    "reason": "readiness probe failing on payments-api, restarting",
                }
            ]
        },
    )

    cluster: Text
    namespace: Annotated[str, StringConstraints(max_length=253)] | None = None
    scope: Text
    duration: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    reason: Reason
    dry_run: bool = Field(
        default=False,
        description="answer 200 with the decision this request would get (auto, manual or deny) and write nothing",
    )


class ExtendRequest(BaseModel):
    """Lengthen an active grant: decided by the same policy on the whole new window."""

    model_config = ConfigDict(extra="forbid")

    duration: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    reason: Reason


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(max_length=1000)] = ""


class DecisionRequest(BaseModel):
    """An approver's approve/deny, with an optional comment (kept in the grant's events)."""

    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class DecisionView(BaseModel):
    outcome: str
    policies: list[str]
    reason: str = ""
    approvals_required: int = 0
    approvers: list[str] = []


class Connection(BaseModel):
    """What an active grant's holder needs to reach the cluster: with it, `eks-jit kubeconfig`
    writes a kubeconfig whose user runs `aws eks get-token` (no eks:* permission needed)."""

    cluster: str
    region: str
    endpoint: str
    certificate_authority: str


class GrantView(BaseModel):
    id: str
    status: GrantStatus
    requester: str
    cluster: str
    namespaces: list[str]
    scope: str
    reason: str
    duration: str
    created_at: datetime
    approved_at: datetime | None = None
    approved_by: list[str] = []
    activated_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    status_reason: str = ""
    extends: str | None = None
    version: int
    decision: DecisionView
    connection: Connection | None = Field(default=None, description="set while the grant is active")

    @classmethod
    def of(cls, grant: Grant, connection: dict[str, str] | None = None) -> GrantView:
        d = grant.decision
        return cls(
            id=grant.id,
            status=grant.status,
            requester=grant.requester,
            cluster=grant.cluster,
            namespaces=list(grant.namespaces),
            scope=grant.scope,
            reason=grant.reason,
            duration=format_duration(grant.duration),
            created_at=grant.created_at,
            approved_at=grant.approved_at,
            approved_by=list(grant.approved_by),
            activated_at=grant.activated_at,
            expires_at=grant.expires_at,
            ended_at=grant.ended_at,
            status_reason=grant.status_reason,
            extends=grant.extends,
            version=grant.version,
            connection=Connection(**connection) if connection and grant.status is GrantStatus.ACTIVE else None,
            decision=DecisionView(
                outcome=d.outcome,
                policies=list(d.policy_ids),
                reason=d.reason,
                approvals_required=d.approvals_required,
                approvers=list(d.approvers),
            ),
        )


class EventView(BaseModel):
    version: int
    type: str
    at: datetime
    actor: str
    detail: dict[str, Any] = {}

    @classmethod
    def of(cls, event: GrantEvent) -> EventView:
        return cls(version=event.version, type=event.type, at=event.at, actor=event.actor, detail=event.detail)


class GrantDetail(GrantView):
    events: list[EventView]


class GrantList(BaseModel):
    grants: list[GrantView]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a stable ``code``, a human ``message``, the ``field`` at fault."""

    code: str
    message: str
    field: str | None = None
    grant_id: str | None = Field(default=None, description="set when the refused request was recorded")


class WhoAmI(BaseModel):
    """Who the API takes the caller to be, and what the registry says about them."""

    principal: str
    name: str | None = None
    kind: str = "unknown"
    groups: list[str] = []
    admin: bool = Field(default=False, description="an eks-jit admin: may read, list (all) and revoke any grant")
    auditor: bool = Field(default=False, description="may read every grant and the audit (auditors and admins)")


class ActivityView(BaseModel):
    """What the grant's principal did on the cluster during the grant, from the EKS audit log."""

    grant_id: str
    status: str = Field(
        description="complete | partial (still active or too recent) | audit_logging_off | never_active"
    )
    window_start: str | None = None
    window_end: str | None = None
    total: int = 0
    summary: list[dict[str, Any]] = []
    forbidden: list[dict[str, Any]] = Field(
        default=[], description="requests Kubernetes refused (403): outside the grant"
    )
    requests: list[dict[str, Any]] = []
    note: str = ""


class AuditRow(BaseModel):
    grant: GrantView
    activity: str = Field(description="one-line activity summary, or 'no report yet'")
    forbidden: int = 0


class AuditList(BaseModel):
    rows: list[AuditRow]
    next: str | None = Field(default=None, description="pass as ?next= for the following page; absent on the last")


# What a decision means to a caller that has not asked yet: auto-approved, needs approvers, refused.
Outcome = Literal["auto", "manual", "deny"]
_OUTCOMES: dict[str, Outcome] = {"auto_approve": "auto", "needs_approval": "manual", "deny": "deny", "too_long": "deny"}


class Verdict(BaseModel):
    """What policy decides for a request: ``auto`` (active at once), ``manual`` (pending until
    ``approvals_required`` of ``approvers`` approve, within ``approval_timeout``) or ``deny``
    (``reason`` says why)."""

    decision: Outcome
    max_duration: str | None = Field(default=None, description="the longest window this decision covers")
    approvals_required: int = 0
    approvers: list[str] = Field(default=[], description="principal ARNs and group:<name> entries")
    approval_timeout: str | None = None
    reason: str = ""
    policies: list[str] = Field(default=[], description="the policy ids that decided")

    @classmethod
    def of(cls, decision: Decision) -> Verdict:
        return cls(
            decision=_OUTCOMES[decision.outcome],
            max_duration=format_duration(decision.max_duration) if decision.max_duration else None,
            approvals_required=decision.approvals_required,
            approvers=list(decision.approvers),
            approval_timeout=format_duration(decision.approval_timeout) if decision.approval_timeout else None,
            reason=decision.reason,
            policies=list(decision.policy_ids),
        )


class CatalogEntry(Verdict):
    """One (cluster, namespace, scope) the caller could request, decided for the shortest window."""

    cluster: str
    namespace: str | None = Field(default=None, description="absent for a cluster-wide scope")
    scope: str
    level: str = Field(description="namespace or cluster")
    description: str = Field(description="what the scope allows, from the catalog")
    longer: Verdict | None = Field(
        default=None,
        description="set when a window longer than max_duration is decided otherwise (e.g. approvers beyond the "
        "auto-approval limit): that decision and its own max_duration",
    )


class CatalogView(BaseModel):
    """Everything the caller could request, each with the decision a request would get."""

    entries: list[CatalogEntry]


class DryRunView(Verdict):
    """The decision a request would get; nothing was written."""

    dry_run: Literal[True] = True
    cluster: str
    namespaces: list[str]
    scope: str
    duration: str
