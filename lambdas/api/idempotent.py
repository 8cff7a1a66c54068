"""``Idempotency-Key`` on ``POST /v1/grants`` and ``POST /v1/grants/{id}/extend``.

The first answer to a (caller, key) is kept for 24 hours (``Timing.idempotency_window``); a retry
with the same key and the same request gets it again, status and body, with
``Idempotent-Replayed: true``, and nothing is done twice. The same key with another request is
409 ``idempotency_key_reused`` and changes nothing; while the first is still being answered,
409 ``idempotency_key_in_progress`` (retry with the same key). Keys are per caller (the
principal ARN): another caller's key is just another key.

A policy denial records a denied grant, so it is an answer to keep, not an error to forget: it
is kept and given again like a grant. Errors that record nothing (bad input, a refusal, an AWS
outage) are not kept: the key stays free, and a retry runs the request again.

The grant a keyed request records gets an id derived from the caller, the key and the request,
so an attempt cut short after it wrote the grant (a crash, a timeout, an answer that never
arrived) is finished by its retry under the same id (``logic.requesting.resume``): one grant,
however the first attempt ended.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import BaseModel

from ..domain.errors import PolicyDenied
from ..logic.ports import Deps
from ..observability import MetricUnit, logger, metrics
from .errors import IDEMPOTENCY_KEY_RULE, body_of, status_of

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"  # printable ASCII, no space at either end
IN_FLIGHT = timedelta(seconds=30)  # without a Lambda context: the api function's timeout is 29 s
NAMESPACE = uuid.UUID("5d0b8f39-6a43-4f7e-9a51-3f6c2d1e8b70")  # of the grant ids derived from keys

KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        pattern=PATTERN,
        description=(
            f"Makes the request safe to retry: {IDEMPOTENCY_KEY_RULE}, e.g. a UUID, new for each new "
            "request. For 24 hours the same key and the same body from the same caller get the first "
            f"answer again (status and body, with `{REPLAYED}: true`) and change nothing; the same key with "
            "another body is 409 `idempotency_key_reused`; while the first is still being answered, 409 "
            "`idempotency_key_in_progress` (retry with the same key). A malformed key is 400 "
            "`invalid_idempotency_key`. Keys are per caller: another principal's key is just another key."
        ),
    ),
]


class StoredAnswer(Exception):
    """A kept answer that is not a success (a policy denial): given as it was, past the route's
    response model (which describes the success). The resolver's handler returns ``response``."""

    def __init__(self, response: Response[Any]) -> None:
        super().__init__(response.status_code)
        self.response = response


def respond(
    deps: Deps,
    *,
    caller: str,
    key: str | None,
    operation: str,
    request: BaseModel,
    run: Callable[[str | None], tuple[int, BaseModel]],
    context: Any = None,
) -> Response[Any]:
    """Answer ``run(grant_id)``, at most once per (caller, key) when a key is given.

    ``run`` gets the id to record the grant under (None without a key) and returns the status
    and body of a success; it raises for anything else. ``operation`` and ``request`` (the
    validated body) are what "the same request" compares; ``context`` is the Lambda context,
    whose remaining time bounds how long the first attempt counts as in flight."""
    if key is None:  # as before keys existed
        status, body = run(None)
        return _json(status, body)
    assert deps.idempotency is not None, "the api function is built with its idempotency records"
    same = {"operation": operation, "body": request.model_dump(mode="json")}
    grant_id = derived_id(caller, key, same)

    def first_answer() -> dict[str, Any]:
        try:
            status, body = run(grant_id)
        except PolicyDenied as denied:  # recorded (a denied grant): kept, so a retry records no second
            logger.warning("request refused", extra={"code": denied.code, "status": status_of(denied)})
            status, body = status_of(denied), body_of(denied)
        return {"status": status, "body": body.model_dump(mode="json")}

    answer, replayed = deps.idempotency.once(caller, key, same, first_answer, in_flight=_in_flight(context))
    if replayed:  # an agent retried: how often, and why, says whether answers are getting lost
        logger.info("idempotent replay", extra={"status": answer["status"]})
        metrics.add_metric(name="IdempotentReplay", unit=MetricUnit.Count, value=1)
    response = _json(int(answer["status"]), answer["body"], {REPLAYED: "true"} if replayed else None)
    if response.status_code >= 300:
        raise StoredAnswer(response)
    return response


def derived_id(caller: str, key: str, request: dict[str, Any]) -> str:
    """The grant id of a keyed request: the same caller, key and request give the same id, so a
    retry finds what an earlier attempt recorded; another caller or request never meets it."""
    return str(uuid.uuid5(NAMESPACE, json.dumps([caller, key, request], sort_keys=True, separators=(",", ":"))))


def _in_flight(context: Any) -> timedelta:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return timedelta(milliseconds=remaining()) if callable(remaining) else IN_FLIGHT


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)
