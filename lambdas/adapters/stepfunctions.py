"""The approval workflow on Step Functions: start one execution per grant (named by its id,
so a retried start is harmless) and resume a waiting execution with the decision."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..domain.errors import AccessApplyError
from ..domain.grant import Grant
from .aws import error_code, transient_errors

GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class StepFunctionsWorkflow:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def start(self, grant: Grant) -> None:
        if not self._arn:
            raise AccessApplyError("this function is not configured to start approval workflows")
        timeout = grant.decision.approval_timeout
        payload = {"grant_id": grant.id, "approval_timeout_seconds": int(timeout.total_seconds()) if timeout else 3600}
        try:
            with transient_errors(f"start approval of {grant.id}"):
                self._sfn.start_execution(stateMachineArn=self._arn, name=grant.id, input=json.dumps(payload))
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise AccessApplyError(f"starting the approval workflow: {error_code(exc)}") from exc

    def resume(self, token: str, outcome: str) -> bool:
        try:
            with transient_errors("resume approval workflow"):
                self._sfn.send_task_success(taskToken=token, output=json.dumps({"outcome": outcome}))
        except ClientError as exc:
            if error_code(exc) in GONE:
                return False
            raise AccessApplyError(f"resuming the approval workflow: {error_code(exc)}") from exc
        return True
