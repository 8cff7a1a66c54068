"""The HTTP API (API Gateway REST, AWS_IAM auth): thin routes over the logic functions.

The caller is who API Gateway says signed the request (``requestContext.identity.userArn``),
normalised from an assumed-role session to its role ARN.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from .. import bootstrap
from ..api import idempotent, pages, paging
from ..api.errors import body_of, status_of, validation_body
from ..api.models import (
    ActivityView,
    AuditList,
    AuditRow,
    CatalogEntry,
    CatalogView,
    CommandView,
    DecisionRequest,
    DryRunView,
    ErrorBody,
    EventView,
    ExtendRequest,
    GrantDetail,
    GrantList,
    GrantRequest,
    GrantView,
    HoldAnswerView,
    HoldRequest,
    RevokeRequest,
    SessionView,
    WhoAmI,
)
from ..domain.activity import ActivityReport
from ..domain.durations import DurationFormatError, parse_duration
from ..domain.errors import DomainError, Forbidden, InvalidRequest, InvalidTransition
from ..domain.grant import Grant, GrantStatus
from ..domain.holds import hold_message
from ..domain.identity import NotAPrincipal, normalise_principal, registry_key
from ..domain.links import BadLink, LinkAlreadyUsed
from ..domain.recording import CommandOutcome, command_key, parse_command_key
from ..logic import activity, approvals, offers, sessions
from ..logic.access_control import is_admin, is_auditor
from ..logic.deciding import namespaces_for
from ..logic.queries import get_grant, list_grants, revoke_grant
from ..logic.requesting import AccessRequest, request_extension, request_grant
from ..observability import MetricUnit, logger, metrics

app = APIGatewayRestResolver(enable_validation=True)
GrantId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="grant id")]
ERRORS: dict[int, Any] = {
    code: {"description": text, "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}
    for code, text in (
        (400, "bad input: nothing was changed; `code` and `field` say what to fix"),
        (403, "not allowed (policy, ownership or identity): do not retry the same request"),
        (404, "no such grant (or not yours to see)"),
        (409, "the grant's state does not allow this, or another writer came first: read the grant again"),
        (503, "busy or AWS unavailable (`busy`, `aws_unavailable`): retry after a short wait"),
    )
}
# Errors every SigV4 route can answer, named in each route's description for an agent's toolkit
COMMON = (
    "Any route answers 403 `forbidden` if the request is not SigV4-signed by a known IAM principal, "
    "400 `malformed_json`/`invalid_request` for a body that is not the documented JSON, and 503 "
    "`busy`/`aws_unavailable` when it is worth retrying."
)


def _json(status: int, body: BaseModel) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump(mode="json"))


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationFormatError as exc:
        raise InvalidRequest(str(exc), code="invalid_duration", field="duration") from exc


def shown(grant: Grant, connection: dict[str, str] | None = None) -> GrantView:
    """A grant with the access mode its cluster has now (absent for a cluster no longer configured)."""
    cluster = bootstrap.deps().catalog.clusters.get(grant.cluster)
    return GrantView.of(grant, connection, access_mode=cluster.access_mode.value if cluster else None)


def view(grant: Grant) -> GrantView:
    """A grant as its requester sees it: while active, with how to reach the cluster."""
    deps = bootstrap.deps()
    if grant.status is GrantStatus.ACTIVE and deps.connections is not None and grant.extends is None:
        try:
            return shown(grant, deps.connections.connection(grant.cluster))
        except DomainError as exc:  # the grant stands; only the convenience is missing
            logger.warning("no cluster connection", extra={"error": exc.message})
    return shown(grant)


def caller() -> str:
    """The IAM role/user ARN that signed the request."""
    arn = app.current_event.request_context.identity.user_arn
    if not arn:
        raise Forbidden("the request carries no IAM identity: sign it with SigV4")
    catalog = bootstrap.deps().catalog
    known = {registry_key(p.arn): p.arn for p in catalog.principals}
    try:
        principal = normalise_principal(arn, known)
    except NotAPrincipal as exc:
        raise Forbidden(str(exc)) from exc
    logger.append_keys(principal=principal)
    return principal


@app.post(
    "/v1/grants",
    operation_id="createGrant",
    summary="Request just-in-time access to a cluster",
    description=(
        "Ask for one scope on one cluster (and namespace) for a bounded time, with a reason and "
        "optionally a `context` the approvers see (incident link, alert, task id, planned commands). "
        "On a cluster whose `access_mode` is gateway, `session` binds the grant to one STS role session. "
        "With `dry_run: true` it answers 200 with the decision it would get (`auto`, `manual`, "
        "`deny`) and writes nothing. Policy decides at once: auto-approved requests answer 201 `active` "
        "with the `connection` to "
        "reach the cluster; others answer 201 `pending_approval` (poll `getGrant` until `active`, "
        "`denied` or `expired`). Call it when a task needs Kubernetes access you do not hold; ask for "
        "the narrowest scope and shortest duration that do the job. Errors: 400 `unknown_cluster`, "
        "`unknown_scope`, `invalid_namespace`, `unknown_namespace`, `namespace_required`, "
        "`namespace_not_allowed`, `invalid_duration`, `duration_too_short`, `duration_exceeds_maximum`, "
        "`reason_too_short`, `invalid_context`, `invalid_session`, `session_not_supported` (a `session` on a cluster "
        "whose `access_mode` is entry), `invalid_request`; 403 `policy_denied` (recorded: its "
        "`grant_id` is set; do not retry); 502 `access_apply_failed`/`scheduling_failed`. " + COMMON
    ),
    tags=["grants"],
    responses={
        201: {"description": "the grant: active if auto-approved, else pending_approval"},
        200: {
            "description": "dry_run: the decision the request would get; nothing written",
            "content": {"application/json": {"schema": DryRunView.model_json_schema()}},
        },
        **ERRORS,
    },
)
def create_grant(
    body: Annotated[GrantRequest, Body()], idempotency_key: idempotent.KeyHeader = None
) -> Response[GrantView | DryRunView]:
    try:
        duration = _duration(body.duration)
    except InvalidRequest:
        namespaces_for(bootstrap.deps(), body.cluster, body.namespace, body.scope)  # a wrong target says so first
        raise
    logger.append_keys(cluster=body.cluster, scope=body.scope)
    req = AccessRequest(
        requester=caller(),
        cluster=body.cluster,
        namespace=body.namespace,
        scope=body.scope,
        duration=duration,
        reason=body.reason,
        context=body.context.to_domain() if body.context else None,
        session=body.session,
    )
    if body.dry_run:
        deps = bootstrap.deps()
        namespaces, decision = offers.dry_run(deps, req)
        logger.info("dry run", extra={"outcome": decision.outcome})
        mode = deps.catalog.clusters[req.cluster].access_mode.value
        return _json(
            200, DryRunView.answer(req, namespaces, decision, body.duration, mode)
        )  # writes nothing, so keeps no Idempotency-Key record either

    def run(record_as: str | None) -> tuple[int, GrantView]:
        grant = request_grant(bootstrap.deps(), req, record_as=record_as)
        logger.append_keys(grant_id=grant.id)
        metrics.add_metric(name="GrantRequested", unit=MetricUnit.Count, value=1)
        logger.info("grant requested", extra={"status": grant.status.value})
        return 201, view(grant)

    return _idempotent(req.requester, idempotency_key, "POST /v1/grants", body, run)


def _idempotent(
    principal: str, key: str | None, operation: str, body: BaseModel, run: Callable[[str | None], tuple[int, Any]]
) -> Response[Any]:
    """``run`` once per (caller, Idempotency-Key) within the window (lambdas/api/idempotent.py)."""
    return idempotent.respond(
        bootstrap.deps(),
        caller=principal,
        key=key,
        operation=operation,
        request=body,
        run=run,
        context=app.lambda_context,
    )


@app.get(
    "/v1/grants",
    operation_id="listGrants",
    summary="List your grants (or, for admins, everyone's in one status)",
    description=(
        "The caller's own grants, newest first, optionally only those in one `status`. Admins may "
        "pass `mine=false` with a `status` to list every principal's. Call it to find a grant whose id "
        "you lost, or to see what access you hold now (`status=active`). Errors: 400 "
        "`status_required` (`mine=false` without `status`), `invalid_request`; 403 `forbidden` "
        "(`mine=false` by a non-admin). " + COMMON
    ),
    tags=["grants"],
    responses=ERRORS,
)
def list_my_grants(
    status: Annotated[GrantStatus | None, Query(description="only grants in this status")] = None,
    mine: Annotated[bool, Query(description="false: every principal's (admins; needs status)")] = True,
    limit: Annotated[int, Query(ge=1, le=200, description="at most this many, newest first")] = 50,
) -> GrantList:
    grants = list_grants(bootstrap.deps(), caller(), status=status, mine=mine, limit=limit)
    return GrantList(grants=[shown(g) for g in grants])


@app.get(
    "/v1/grants/<grant_id>",
    operation_id="getGrant",
    summary="Get one grant, its connection details and its history",
    description=(
        "The grant's status, window, decision and append-only events; while it is `active` (and not an "
        "extension), the `connection` to reach the cluster. Call it to poll a `pending_approval` request "
        "(every few seconds; it ends `active`, `denied`, `expired` or `cancelled`) and before acting, to "
        "check the grant is still `active` and when it `expires_at`. Errors: 404 `grant_not_found`; "
        "403 `forbidden` (not your grant, and you are not an approver, auditor or admin). " + COMMON
    ),
    tags=["grants"],
    responses=ERRORS,
)
def describe_grant(grant_id: GrantId) -> GrantDetail:
    grant, events = get_grant(bootstrap.deps(), caller(), grant_id)
    return GrantDetail(**view(grant).model_dump(), events=[EventView.of(e) for e in events])


@app.post(
    "/v1/grants/<grant_id>/revoke",
    operation_id="revokeGrant",
    summary="End an active grant now",
    description=(
        "Takes the access away at once (its extensions end with it) and records why. Call it as soon "
        "as the task is done: access you no longer need should not wait for the expiry. A pending "
        "request is withdrawn with `cancelGrant` instead. Errors: 409 `invalid_state` (not active or "
        "approved), 409 `extension_not_revocable` (its `grant_id` is the grant to revoke); 403 "
        "`forbidden` (not the requester, one of its approvers or an admin); 404 `grant_not_found`. " + COMMON
    ),
    tags=["grants"],
    responses=ERRORS,
)
def revoke(grant_id: GrantId, body: Annotated[RevokeRequest | None, Body()] = None) -> GrantView:
    """End a grant now and take its access away (its extensions end with it). An extension is
    not revoked on its own: 409 ``extension_not_revocable``, whose ``grant_id`` is the grant to revoke."""
    logger.append_keys(grant_id=grant_id)
    grant = revoke_grant(bootstrap.deps(), caller(), grant_id, body.reason if body else "")
    metrics.add_metric(name="GrantRevoked", unit=MetricUnit.Count, value=1)
    return shown(grant)


@app.post(
    "/v1/grants/<grant_id>/extend",
    operation_id="extendGrant",
    summary="Ask for more time on an active grant",
    description=(
        "Requests `duration` more time on the caller's active grant, decided by the same policy on the "
        "whole new window (it never passes the policy maximum). The answer is the extension request: "
        "`active` when applied at once, else `pending_approval` (poll it with `getGrant`); the grant's "
        "new `expires_at` is on the grant. Call it before `expires_at` when the task needs longer; an "
        "optional `context` says what the extra time is for. Errors: 400 `invalid_duration`, "
        "`duration_exceeds_maximum`, `reason_too_short`, `invalid_context`; 403 `forbidden` (not the "
        "requester), `policy_denied`; 409 `invalid_state` (not active), `extension_not_extendable` "
        "(extend the grant in its `grant_id`); 404 `grant_not_found`. " + COMMON
    ),
    tags=["grants"],
    responses={201: {"description": "the extension request"}, **ERRORS},
)
def extend(
    grant_id: GrantId, body: Annotated[ExtendRequest, Body()], idempotency_key: idempotent.KeyHeader = None
) -> Response[GrantView]:
    """Lengthen an active grant. The answer is the extension request: ``active`` when applied at
    once (auto-approved), else ``pending_approval``; the grant's new ``expires_at`` is on the grant."""
    logger.append_keys(grant_id=grant_id)
    context = body.context.to_domain() if body.context else None
    principal, extra = caller(), _duration(body.duration)

    def run(record_as: str | None) -> tuple[int, GrantView]:
        deps = bootstrap.deps()
        extension = request_extension(
            deps, principal, grant_id, extra, body.reason, context=context, record_as=record_as
        )
        return 201, shown(extension)

    return _idempotent(principal, idempotency_key, f"POST /v1/grants/{grant_id}/extend", body, run)


def _decide(grant_id: str, verdict: str, body: DecisionRequest | None) -> GrantView:
    logger.append_keys(grant_id=grant_id)
    comment = body.comment if body else ""
    return shown(approvals.decide(bootstrap.deps(), grant_id, caller(), verdict, comment=comment, via="api"))


@app.post(
    "/v1/grants/<grant_id>/approve",
    operation_id="approveGrant",
    summary="Approve a pending request (approvers)",
    description=(
        "Records the caller's approval, with an optional comment; once enough approvers agree the grant "
        "is activated. For approvers only: an agent never approves its own or another agent's request "
        "unless it is a configured approver. Errors: 403 `not_an_approver`, `self_approval`; 409 "
        "`already_voted`, `approval_timed_out`, `invalid_state` (already decided or withdrawn); "
        "404 `grant_not_found`. " + COMMON
    ),
    tags=["approvals"],
    responses=ERRORS,
)
def approve(grant_id: GrantId, body: Annotated[DecisionRequest | None, Body()] = None) -> GrantView:
    return _decide(grant_id, "approve", body)


@app.post(
    "/v1/grants/<grant_id>/deny",
    operation_id="denyGrant",
    summary="Deny a pending request (approvers)",
    description=(
        "Denies the request with an optional comment; one denial ends it `denied`. For approvers only. "
        "Errors: 403 `not_an_approver`, `self_approval`; 409 `approval_timed_out`, `invalid_state`; "
        "404 `grant_not_found`. " + COMMON
    ),
    tags=["approvals"],
    responses=ERRORS,
)
def deny(grant_id: GrantId, body: Annotated[DecisionRequest | None, Body()] = None) -> GrantView:
    return _decide(grant_id, "deny", body)


@app.post(
    "/v1/grants/<grant_id>/cancel",
    operation_id="cancelGrant",
    summary="Withdraw your pending request",
    description=(
        "Ends a `pending_approval` request `cancelled` (the approvers' messages then say so). Call it when "
        "the task no longer needs the access it asked for; an active grant is ended with `revokeGrant`. "
        "Errors: 403 `forbidden` (not the requester); 409 `invalid_state` (not pending); "
        "404 `grant_not_found`. " + COMMON
    ),
    tags=["grants"],
    responses=ERRORS,
)
def cancel(grant_id: GrantId, body: Annotated[RevokeRequest | None, Body()] = None) -> GrantView:
    logger.append_keys(grant_id=grant_id)
    return shown(approvals.cancel(bootstrap.deps(), grant_id, caller(), body.reason if body else ""))


def from_the_gateway() -> None:
    """POST /v1/holds is the gateway's alone: signed by its own role (an assumed-role session of it)."""
    arn = app.current_event.request_context.identity.user_arn
    role = bootstrap.deps().gateway_role
    try:
        if arn and role and normalise_principal(arn, {registry_key(role): role}) == role:
            return
    except NotAPrincipal:
        pass
    raise Forbidden("only eks-jit's gateway may hold a command", code="not_the_gateway")


@app.post("/v1/holds", include_in_schema=False)
def hold(body: Annotated[HoldRequest, Body()]) -> Response[HoldAnswerView]:
    """The gateway holds a request a guardrail holds: the answer is the pending approval to ask for, or
    (``pass``) the approved one it just used (logic/holds.py re-derives everything the gateway says)."""
    from_the_gateway()
    logger.append_keys(grant_id=body.grant_id, principal=body.principal)
    from ..logic import holds  # the policy set (cedarpy) loads with the first hold, not at cold start

    ask = holds.HoldAsk(**body.model_dump())
    answer = holds.hold(bootstrap.deps(), ask)
    command = answer.grant.command
    assert command is not None
    message = (
        f"approved by eks-jit grant {answer.grant.id}: passes once"
        if answer.outcome == "pass"
        else hold_message(answer.grant.id, command.describe, command.guardrails, answer.grant.decision.approvers)
    )
    view = HoldAnswerView(outcome=answer.outcome, grant=shown(answer.grant), message=message)
    return _json(201 if answer.outcome == "held" else 200, view)


@app.get(
    "/v1/catalog",
    operation_id="getCatalog",
    summary="What the caller could request, and what each request would get",
    description=(
        "Every (cluster, namespace, scope) of the catalog with the `decision` a request by the caller "
        "would get for the shortest window: `auto` (granted at once, up to `max_duration`), `manual` "
        "(`approvals_required` of `approvers` must approve) or `deny` (with the `reason`); `longer` when a "
        "longer window is decided otherwise. Computed by the same policy evaluation requests use; writes "
        "nothing. Call it before `createGrant` to pick the narrowest scope policy allows; for one exact "
        "request, `createGrant` with `dry_run: true` answers its decision. An unregistered caller is "
        "offered nothing. " + COMMON
    ),
    tags=["discovery"],
    responses=ERRORS,
)
def catalog() -> CatalogView:
    """Everything the caller could request, each (cluster, namespace, scope) with its decision."""
    return CatalogView(entries=[CatalogEntry.offered(o) for o in offers.offers(bootstrap.deps(), caller())])


@app.get(
    "/v1/whoami",
    operation_id="whoAmI",
    summary="Who the API takes the caller to be",
    description=(
        "The IAM principal the signature resolves to (an assumed-role session as its role), its "
        "registry name, kind and groups, and whether it is an admin or auditor. Call it first to check "
        "the credentials an agent signs with are the ones registered. Errors: 403 `forbidden` "
        "(unsigned, or not an IAM role or user). " + COMMON
    ),
    tags=["identity"],
    responses=ERRORS,
)
def whoami() -> WhoAmI:
    principal = caller()
    deps = bootstrap.deps()
    found = deps.catalog.principal(principal)
    return WhoAmI(
        principal=principal,
        name=found.name if found else None,
        kind=found.kind if found else "unknown",
        groups=list(found.groups) if found else [],
        admin=is_admin(deps, principal),
        auditor=is_auditor(deps, principal),
    )


@app.get(
    "/v1/grants/<grant_id>/activity",
    operation_id="getGrantActivity",
    summary="What was done on the cluster with a grant",
    description=(
        "The Kubernetes requests the grant's principal made during the grant's window, from the EKS "
        "audit log: a summary by verb and resource, the requests Kubernetes refused (403), and the "
        "requests. `status` is `partial` while the grant is active or the log is still arriving. "
        "Call it after a task to report what was done. Errors: 403 `forbidden`; 404 `grant_not_found`. " + COMMON
    ),
    tags=["audit"],
    responses=ERRORS,
)
def grant_activity(grant_id: GrantId) -> ActivityView:
    """The Kubernetes requests the grant's principal made during the grant (EKS audit log)."""
    report = activity.activity(bootstrap.deps(), caller(), grant_id)
    return ActivityView(**report.to_json())


@app.get(
    "/v1/grants/<grant_id>/session",
    operation_id="getGrantSession",
    summary="The Kubernetes requests sent with a grant through the gateway (its session log)",
    description=(
        "Every request the gateway saw from the grant's holder on a gateway-mode cluster, allowed or "
        "refused, oldest first: time, principal and session, verb, path and query, the answer's status "
        "and a short summary, a write's body (bounded), and why a refused one was refused. One page at "
        "a time: pass `next` back as `after` (it is null on the last page). A grant with no recorded "
        "request (an entry-mode cluster's, or one not used yet) answers an empty list. Whoever may read "
        "the grant may read its session. Errors: 400 `invalid_next_token`, `invalid_request`; 403 "
        "`forbidden`; 404 `grant_not_found`. " + COMMON
    ),
    tags=["audit"],
    responses=ERRORS,
)
def grant_session(
    grant_id: GrantId,
    limit: Annotated[
        int, Query(ge=1, le=sessions.SESSION_PAGE_MAX, description="commands per page")
    ] = sessions.SESSION_PAGE,
    after: Annotated[
        str | None,
        # 2048: a token carries a request id of up to 128 characters, JSON-escaped, in base64
        Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$", description="the previous page's 'next'"),
    ] = None,
) -> SessionView:
    """One page of the grant's session log, oldest first."""
    page = sessions.session(bootstrap.deps(), caller(), grant_id, limit=limit, after=_command_key(after))
    return SessionView(
        grant_id=page.grant.id,
        commands=[CommandView(**c.to_json()) for c in page.commands],
        next=paging.encode(parse_command_key(page.next)) if page.next else None,
    )


def _command_key(token: str | None) -> str | None:
    """The key a ``next`` token stands for (paging.py: the same opaque spelling as the audit's)."""
    if token is None:
        return None
    try:
        at, request_id = paging.decode(token)
        return command_key(at, request_id)  # OverflowError: a time that has no UTC spelling (year 1, +05:00)
    except (InvalidRequest, OverflowError):
        raise InvalidRequest(
            "'after' is not a token this API gave: pass the 'next' of the previous page unchanged",
            code="invalid_next_token",
            field="after",
        ) from None


@app.get(
    "/v1/audit",
    operation_id="auditGrants",
    summary="Every grant in a time range (auditors)",
    description=(
        "Every grant requested in [since, until), oldest first, with who asked and why (and its "
        "`context`), who approved, the window, how it ended and a one-line activity summary; one page at "
        "a time (pass `next` back; it is absent on the last page). Auditors and admins only. Errors: "
        "400 `invalid_range`, `invalid_limit`, `invalid_next_token`; 403 `forbidden`. " + COMMON
    ),
    tags=["audit"],
    responses=ERRORS,
)
def audit_grants(
    since: Annotated[datetime, Query(description="ISO-8601, inclusive")],
    until: Annotated[datetime, Query(description="ISO-8601, exclusive")],
    limit: Annotated[int, Query(ge=1, le=activity.AUDIT_PAGE_MAX, description="rows per page")] = activity.AUDIT_PAGE,
    next_token: Annotated[
        str | None,
        Query(alias="next", max_length=512, pattern=r"^[A-Za-z0-9_-]+$", description="the previous page's 'next'"),
    ] = None,
) -> AuditList:
    """Every grant requested in [since, until), oldest first, with who asked, who approved, the
    window, how it ended and what was done; one page at a time (``next`` is absent on the last).
    Auditors and admins only."""
    after = paging.decode(next_token) if next_token else None
    page = activity.audit(bootstrap.deps(), caller(), _aware(since), _aware(until), limit=limit, after=after)
    return AuditList(
        rows=[_audit_row(grant, report, page.commands.get(grant.id, {})) for grant, report in page.rows],
        next=paging.encode(page.next) if page.next else None,
    )


def _audit_row(grant: Grant, report: ActivityReport | None, outcomes: dict[CommandOutcome, int]) -> AuditRow:
    return AuditRow(
        grant=shown(grant),
        activity=report.one_line() if report else "no report yet",
        forbidden=len(report.forbidden) if report else 0,
        commands=sum(outcomes.values()),
        blocked=outcomes.get(CommandOutcome.BLOCKED, 0),
        held=outcomes.get(CommandOutcome.HELD, 0),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.get(
    "/v1/approvals",
    operation_id="listApprovals",
    summary="Pending requests the caller may decide",
    description=(
        "The `pending_approval` requests the caller may approve or deny now (not its own). Call it as "
        "an approver to find work; decide with `approveGrant` or `denyGrant`. " + COMMON
    ),
    tags=["approvals"],
    responses=ERRORS,
)
def my_approvals() -> GrantList:
    """Pending requests the caller may decide now."""
    return GrantList(grants=[shown(g) for g in approvals.pending_for(bootstrap.deps(), caller())])


# -- approval links: no IAM (the link is the credential); GET shows, only POST decides -----------

LinkToken = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$", max_length=1024)]


def _html(status: int, page: str) -> Response[str]:
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=page, headers=pages.HEADERS)


@app.get("/v1/approval-links/<token>", include_in_schema=False)
def open_approval_link(token: LinkToken) -> Response[str]:
    try:
        claims, grant, used = approvals.open_link(bootstrap.deps(), token)
    except BadLink as exc:
        return _html(403 if exc.reason != "expired" else 410, pages.problem("This link cannot be used", str(exc)))
    if used:
        return _html(410, pages.problem("This link was already used", "Each approval link works once."))
    if grant.status is not GrantStatus.PENDING_APPROVAL:
        return _html(409, pages.closed(grant))
    return _html(200, pages.confirm(grant, claims.approver))


@app.post("/v1/approval-links/<token>", include_in_schema=False)
def use_approval_link(token: LinkToken) -> Response[str]:
    form = parse_qs(app.current_event.decoded_body or "")
    verdict = (form.get("decision") or [""])[0]
    if verdict not in ("approve", "deny"):
        return _html(400, pages.problem("Choose approve or deny", "The form did not say what to decide."))
    try:
        grant = approvals.use_link(bootstrap.deps(), token, verdict, (form.get("comment") or [""])[0][:500])
    except BadLink as exc:
        return _html(403 if exc.reason != "expired" else 410, pages.problem("This link cannot be used", str(exc)))
    except LinkAlreadyUsed:
        return _html(410, pages.problem("This link was already used", "Each approval link works once."))
    except InvalidTransition:
        return _html(409, pages.problem("Nothing left to decide", "This request was already decided or cancelled."))
    except DomainError as exc:
        return _html(status_of(exc), pages.problem("This decision was not accepted", exc.message))
    return _html(200, pages.result(grant, verdict))


# -- Slack interactivity: Slack's signature, not IAM -------------------------------------------------


@app.post("/v1/slack/interactions", include_in_schema=False)
def slack_interaction() -> Response[Any]:
    # slack-sdk loads here, not at cold start: importing any part of it loads its WebClient (about
    # 35 ms), and no agent's request comes this way (docs/performance.md)
    from slack_sdk.signature import Clock as SlackClock
    from slack_sdk.signature import SignatureVerifier

    deps = bootstrap.deps()

    class FunctionClock(SlackClock):
        """slack-sdk's verifier asks the time as epoch seconds; give it ours (tests move it)."""

        def now(self) -> float:
            return float(deps.clock.now().timestamp())

    event = app.current_event
    raw = event.decoded_body or ""
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    secret = deps.secrets.get(deps.slack_secret)["signing_secret"] if deps.secrets and deps.slack_secret else ""
    timestamp, signature = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
    verifier = SignatureVerifier(secret, clock=FunctionClock())
    if not (secret and timestamp.isdigit() and signature and verifier.is_valid(raw, timestamp, signature)):
        raise Forbidden("the request does not carry a valid, fresh Slack signature")
    try:
        payload = json.loads((parse_qs(raw).get("payload") or ["{}"])[0])
        action = payload["actions"][0]
        user_id, verdict, grant_id = payload["user"]["id"], action["action_id"], action["value"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InvalidRequest("not a Slack block action this app understands", code="invalid_slack_payload") from None
    principal = deps.catalog.slack_principal(user_id)
    if principal is None:
        raise Forbidden(f"Slack user {user_id} is not mapped to an eks-jit approver", code="unknown_slack_user")
    if verdict not in ("approve", "deny"):
        raise InvalidRequest(f"unknown action '{verdict}'", code="invalid_slack_payload")
    logger.append_keys(grant_id=grant_id, principal=principal.arn)
    grant = approvals.decide(deps, grant_id, principal.arn, verdict, via="slack")
    return _json(200, shown(grant))


@app.exception_handler(DomainError)
def domain_error(error: DomainError) -> Response[Any]:
    status = status_of(error)
    (logger.warning if status < 500 else logger.error)("request refused", extra={"code": error.code, "status": status})
    return _json(status, body_of(error))


@app.exception_handler(idempotent.StoredAnswer)
def stored_answer(answer: idempotent.StoredAnswer) -> Response[Any]:
    return answer.response


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_media_type(_: RequestUnsupportedContentType) -> Response[Any]:
    return _json(415, ErrorBody(code="unsupported_media_type", message="send the body as application/json"))


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response[Any]:
    return _json(400, validation_body(error.errors()))


@app.not_found
def not_found(_: NotFoundError) -> Response[Any]:
    return _json(404, ErrorBody(code="route_not_found", message="no such route"))


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response[Any]:
    logger.exception("unexpected error")  # the trace goes to the log, never to the caller
    return _json(500, ErrorBody(code="internal_error", message="internal error; the request id is in the logs"))


SELF_VERIFYING = ("/v1/approval-links/", "/v1/slack/")  # form posts: the only non-JSON bodies


def _not_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON route's body in another media type (415) or not UTF-8 (400), refused before any
    parsing: powertools' parsers raise unmapped errors on both (found by the API fuzzer)."""
    if not event.get("body") or str(event.get("path", "")).startswith(SELF_VERIFYING):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if str(headers.get("content-type", "application/json")).lower().startswith("application/json"):
        try:
            raw = event["body"]
            (base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()).decode("utf-8")
            return None
        except (ValueError, UnicodeError):
            status, body = 400, ErrorBody(code="malformed_json", message="the request body is not UTF-8 JSON")
    else:
        status, body = 415, ErrorBody(code="unsupported_media_type", message="send the body as application/json")
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _not_json(event) or app.resolve(event, context)
