"""History growth: the sweeper's minute and one day's audit listing, with 10 and with 10,000
ended grants from the past year in the table (plus the same handful from today in both runs).

Read cost is what DynamoDB examines (items counted at botocore's boundary, tests/history.py):
flat means the 10,000-grant run reads exactly what the 10-grant run reads. Time is eks-jit's
own time, outside AWS calls, as a ratio of the two runs in one process (<= 1.5x). The time
inside the calls is printed but not held to a target: moto answers a Query by walking every item
of the partition in Python, so its time grows with the table where DynamoDB's, which reads the
key range from a sorted index, follows the items read."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

SIZES = (10, 10_000)
TIME_RATIO = 1.5
ROUNDS = 3


def run(history: int) -> dict[str, Any]:
    from moto import mock_aws

    from eks_jit.local.resources import create_resources
    from eks_jit.server.config import load_config
    from eks_jit.server.domain.grant import GrantStatus
    from eks_jit.server.logic.activity import audit
    from eks_jit.server.logic.sweeper import sweep
    from tests.conftest import GROUP, MOTO_CONFIG, TABLE, make_deps
    from tests.history import AWS_SECONDS, dynamodb_reads, ended_grant, items_read, spread, write_history
    from tests.support import ADMIN, EXAMPLE_CONFIG, FakeClock

    with mock_aws(config=MOTO_CONFIG):
        resources = create_resources(
            load_config(EXAMPLE_CONFIG)[0], region="eu-west-1", table=TABLE, schedule_group=GROUP
        )
        clock = FakeClock()
        deps = make_deps(resources, clock)
        ddb = deps.store._ddb  # type: ignore[attr-defined]
        today = clock.start.replace(hour=0, minute=0, second=0, microsecond=0)
        recent = [ended_grant(today + timedelta(hours=h), status=GrantStatus.REVOKED) for h in range(1, 6)]
        old_end = today - timedelta(days=2)
        old = [ended_grant(t) for t in spread(history, first=old_end - timedelta(days=365), last=old_end)]
        write_history(ddb, TABLE, recent + old)
        clock.advance(timedelta(hours=1))
        sweep(deps)  # today's grants get their activity reports once; every later minute is steady state
        figures: dict[str, Any] = {}
        for key, call in (
            ("sweep", lambda: sweep(deps)),
            ("audit", lambda: audit(deps, ADMIN, today, today + timedelta(days=1))),
        ):
            with dynamodb_reads() as reads:
                started = time.perf_counter()
                for _ in range(ROUNDS):
                    answer = call()
                total = time.perf_counter() - started
            figures[f"{key}_own_s"] = (total - reads[AWS_SECONDS]) / ROUNDS
            figures[f"{key}_aws_s"] = reads[AWS_SECONDS] / ROUNDS
            figures[f"{key}_items"] = items_read(reads) // ROUNDS
        assert len(answer.rows) == len(recent) and answer.next is None
    return figures


def measure() -> list[dict[str, object]]:
    small, large = (run(n) for n in SIZES)
    rows = []
    for what, key in (("sweeper minute", "sweep"), ("audit of one day", "audit")):
        ratio = large[f"{key}_own_s"] / small[f"{key}_own_s"]
        reads_small, reads_large = small[f"{key}_items"], large[f"{key}_items"]
        moto = large[f"{key}_aws_s"] / small[f"{key}_aws_s"]
        rows.append(
            {
                "figure": f"history: {what}, {SIZES[1]:,} vs {SIZES[0]} ended grants",
                "value": f"items read {reads_large} vs {reads_small}, own time {ratio:.2f}x (moto {moto:.0f}x)",
                "target": f"equal reads, <= {TIME_RATIO}x",
                "pass": ratio <= TIME_RATIO and reads_large == reads_small,
            }
        )
    return rows


if __name__ == "__main__":
    for row in measure():
        print(row)
