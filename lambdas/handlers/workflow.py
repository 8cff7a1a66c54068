"""The approval workflow's Lambda steps: ``await`` (the waitForTaskToken step: keep the task
token, record who was notified), ``activate``, ``expire_request``, ``fail``. Typed errors
propagate so the state machine's Retry/Catch match on their class names."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from .. import bootstrap
from ..logic.approvals import Notified, workflow_step
from ..observability import logger


class StepEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["await", "activate", "expire_request", "fail"]
    grant_id: str
    cause: str = ""
    task_token: str = ""  # await only; never logged
    notified: Notified = Notified()  # await only: what the notify step answered


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StepEvent.model_validate(event)
    logger.append_keys(grant_id=request.grant_id, step=request.step)
    # activation re-derives the decision (logic/justification.py): this function needs the policies
    grant = workflow_step(
        bootstrap.deps(),
        request.step,
        request.grant_id,
        request.cause,
        task_token=request.task_token,
        notified=request.notified,
    )
    logger.info("workflow step done", extra={"status": grant.status.value})
    return {"grant_id": grant.id, "status": grant.status.value, "status_reason": grant.status_reason}
