"""The HTTP API's models: what callers send and get back. Mapped explicitly from the domain,
so the stored shape and the public shape can change independently. The committed OpenAPI
document (docs/openapi.json) is generated from these."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..domain import grant as domain
from ..domain.durations import format_duration
from ..domain.grant import Decision, Grant, GrantEvent, GrantStatus

if TYPE_CHECKING:  # annotations only: the models do not import the logic
    from ..logic.deciding import AccessRequest
    from ..logic.offers import Offer

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# At least 3 characters (eks_jit.server.domain.grant.MIN_REASON), checked after the cluster, scope,
# namespace and duration so that the most useful error wins: 400 reason_too_short.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


# -- a request's context: untrusted text an approver reads, so bounded and refused rather than cleaned --

CONTEXT_MAX_BYTES = 4096  # the whole context as compact UTF-8 JSON
CONTEXT_MAX_COMMANDS = 10
# Control (Cc: newlines, tabs, escapes), format (Cf: bidi overrides, zero-width), line/paragraph
# separators, private-use and surrogate code points: none belongs in one line an approver reads.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})


def _one_line(value: str) -> str:
    bad = next((c for c in value if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise ValueError(
            f"control, format and line-break characters are not allowed (found U+{ord(bad):04X}): "
            "one line of plain text"
        )
    return value


_URL_REFUSED = frozenset('<>"\\^`{|}')


def is_https_link(value: str) -> bool:
    """An absolute ``https://`` URL with a host, no user:password part, printable ASCII only (an IDN
    is sent in its ``xn--`` form) and none of ``<>"\\^`{|}``: what an approver reads is exactly
    where it goes, and it cannot leave an HTML attribute."""
    if not value.startswith("https://") or not value.isascii() or any(c.isspace() or c in _URL_REFUSED for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname) and parts.username is None and parts.password is None


def _https_url(value: str) -> str:
    if not is_https_link(value):
        raise ValueError(
            "must be an https:// URL with a host, of printable ASCII (no spaces, quotes or <>), no user:password@",
        )
    return value


def _line(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


IncidentUrl = Annotated[str, _line(1024), AfterValidator(_https_url)]
AlertText = Annotated[str, _line(500), AfterValidator(_one_line)]
TaskId = Annotated[str, _line(128), AfterValidator(_one_line)]
Command = Annotated[str, _line(500), AfterValidator(_one_line)]


class RequestContext(BaseModel):
    """What the access is for, shown to approvers (Slack, email, the approval page) as the
    requester's own words and kept with the grant for the audit. Every field is optional and
    one line of plain text: control, format (bidi, zero-width) and line-break characters are
    refused, as are unknown fields; the whole object is at most 4096 bytes as JSON. Policy does
    not read it. Refusals answer 400 ``invalid_context`` naming the field."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "incident_url": "https://example.pagerduty.com/incidents/Q1ABCD2EFGH3IJ",
                    "alert": "KubeDeploymentReplicasMismatch payments/payments-api",
                    "task_id": "INC-4711",
                    "commands": ["kubectl -n payments rollout restart deployment/payments-api"],
                }
            ]
        },
    )

    incident_url: IncidentUrl | None = Field(
        default=None,
        description="the incident, alert or ticket this is for: an https:// URL (at most 1024 characters)",
    )
    alert: AlertText | None = Field(
        default=None, description="the alert's title or text, one line (at most 500 characters)"
    )
    task_id: TaskId | None = Field(default=None, description="the agent's task or ticket id (at most 128 characters)")
    commands: list[Command] = Field(
        default=[],
        max_length=CONTEXT_MAX_COMMANDS,
        description=(
            f"the commands the agent plans to run with the access, in order: at most {CONTEXT_MAX_COMMANDS}, "
            "each one line of at most 500 characters"
        ),
    )

    @model_validator(mode="after")
    def _bounded(self) -> RequestContext:
        size = len(
            json.dumps(self.model_dump(exclude_defaults=True), separators=(",", ":"), ensure_ascii=False).encode()
        )
        if size > CONTEXT_MAX_BYTES:
            raise ValueError(f"the context is {size} bytes as JSON; at most {CONTEXT_MAX_BYTES} are kept")
        return self

    def to_domain(self) -> domain.RequestContext:
        return domain.RequestContext(
            incident_url=self.incident_url, alert=self.alert, task_id=self.task_id, commands=tuple(self.commands)
        )


class ContextView(BaseModel):
    """A grant's context as it was given (the requester's words: show it as untrusted text)."""

    incident_url: str | None = Field(default=None, description="the incident, alert or ticket link given")
    alert: str | None = Field(default=None, description="the alert text given")
    task_id: str | None = Field(default=None, description="the task or ticket id given")
    commands: list[str] = Field(default=[], description="the commands it said it plans to run")

    @classmethod
    def of(cls, context: domain.RequestContext | None) -> ContextView | None:
        if context is None:
            return None
        return cls(
            incident_url=context.incident_url,
            alert=context.alert,
            task_id=context.task_id,
            commands=list(context.commands),
        )


SESSION_NAME = r"^[A-Za-z0-9_+=,.@-]{2,64}$"
"""An STS role session name (``RoleSessionName`` of AssumeRole: 2 to 64 of ``[\\w+=,.@-]``, where
``\\w`` is ASCII letters, digits and ``_``)."""
SessionName = Annotated[str, StringConstraints(pattern=SESSION_NAME)]
AccessModeName = Literal["entry", "gateway"]


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

    cluster: Text = Field(description="a cluster name from the catalog (`eks-jit` config), e.g. prod-eks")
    namespace: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="the namespace; omit for a cluster-wide scope"
    )
    scope: Text = Field(description="a scope from the catalog, e.g. rollout-restart: what the access allows")
    duration: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        description="how long: 90s, 15m, 1h or ISO-8601 (PT15M); within the policy's maximum"
    )
    reason: Reason = Field(description="why, in a sentence: the approver and the audit read it (at least 3 characters)")
    context: RequestContext | None = Field(
        default=None, description="what the access is for, shown to approvers and kept for the audit"
    )
    session: SessionName | None = Field(
        default=None,
        description=(
            "bind the grant to one STS role session (the RoleSessionName the agent's role was assumed with, "
            "2-64 of A-Z a-z 0-9 _+=,.@-): only that session may use it, not every holder of the role. Only "
            "on a cluster whose access_mode is gateway (400 session_not_supported elsewhere); omit for every "
            "session of the role"
        ),
    )
    dry_run: bool = Field(
        default=False,
        description="answer 200 with the decision this request would get (auto, manual or deny) and write nothing",
    )


class ExtendRequest(BaseModel):
    """Lengthen an active grant: decided by the same policy on the whole new window."""

    model_config = ConfigDict(extra="forbid")

    duration: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        description="additional time, added to the grant's current expiry: 90s, 15m, 1h or ISO-8601"
    )
    reason: Reason = Field(description="why more time is needed (at least 3 characters)")
    context: RequestContext | None = Field(default=None, description="what the extra time is for, for the approvers")


class RevokeRequest(BaseModel):
    """Why a grant is ended (revoke) or a request withdrawn (cancel)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(max_length=1000)] = Field(
        default="", description="why, kept in the grant's events"
    )


class DecisionRequest(BaseModel):
    """An approver's approve/deny, with an optional comment (kept in the grant's events)."""

    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = Field(
        default="", description="the approver's comment, kept in the grant's events"
    )


class DecisionView(BaseModel):
    """What policy said about the request when it arrived."""

    outcome: str = Field(description="auto_approve | needs_approval | deny | too_long")
    policies: list[str] = Field(description="the ids of the Cedar policies that decided")
    reason: str = Field(default="", description="why, when denied")
    approvals_required: int = Field(default=0, description="how many approvers must agree (needs_approval)")
    approvers: list[str] = Field(default=[], description="who may approve: principal ARNs and group:<name> entries")


class Connection(BaseModel):
    """What an active grant's holder needs to reach the cluster: with it, `eks-jit kubeconfig`
    writes a kubeconfig whose user runs `aws eks get-token` (entry mode) or `eks-jit token`
    (gateway mode); no eks:* permission needed."""

    cluster: str = Field(description="the EKS cluster's name (for `aws eks get-token --cluster-name`)")
    region: str = Field(description="the cluster's AWS region")
    endpoint: str = Field(
        description="the Kubernetes API server URL; on a gateway cluster, eks-jit's gateway for that cluster"
    )
    certificate_authority: str = Field(
        description="the CA certificate of that endpoint, base64 (kubeconfig certificate-authority-data); empty "
        "when it is publicly trusted"
    )
    access_mode: AccessModeName = Field(
        default="entry",
        description="entry: straight to the EKS API server; gateway: through eks-jit's gateway, which checks "
        "every request",
    )


class GrantView(BaseModel):
    """A grant (or an extension request) as its requester, approvers and auditors see it."""

    id: str = Field(description="the grant id (a UUID): pass it to every /v1/grants/{grant_id} route")
    status: GrantStatus = Field(
        description="pending_approval, approved, active (access given), or ended: expired, revoked, denied, "
        "cancelled, failed"
    )
    requester: str = Field(description="the IAM role or user ARN that asked")
    cluster: str = Field(description="the cluster")
    namespaces: list[str] = Field(description="the namespaces the access covers; empty for a cluster-wide scope")
    scope: str = Field(description="the scope asked for")
    reason: str = Field(description="the requester's reason")
    duration: str = Field(description="the window's length, e.g. 15m (an extension: the time it adds)")
    created_at: datetime = Field(description="when it was requested")
    approved_at: datetime | None = Field(default=None, description="when it was approved (by policy or people)")
    approved_by: list[str] = Field(default=[], description="who approved: policy:<id> or approver ARNs")
    activated_at: datetime | None = Field(default=None, description="when the access was given")
    expires_at: datetime | None = Field(default=None, description="when the access ends on its own")
    ended_at: datetime | None = Field(default=None, description="when it ended (expired, revoked, denied, ...)")
    status_reason: str = Field(default="", description="why it is in its status (a denial's or revocation's reason)")
    extends: str | None = Field(
        default=None, description="on an extension request: the grant whose window it lengthens"
    )
    version: int = Field(description="increases by one with every event")
    decision: DecisionView = Field(description="what policy said when the request arrived")
    connection: Connection | None = Field(default=None, description="set while the grant is active")
    context: ContextView | None = Field(default=None, description="what the requester said it is for (untrusted text)")
    session: str | None = Field(
        default=None, description="the STS role session the grant is bound to; absent: every session of the role"
    )
    access_mode: AccessModeName | None = Field(
        default=None,
        description="how the cluster gives the access now: entry (an EKS access entry) or gateway (eks-jit's "
        "gateway); absent for a cluster no longer configured",
    )
    command: HeldCommandView | None = Field(
        default=None,
        description="on a held command's grant (scope `command`): the one request it lets through once, under "
        "the grant in `command.grant`",
    )

    @classmethod
    def of(cls, grant: Grant, connection: dict[str, str] | None = None, access_mode: str | None = None) -> GrantView:
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
            context=ContextView.of(grant.context),
            session=grant.session,
            command=HeldCommandView.model_validate(grant.command.to_json()) if grant.command else None,
            access_mode=access_mode,  # type: ignore[arg-type]  # the catalog's AccessMode values
            decision=DecisionView(
                outcome=d.outcome,
                policies=list(d.policy_ids),
                reason=d.reason,
                approvals_required=d.approvals_required,
                approvers=list(d.approvers),
            ),
        )


class HeldCommandView(BaseModel):
    """The request a guardrail held, as the gateway received it (docs/agents.md, "Held commands")."""

    grant: str = Field(description="the grant the request runs under")
    method: str = Field(description="the HTTP method")
    path: str = Field(description="the canonical Kubernetes API path the gateway authorized")
    query: str = Field(default="", description="the query string, as sent")
    body_sha256: str = Field(description="SHA-256 of the request body as sent (hex); the same body passes")
    describe: str = Field(default="", description="the request as a person reads it")
    guardrails: list[str] = Field(default=[], description="the policies that held it")


class HoldRequest(BaseModel):
    """What the gateway holds (POST /v1/holds; only the gateway's own role may send it)."""

    model_config = ConfigDict(extra="forbid")

    grant_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")] = Field(
        description="the grant that covers the request"
    )
    principal: Annotated[str, StringConstraints(max_length=2048)] = Field(description="the caller's role or user ARN")
    session: SessionName | None = Field(default=None, description="the caller's STS role session name")
    cluster: Text = Field(description="the cluster")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(description="the HTTP method")
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(description="the API path")
    query: Annotated[str, StringConstraints(max_length=8192)] = Field(default="", description="the query string")
    body_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the body (hex)"
    )


class HoldAnswerView(BaseModel):
    outcome: Literal["held", "pass"] = Field(
        description="held: it waits for the approval of `grant`; pass: `grant` approved it and is now used"
    )
    grant: GrantView = Field(description="the command grant that holds (or held) this one request")
    message: str = Field(description="what the gateway tells kubectl")


class EventView(BaseModel):
    """One entry of a grant's append-only history."""

    version: int = Field(description="the grant version this event produced")
    type: str = Field(description="requested, approved, activated, extended, revoked, expired, denied, ...")
    at: datetime = Field(description="when it happened")
    actor: str = Field(description="who did it: a principal ARN, policy:<id> or eks-jit")
    detail: dict[str, Any] = Field(default={}, description="what the event recorded (from/to status, reason, ...)")

    @classmethod
    def of(cls, event: GrantEvent) -> EventView:
        return cls(version=event.version, type=event.type, at=event.at, actor=event.actor, detail=event.detail)


class GrantDetail(GrantView):
    """A grant with its whole history."""

    events: list[EventView] = Field(description="the grant's events, oldest first")


class GrantList(BaseModel):
    """Grants, newest first."""

    grants: list[GrantView] = Field(description="the grants")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a stable ``code``, a human ``message``, the ``field`` at fault."""

    code: str = Field(description="stable, for programs: e.g. invalid_duration, policy_denied, grant_not_found")
    message: str = Field(description="for people: what went wrong and what to do")
    field: str | None = Field(default=None, description="the request field at fault (dotted: context.commands.0)")
    grant_id: str | None = Field(default=None, description="set when the refused request was recorded")


class WhoAmI(BaseModel):
    """Who the API takes the caller to be, and what the registry says about them."""

    principal: str = Field(description="the IAM role or user ARN (an assumed-role session resolved to its role)")
    name: str | None = Field(default=None, description="its name in the registry")
    kind: str = Field(default="unknown", description="agent, human or unknown (not in the registry)")
    groups: list[str] = Field(default=[], description="its registry groups (policies and approver lists use them)")
    admin: bool = Field(default=False, description="an eks-jit admin: may read, list (all) and revoke any grant")
    auditor: bool = Field(default=False, description="may read every grant and the audit (auditors and admins)")


class ActivityView(BaseModel):
    """What the grant's principal did on the cluster during the grant, from the EKS audit log."""

    grant_id: str = Field(description="the grant")
    status: str = Field(
        description="complete | partial (still active or too recent) | audit_logging_off | never_active"
    )
    window_start: str | None = Field(default=None, description="the start of the window looked at (ISO-8601)")
    window_end: str | None = Field(default=None, description="its end (ISO-8601)")
    total: int = Field(default=0, description="how many Kubernetes requests were made")
    summary: list[dict[str, Any]] = Field(
        default=[], description="per verb, resource and namespace: count and response codes"
    )
    forbidden: list[dict[str, Any]] = Field(
        default=[], description="requests Kubernetes refused (403): outside the grant"
    )
    requests: list[dict[str, Any]] = Field(default=[], description="the requests, oldest first")
    note: str = Field(default="", description="why the report is partial or empty, when it is")


class CommandView(BaseModel):
    """One Kubernetes request the gateway saw under the grant, allowed or refused."""

    grant_id: str = Field(description="the grant it was recorded under")
    at: str = Field(description="when it arrived: ISO-8601, UTC, microseconds")
    request_id: str = Field(description="the gateway's id of the request")
    principal: str = Field(description="the IAM role ARN that sent it")
    session: str | None = Field(default=None, description="the caller's STS role session name")
    verb: str = Field(
        description="the Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection), "
        "or the lower-case HTTP method of a non-resource request (discovery)"
    )
    path: str = Field(description="the path as forwarded, below the cluster (e.g. /apis/apps/v1/namespaces/...)")
    query: str = Field(default="", description="the query string, without '?'")
    outcome: Literal["allowed", "refused", "blocked", "held", "approved"] = Field(
        description="allowed: forwarded, `status` is the API server's; refused: no grant covered it, the "
        "gateway answered 403; blocked: a guardrail forbids it (403); held: a guardrail holds it for its own "
        "approval (403, `reason` names the approval); approved: a held command passed on its approval"
    )
    status: int = Field(description="the HTTP status the caller got")
    reason: str = Field(default="", description="why it was refused (what kubectl printed); empty when allowed")
    body: str | None = Field(default=None, description="a write's request body, bounded (reads: none)")
    body_truncated: bool = Field(default=False, description="the body was longer and is recorded cut")
    summary: str = Field(default="", description="the answer in short: `Deployment payments-api`, `PodList: 3 items`")
    duration_ms: int = Field(default=0, description="how long the gateway took to answer")
    truncated: bool = Field(default=False, description="a field other than the body was over its bound and is cut")


class SessionView(BaseModel):
    """One page of a grant's session log: the Kubernetes requests sent with it, oldest first."""

    grant_id: str = Field(description="the grant")
    commands: list[CommandView] = Field(description="the recorded requests, in arrival order")
    next: str | None = Field(default=None, description="pass as ?after= for the following page; null on the last")


class AuditRow(BaseModel):
    """One grant for the auditor."""

    grant: GrantView = Field(description="the grant, with its reason and context")
    activity: str = Field(description="one-line activity summary, or 'no report yet'")
    forbidden: int = Field(default=0, description="how many of its requests Kubernetes refused (403)")
    commands: int = Field(
        default=0, description="how many Kubernetes requests the gateway recorded under it (its session log)"
    )
    blocked: int = Field(default=0, description="how many of those a guardrail blocked (outcome blocked)")
    held: int = Field(default=0, description="how many of those a guardrail held for their own approval (outcome held)")


class AuditList(BaseModel):
    """One page of the audit."""

    rows: list[AuditRow] = Field(description="grants requested in the range, oldest first")
    next: str | None = Field(default=None, description="pass as ?next= for the following page; absent on the last")


# What a decision means to a caller that has not asked yet: auto-approved, needs approvers, refused.
Outcome = Literal["auto", "manual", "deny"]
_OUTCOMES: dict[str, Outcome] = {"auto_approve": "auto", "needs_approval": "manual", "deny": "deny", "too_long": "deny"}


class Verdict(BaseModel):
    """What policy decides for a request: ``auto`` (active at once), ``manual`` (pending until
    ``approvals_required`` of ``approvers`` approve, within ``approval_timeout``) or ``deny``
    (``reason`` says why)."""

    decision: Outcome = Field(description="auto: granted at once; manual: approvers decide; deny: refused")
    max_duration: str | None = Field(default=None, description="the longest window this decision covers")
    approvals_required: int = Field(default=0, description="manual: how many approvers must approve")
    approvers: list[str] = Field(
        default=[], description="manual: who may approve (principal ARNs and group:<name> entries)"
    )
    approval_timeout: str | None = Field(
        default=None, description="manual: how long approvers have before the request expires"
    )
    reason: str = Field(default="", description="deny: why policy refuses it")
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

    cluster: str = Field(description="the cluster, as requests name it")
    namespace: str | None = Field(default=None, description="absent for a cluster-wide scope")
    scope: str = Field(description="the scope, as requests name it")
    level: str = Field(description="namespace or cluster")
    access_mode: AccessModeName = Field(
        description="entry: access is an EKS access entry for the role; gateway: through eks-jit's gateway "
        "(a request may then bind the grant to one STS `session`)"
    )
    description: str = Field(description="what the scope allows, from the catalog")
    longer: Verdict | None = Field(
        default=None,
        description="set when a window longer than max_duration is decided otherwise (e.g. approvers beyond the "
        "auto-approval limit): that decision and its own max_duration",
    )

    @classmethod
    def offered(cls, offer: Offer) -> CatalogEntry:
        return cls(
            **Verdict.of(offer.decision).model_dump(),
            cluster=offer.cluster,
            namespace=offer.namespace,
            scope=offer.scope,
            level=offer.level.value,
            access_mode=offer.access_mode.value,  # type: ignore[arg-type]  # the catalog's AccessMode values
            description=offer.description,
            longer=Verdict.of(offer.longer) if offer.longer else None,
        )


class CatalogView(BaseModel):
    """Everything the caller could request, each with the decision a request would get."""

    entries: list[CatalogEntry] = Field(description="one per (cluster, namespace, scope), denied ones included")


class DryRunView(Verdict):
    """The decision a request would get; nothing was written."""

    dry_run: Literal[True] = Field(default=True, description="always true: nothing was written")
    cluster: str = Field(description="the cluster asked for")
    namespaces: list[str] = Field(description="the namespace asked for, or none for a cluster-wide scope")
    scope: str = Field(description="the scope asked for")
    duration: str = Field(description="the duration asked for, as given")
    session: str | None = Field(default=None, description="the STS role session asked for, if any")
    access_mode: AccessModeName = Field(description="how the cluster would give the access: entry or gateway")

    @classmethod
    def answer(
        cls, req: AccessRequest, namespaces: tuple[str, ...], decision: Decision, duration: str, access_mode: str
    ) -> DryRunView:
        return cls(
            **Verdict.of(decision).model_dump(),
            cluster=req.cluster,
            namespaces=list(namespaces),
            scope=req.scope,
            duration=duration,
            session=req.session,
            access_mode=access_mode,  # type: ignore[arg-type]  # the catalog's AccessMode values
        )
