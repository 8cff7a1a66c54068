"""Workflow step ``NotifyApprovers``: tells the approvers and answers who was told. It writes
no grant item (its role may not); the next step, ``WaitForDecision`` (the workflow function),
records that and keeps the task token."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from .. import bootstrap
from ..logic.approvals import notify
from ..observability import logger


class NotifyEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    grant_id: str


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = NotifyEvent.model_validate(event)
    logger.append_keys(grant_id=request.grant_id)
    notified = notify(bootstrap.deps(policies=False), request.grant_id)
    return {"grant_id": request.grant_id, **asdict(notified)}
