"""Years of grants, written straight into the table, and a count of what DynamoDB reads: for the
tests and the benchmark that hold the sweeper and the audit listing flat as history grows."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from eks_jit.server.adapters.dynamodb import event_to_item, grant_to_item
from eks_jit.server.domain.grant import Decision, Grant, GrantEvent, GrantStatus
from tests.support import ONCALL

AWS_SECONDS = "seconds in AWS calls"
AUTO = Decision(outcome="auto_approve", policy_ids=("oncall-agent-payments-auto",))


def ended_grant(created_at: datetime, *, status: GrantStatus = GrantStatus.EXPIRED, **fields: Any) -> Grant:
    """A grant that ran its 15 minutes and ended (expired by default), created at ``created_at``."""
    active = created_at + timedelta(seconds=1)
    ended = active + timedelta(minutes=15)
    return Grant(
        id=str(uuid.uuid4()),
        requester=ONCALL,
        cluster="prod-eks",
        namespaces=("payments",),
        scope="rollout-restart",
        reason="probe",
        duration=timedelta(minutes=15),
        status=status,
        version=3,
        created_at=created_at,
        decision=AUTO,
        approved_at=created_at,
        approved_by=("policy:oncall-agent-payments-auto",),
        activated_at=active,
        expires_at=ended,
        ended_at=ended,
        **fields,
    )


def write_history(ddb: Any, table: str, grants: list[Grant]) -> None:
    """Each grant and its ``expired`` event, 25 items a BatchWriteItem (fast enough for 10,000)."""
    items = []
    for grant in grants:
        items.append(grant_to_item(grant))
        assert grant.ended_at is not None
        event = GrantEvent(
            grant_id=grant.id, version=grant.version, type="expired", at=grant.ended_at, actor="scheduler"
        )
        items.append(event_to_item(event))
    for start in range(0, len(items), 25):
        batch = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while batch:
            batch = ddb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


def spread(n: int, *, first: datetime, last: datetime) -> list[datetime]:
    """``n`` creation times evenly between ``first`` and ``last``."""
    step = (last - first) / max(n - 1, 1)
    return [first + step * i for i in range(n)]


@contextmanager
def dynamodb_reads() -> Iterator[Counter[str]]:
    """Counts, per DynamoDB read operation, the calls and the items DynamoDB examined
    (``ScannedCount`` for Query and Scan, items returned for GetItem and BatchGetItem): the
    figure read capacity is paid on. Counted at botocore's API-call boundary, for every client;
    ``AWS_SECONDS`` is the time spent inside AWS calls (all services), to tell eks-jit's own
    time from the emulator's."""
    import botocore.client

    counts: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        response = original(client, operation, params)
        counts[AWS_SECONDS] += time.perf_counter() - started  # type: ignore[assignment]
        if client.meta.service_model.service_name == "dynamodb":
            if operation in ("Query", "Scan"):
                counts[f"{operation} items"] += int(response.get("ScannedCount", 0))
            elif operation == "GetItem":
                counts["GetItem items"] += 1 if response.get("Item") else 0
            elif operation == "BatchGetItem":
                counts["BatchGetItem items"] += sum(len(v) for v in response.get("Responses", {}).values())
            counts[operation] += 1
        return response

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def items_read(counts: Counter[str]) -> int:
    return sum(v for k, v in counts.items() if k.endswith(" items"))
