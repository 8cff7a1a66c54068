"""Local mode's scheduler keeps firing after a schedule is cancelled under it: an early revoke
deletes its schedule between the tick's listing and its read, which used to raise in the loop's
thread, end it, and leave every later grant to the sweeper (seconds of extra access)."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from eks_jit.local.scheduler import LocalScheduler


class Recorder:
    def __init__(self) -> None:
        self.invoked: list[dict[str, str]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> None:
        self.invoked.append(json.loads(Payload))


@pytest.mark.thread_timeout  # the loop ticks on Event.wait timeouts, which libfaketime never lets expire
def test_a_schedule_cancelled_mid_tick_does_not_stop_the_next_ones() -> None:
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name="us-east-1")
        scheduler.create_schedule_group(Name="g")

        def schedule(name: str) -> None:
            scheduler.create_schedule(
                Name=name, GroupName="g", ScheduleExpression="at(2020-01-01T00:00:00)",
                FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
                Target={"Arn": "arn:aws:lambda:us-east-1:123456789012:function:revoke",
                        "RoleArn": "arn:aws:iam::123456789012:role/s", "Input": json.dumps({"grant_id": name})},
            )  # fmt: skip

        schedule("cancelled")
        real_get = scheduler.get_schedule

        def get_after_cancel(**kwargs: str) -> dict[str, object]:
            if kwargs["Name"] == "cancelled":
                scheduler.delete_schedule(Name="cancelled", GroupName="g")  # the early revoke wins the race
                schedule("due")  # and another grant's revocation is due by the next tick
            return real_get(**kwargs)

        scheduler.get_schedule = get_after_cancel  # type: ignore[method-assign]
        lam = Recorder()
        loop = LocalScheduler(scheduler, lam, "g", "sweeper", tick=0.01, sweep_every=3600)
        loop.start()
        try:
            deadline = time.monotonic() + 10
            while not lam.invoked and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            loop.stop()
        assert lam.invoked == [{"grant_id": "due"}]
