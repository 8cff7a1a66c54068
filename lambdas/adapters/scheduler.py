"""EventBridge Scheduler: one one-time schedule per active grant, the revocation alarm clock.

Named after the grant (``eks-jit-<grant id>``), flexible window off, deleted by Scheduler
after it ran. The target is the revoke function with ``{"grant_id": ...}``; delivery is
at-least-once, so the target is idempotent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ..domain.errors import SchedulingFailed
from .aws import error_code, transient_errors


def schedule_name(grant_id: str) -> str:
    return f"eks-jit-{grant_id}"


def at_expression(when: datetime) -> str:
    """Scheduler's one-time expression, in UTC: ``at(2026-11-23T10:15:00)``."""
    return f"at({when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


class EventBridgeRevocationScheduler:
    def __init__(
        self, scheduler: Any, *, group: str, target_arn: str, role_arn: str, dlq_arn: str | None = None
    ) -> None:
        self._scheduler = scheduler
        self._group = group
        self._target: dict[str, Any] = {"Arn": target_arn, "RoleArn": role_arn}
        if dlq_arn:
            self._target["DeadLetterConfig"] = {"Arn": dlq_arn}

    def schedule(self, grant_id: str, fire_at: datetime) -> str:
        name = schedule_name(grant_id)
        request = {
            "Name": name,
            "GroupName": self._group,
            "ScheduleExpression": at_expression(fire_at),
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {**self._target, "Input": json.dumps({"grant_id": grant_id})},
            "Description": f"revoke eks-jit grant {grant_id}",
        }
        try:
            with transient_errors(f"schedule revocation of {grant_id}"):
                try:
                    self._scheduler.create_schedule(**request)
                except ClientError as exc:
                    if error_code(exc) != "ConflictException":
                        raise
                    self._scheduler.update_schedule(**request)  # a retried activation: same name, new time
        except ClientError as exc:
            raise SchedulingFailed(f"scheduling the revocation of {grant_id}: {error_code(exc)}") from exc
        return name

    def cancel(self, grant_id: str) -> bool:
        try:
            with transient_errors(f"cancel revocation of {grant_id}"):
                self._scheduler.delete_schedule(Name=schedule_name(grant_id), GroupName=self._group)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise SchedulingFailed(f"deleting the revocation schedule of {grant_id}: {error_code(exc)}") from exc
        return True
