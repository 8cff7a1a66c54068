"""The HTTP edge of the domain errors: one table from error class to status code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..domain import approvals, links
from ..domain import errors as e
from .models import ErrorBody

STATUS: dict[type[e.DomainError], int] = {
    approvals.NotAllowedToDecide: 403,
    approvals.AlreadyVoted: 409,
    e.NotificationFailed: 502,
    links.LinkAlreadyUsed: 410,
    e.InvalidRequest: 400,
    e.PolicyDenied: 403,
    e.Forbidden: 403,
    e.GrantNotFound: 404,
    e.InvalidTransition: 409,
    e.Conflict: 409,
    e.IdempotencyKeyReused: 409,
    e.IdempotencyInProgress: 409,
    e.Busy: 503,
    e.TransientAwsError: 503,
    e.UnmanagedAccessEntry: 409,
    e.AccessApplyError: 502,
    e.SchedulingFailed: 502,
}


def status_of(error: e.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def body_of(error: e.DomainError) -> ErrorBody:
    grant_id = error.details.get("grant_id")
    return ErrorBody(
        code=error.code, message=error.message, field=error.field, grant_id=str(grant_id) if grant_id else None
    )


IDEMPOTENCY_KEY_RULE = "1 to 255 printable ASCII characters, no leading or trailing space, sent once"


def validation_body(errors: Sequence[Any]) -> ErrorBody:
    """Pydantic/powertools validation errors as one ErrorBody naming the first bad field."""
    first = errors[0] if errors else {}
    if [str(p).lower() for p in first.get("loc", ())][:2] == ["header", "idempotency-key"]:
        return ErrorBody(
            code="invalid_idempotency_key",
            message=f"the Idempotency-Key header must be {IDEMPOTENCY_KEY_RULE}",
            field="Idempotency-Key",
        )
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    if first.get("type") == "json_invalid":
        return ErrorBody(code="malformed_json", message="the request body is not valid JSON")
    field = ".".join(loc) or None
    message = str(first.get("msg", "invalid request"))
    if first.get("type") == "missing":
        message = f"'{field}' is required"
    elif first.get("type") == "extra_forbidden":
        message = f"'{field}' is not a known field"
    elif first.get("type") == "value_error":  # our validators' own words, without pydantic's prefix
        message = message.removeprefix("Value error, ")
    # a request's context (what approvers read) has its own code, so an agent knows which part to fix
    code = {"context": "invalid_context", "session": "invalid_session"}.get(loc[0] if loc else "", "invalid_request")
    if code == "invalid_session" and first.get("type") == "string_pattern_mismatch":
        message = "an STS role session name: 2 to 64 characters of A-Z a-z 0-9 and _+=,.@-"
    return ErrorBody(code=code, message=message, field=field)
