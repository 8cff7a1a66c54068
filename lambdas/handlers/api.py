"""The HTTP API (API Gateway REST, AWS_IAM auth): thin routes over the logic functions.

The caller is who API Gateway says signed the request (``requestContext.identity.userArn``),
normalised from an assumed-role session to its role ARN.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas import bootstrap
from lambdas.api.errors import body_of, status_of, validation_body
from lambdas.api.models import ErrorBody, EventView, GrantDetail, GrantList, GrantRequest, GrantView, RevokeRequest
from lambdas.domain.durations import DurationFormatError, parse_duration
from lambdas.domain.errors import DomainError, Forbidden, InvalidRequest
from lambdas.domain.grant import GrantStatus
from lambdas.domain.identity import NotAPrincipal, normalise_principal, registry_key
from lambdas.logic.queries import get_grant, list_grants, revoke_grant
from lambdas.logic.requesting import AccessRequest, request_grant
from lambdas.observability import MetricUnit, logger, metrics

app = APIGatewayRestResolver(enable_validation=True)
GrantId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="grant id")]
ERRORS: dict[int, Any] = {
    code: {"description": text, "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}
    for code, text in (
        (400, "bad input: nothing was changed"),
        (403, "not allowed (policy, ownership or identity)"),
        (404, "no such grant"),
        (409, "the grant's state does not allow this, or another writer came first"),
    )
}


def _json(status: int, body: BaseModel) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump(mode="json"))


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


@app.post("/v1/grants", responses={201: {"description": "the grant: active if auto-approved"}, **ERRORS})
def create_grant(body: Annotated[GrantRequest, Body()]) -> Response[GrantView]:
    try:
        duration = parse_duration(body.duration)
    except DurationFormatError as exc:
        raise InvalidRequest(str(exc), code="invalid_duration", field="duration") from exc
    logger.append_keys(cluster=body.cluster, scope=body.scope)
    grant = request_grant(
        bootstrap.deps(),
        AccessRequest(
            requester=caller(),
            cluster=body.cluster,
            namespace=body.namespace,
            scope=body.scope,
            duration=duration,
            reason=body.reason,
        ),
    )
    logger.append_keys(grant_id=grant.id)
    metrics.add_metric(name="GrantRequested", unit=MetricUnit.Count, value=1)
    logger.info("grant requested", extra={"status": grant.status.value})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=GrantView.of(grant))


@app.get("/v1/grants", responses=ERRORS)
def list_my_grants(
    status: Annotated[GrantStatus | None, Query()] = None,
    mine: Annotated[bool, Query()] = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> GrantList:
    grants = list_grants(bootstrap.deps(), caller(), status=status, mine=mine, limit=limit)
    return GrantList(grants=[GrantView.of(g) for g in grants])


@app.get("/v1/grants/<grant_id>", responses=ERRORS)
def describe_grant(grant_id: GrantId) -> GrantDetail:
    grant, events = get_grant(bootstrap.deps(), caller(), grant_id)
    return GrantDetail(**GrantView.of(grant).model_dump(), events=[EventView.of(e) for e in events])


@app.post("/v1/grants/<grant_id>/revoke", responses=ERRORS)
def revoke(grant_id: GrantId, body: Annotated[RevokeRequest | None, Body()] = None) -> GrantView:
    logger.append_keys(grant_id=grant_id)
    grant = revoke_grant(bootstrap.deps(), caller(), grant_id, body.reason if body else "")
    metrics.add_metric(name="GrantRevoked", unit=MetricUnit.Count, value=1)
    return GrantView.of(grant)


@app.exception_handler(DomainError)
def domain_error(error: DomainError) -> Response[Any]:
    status = status_of(error)
    (logger.warning if status < 500 else logger.error)("request refused", extra={"code": error.code, "status": status})
    return _json(status, body_of(error))


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


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
