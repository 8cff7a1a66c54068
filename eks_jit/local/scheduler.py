"""Local stand-ins for EventBridge Scheduler and the sweeper's rate rule.

moto stores one-time schedules but fires nothing. This loop reads the schedule group through
the ordinary Scheduler API, and when an ``at(...)`` time has come it invokes the target
function through the ordinary Lambda API (so the real revoke handler runs) and deletes the
schedule (``ActionAfterCompletion: DELETE``). It fires on the second: precision is better
than on AWS, and the revoke path's own wait makes the end time the same.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


def due_time(expression: str) -> datetime:
    return datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


class LocalScheduler:
    def __init__(
        self,
        scheduler: Any,
        lam: Any,
        group: str,
        sweeper_function: str,
        *,
        tick: float = 0.1,
        sweep_every: float = 10.0,
    ) -> None:
        self._scheduler = scheduler
        self._lambda = lam
        self._group = group
        self._sweeper = sweeper_function
        self._tick = tick
        self._sweep_every = sweep_every
        self._stop = threading.Event()
        self._fired: set[str] = set()

    def start(self) -> None:
        threading.Thread(target=self._schedules, name="eks-jit-scheduler", daemon=True).start()
        threading.Thread(target=self._sweeps, name="eks-jit-sweeper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _schedules(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self._fire_due()
            except Exception:  # one bad tick must not stop every later revocation
                log.exception("local scheduler tick failed; trying again next tick")

    def _fire_due(self) -> None:
        now = datetime.now(UTC)
        for item in self._scheduler.list_schedules(GroupName=self._group)["Schedules"]:
            try:
                schedule = self._scheduler.get_schedule(Name=item["Name"], GroupName=self._group)
            except self._scheduler.exceptions.ResourceNotFoundException:
                continue  # cancelled (an early revoke) between the listing and now
            key = f"{schedule['Name']}@{schedule['ScheduleExpression']}"
            if key in self._fired or due_time(schedule["ScheduleExpression"]) > now:
                continue
            self._fired.add(key)
            if schedule.get("ActionAfterCompletion") == "DELETE":  # before the target may set a new one
                self._scheduler.delete_schedule(Name=schedule["Name"], GroupName=self._group)
            target = schedule["Target"]
            self._lambda.invoke(FunctionName=target["Arn"], InvocationType="Event", Payload=target["Input"].encode())

    def _sweeps(self) -> None:
        while not self._stop.wait(self._sweep_every):
            try:
                self._lambda.invoke(FunctionName=self._sweeper, InvocationType="RequestResponse", Payload=b"{}")
            except Exception:
                log.exception("local sweeper run failed; trying again next period")
