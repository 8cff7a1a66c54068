"""Workflow step ``NotifyApproversAndWait`` (lambda:invoke.waitForTaskToken): keeps the task
token with the grant and tells the approvers. The execution waits until a decision resumes it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from lambdas import bootstrap
from lambdas.logic.approvals import notify
from lambdas.observability import logger


class NotifyEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    grant_id: str
    task_token: str


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = NotifyEvent.model_validate(event)
    logger.append_keys(grant_id=request.grant_id)  # never the task token
    grant = notify(bootstrap.deps(policies=False), request.grant_id, request.task_token)
    return {"grant_id": grant.id, "status": grant.status.value}
