"""One contract, two session logs: ``DynamoSessionLog`` on moto's DynamoDB (the grant table as
``create_table_kwargs`` makes it) and ``tests/memory/session_log.MemorySessionLog``, through the
``SessionLog`` port only. Records are never rewritten, come back exactly as recorded and in
arrival order, page by page; counts agree; one grant's log never shows another's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from eks_jit.server.adapters.session_log import MAX_ITEM_BYTES, DynamoSessionLog, command_to_item, item_size
from eks_jit.server.adapters.table import create_table_kwargs
from eks_jit.server.domain.errors import Conflict
from eks_jit.server.domain.recording import BOUNDS, MAX_BODY_CHARS, Command, CommandOutcome
from eks_jit.server.logic.ports import SessionLog
from tests.memory.session_log import MemorySessionLog
from tests.support import ONCALL, REGION, FakeClock

TABLE = "eks-jit-grants"
G1, G2 = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


@pytest.fixture(scope="module")
def ddb() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        yield client


@pytest.fixture(params=["moto", "memory"])
def log(request: pytest.FixtureRequest) -> Iterator[SessionLog]:
    if request.param == "memory":
        yield MemorySessionLog()
        return
    client = request.getfixturevalue("ddb")
    client.create_table(**create_table_kwargs(TABLE))  # type: ignore[attr-defined]
    yield DynamoSessionLog(client, TABLE)
    client.delete_table(TableName=TABLE)  # type: ignore[attr-defined]


clock = FakeClock()


def command(n: int, grant_id: str = G1, **changes: object) -> Command:
    fields: dict[str, object] = {
        "grant_id": grant_id,
        "at": clock.start + timedelta(milliseconds=250 * n),
        "request_id": f"req-{n:04d}",
        "principal": ONCALL,
        "session": None,
        "verb": "get",
        "path": "/apis/apps/v1/namespaces/payments/deployments/payments-api",
        "query": "",
        "outcome": CommandOutcome.ALLOWED,
        "status": 200,
        "summary": "Deployment payments-api",
        "duration_ms": 12,
    }
    return Command(**(fields | changes))  # type: ignore[arg-type]


def everything(log: SessionLog, grant_id: str = G1, page: int = 1000) -> tuple[list[Command], int]:
    found: list[Command] = []
    after, pages = None, 0
    while True:
        commands, after = log.commands(grant_id, limit=page, after=after)
        found += commands
        pages += 1
        if after is None:
            return found, pages


def test_a_command_comes_back_exactly_as_recorded(log: SessionLog) -> None:
    write = command(
        1,
        verb="patch",
        session="incident-4711",
        query="fieldManager=kubectl-rollout",
        body='{"spec":{"template":{"metadata":{"annotations":{"x":"é ✓"}}}}}',
        summary="Deployment payments-api",
    )
    refused = command(
        2,
        path="/api/v1/namespaces/payments/secrets",
        outcome=CommandOutcome.REFUSED,
        status=403,
        reason='secrets "payments-db" is forbidden: no grant covers it',
        summary="",
    )
    log.record(write)
    log.record(refused)
    assert log.commands(G1) == ([write, refused], None)
    assert log.count(G1) == 2


def test_the_same_key_again_is_a_conflict_and_changes_nothing(log: SessionLog) -> None:
    first = command(1)
    log.record(first)
    with pytest.raises(Conflict):
        log.record(command(1, status=500, summary="rewritten"))
    assert log.commands(G1) == ([first], None)
    assert log.count(G1) == 1


def test_commands_are_in_arrival_order_whatever_the_order_they_were_stored_in(log: SessionLog) -> None:
    made = [command(n) for n in range(6)]
    for one in (made[3], made[0], made[5], made[1], made[4], made[2]):
        log.record(one)
    assert log.commands(G1)[0] == made
    # two requests in the same microsecond: both kept, ordered by request id
    same = command(9, request_id="b"), command(9, request_id="a")
    for one in same:
        log.record(one)
    assert log.commands(G1)[0][-2:] == [same[1], same[0]]


def test_pages_add_up_to_the_whole_log_and_the_last_page_has_no_next(log: SessionLog) -> None:
    made = [command(n) for n in range(7)]
    for one in made:
        log.record(one)
    assert everything(log, page=2) == (made, 4)
    assert everything(log, page=7) == (made, 1)  # a page that ends exactly at the last command
    first, after = log.commands(G1, limit=3)
    assert first == made[:3] and after == made[2].key
    assert log.commands(G1, limit=3, after=after) == (made[3:6], made[5].key)
    assert log.commands(G1, limit=3, after=made[5].key) == ([made[6]], None)
    assert log.commands(G1, limit=3, after=made[6].key) == ([], None)


def test_each_grant_has_its_own_log(log: SessionLog) -> None:
    mine, theirs = command(1), command(1, grant_id=G2)  # the same key under two grants
    log.record(mine)
    log.record(theirs)
    assert log.commands(G1) == ([mine], None) and log.commands(G2) == ([theirs], None)
    assert (log.count(G1), log.count(G2)) == (1, 1)


def test_a_grant_with_no_command_has_an_empty_log(log: SessionLog) -> None:
    assert log.commands(G1) == ([], None)
    assert log.count(G1) == 0
    assert log.outcomes(G1) == {}


def test_outcomes_count_each_outcome_of_the_grant_s_commands_only(log: SessionLog) -> None:
    """The audit's ``blocked`` and ``held`` columns: per outcome, this grant's, those it has none of left out."""
    made = [
        command(0),
        command(1, outcome=CommandOutcome.BLOCKED, status=403, reason="eks-jit guardrail no-exec blocks it"),
        command(2, outcome=CommandOutcome.HELD, status=403, reason="approval required: eks-jit approve x"),
        command(3, outcome=CommandOutcome.HELD, status=403, reason="approval required: eks-jit approve x"),
        command(4, outcome=CommandOutcome.APPROVED, reason="held command approved: eks-jit grant x (used)"),
        command(5),
        command(6, grant_id=G2, outcome=CommandOutcome.BLOCKED, status=403),
    ]
    for one in made:
        log.record(one)
    assert log.outcomes(G1) == {
        CommandOutcome.ALLOWED: 2,
        CommandOutcome.BLOCKED: 1,
        CommandOutcome.HELD: 2,
        CommandOutcome.APPROVED: 1,
    }
    assert log.outcomes(G2) == {CommandOutcome.BLOCKED: 1}
    assert sum(log.outcomes(G1).values()) == log.count(G1) == 6


def test_the_largest_command_fits_one_item_and_a_log_larger_than_a_query_page_reads_whole(log: SessionLog) -> None:
    """Every field at its bound in 4-byte characters (the worst UTF-8 case); 80 of them are over
    1 MB, more than one DynamoDB Query page: reading and counting follow the pages."""
    widest = "\U0001f600"
    biggest = [
        command(n, **{f: widest * b for f, b in BOUNDS.items() if f not in ("grant_id", "request_id")})
        for n in range(80)
    ]
    assert MAX_ITEM_BYTES > item_size(command_to_item(biggest[0])) > 4 * sum(BOUNDS.values()) - 4 * 200
    for one in biggest:
        log.record(one)
    assert everything(log) == (biggest, 1)
    assert log.count(G1) == 80
    assert log.outcomes(G1) == {CommandOutcome.ALLOWED: 80}
    assert biggest[0].body is not None and len(biggest[0].body) == MAX_BODY_CHARS and not biggest[0].truncated
