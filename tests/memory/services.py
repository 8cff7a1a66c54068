"""The smaller ports in memory: Scheduler, SNS, Secrets Manager, the audit log, connections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eks_jit.server.adapters.scheduler import schedule_name
from eks_jit.server.domain.grant import Grant, GrantEvent
from eks_jit.server.logic.ports import ApprovalAsk


class MemoryScheduler:
    """One-time schedules by name, as ``EventBridgeRevocationScheduler`` leaves them: scheduling
    again replaces the time (CreateSchedule's ConflictException, then UpdateSchedule); times are
    whole seconds in UTC (``at(...)`` has no fraction); cancel answers whether one existed."""

    def __init__(self) -> None:
        self.schedules: dict[str, datetime] = {}

    def schedule(self, grant_id: str, fire_at: datetime) -> str:
        name = schedule_name(grant_id)
        self.schedules[name] = fire_at.astimezone(UTC).replace(microsecond=0)
        return name

    def cancel(self, grant_id: str) -> bool:
        return self.schedules.pop(schedule_name(grant_id), None) is not None


class RecordingNotifier:
    def __init__(self) -> None:
        self.asks: list[ApprovalAsk] = []
        self.outcomes: list[tuple[str, str]] = []

    def ask(self, ask: ApprovalAsk) -> None:
        self.asks.append(ask)

    def outcome(self, grant: Grant, event: GrantEvent) -> None:
        self.outcomes.append((grant.id, event.type))


class MemorySecrets:
    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def get(self, secret_id: str) -> dict[str, str]:
        return self.values[secret_id]


class QuietAuditLog:
    """Audit logging on, nothing logged (as on moto: the log group exists and stays empty)."""

    def events(self, cluster: str, principal: str, start: datetime, end: datetime, session: str) -> list[Any]:
        return []


class MemoryConnections:
    def connection(self, cluster: str) -> dict[str, str]:
        return {
            "cluster": cluster,
            "region": "eu-west-1",
            "endpoint": "https://example.invalid",
            "certificate_authority": "",
        }
