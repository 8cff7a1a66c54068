"""A recorded Command keeps its bounds whoever made it (so one always fits one DynamoDB item), its
time in UTC (so keys sort as arrival), and its JSON round-trips."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from eks_jit.server.domain.recording import (
    BOUNDS,
    MAX_BODY_CHARS,
    MAX_PATH_CHARS,
    MAX_RECORD_CHARS,
    Command,
    CommandOutcome,
    command_key,
    parse_command_key,
    summarize,
)
from tests.support import ONCALL, FakeClock

START = FakeClock().start


def command(**changes: object) -> Command:
    fields: dict[str, object] = {
        "grant_id": "g1", "at": START, "request_id": "r1", "principal": ONCALL, "session": None, "verb": "get",
        "path": "/api/v1/namespaces/payments/pods", "query": "limit=500", "outcome": CommandOutcome.ALLOWED,
        "status": 200,
    }  # fmt: skip
    return Command(**(fields | changes))  # type: ignore[arg-type]


def test_a_command_within_its_bounds_is_kept_as_given() -> None:
    plain = command(body="{}", reason="", summary="PodList: 3 items")
    assert (plain.path, plain.body, plain.truncated, plain.body_truncated) == (
        "/api/v1/namespaces/payments/pods", "{}", False, False)  # fmt: skip


@pytest.mark.parametrize("field", sorted(set(BOUNDS) - {"body"}))
def test_a_field_over_its_bound_is_cut_and_marked(field: str) -> None:
    made = command(**{field: "x" * (BOUNDS[field] + 1)})
    assert getattr(made, field) == "x" * BOUNDS[field] and made.truncated and not made.body_truncated


def test_a_body_over_its_bound_is_cut_and_marked_as_bounded_body_does() -> None:
    made = command(body="é" * (MAX_BODY_CHARS + 10))
    assert made.body == "é" * MAX_BODY_CHARS and made.body_truncated and not made.truncated


def test_the_bounds_add_up_to_a_record_far_under_an_item() -> None:
    assert sum(BOUNDS.values()) == MAX_RECORD_CHARS and 4 * MAX_RECORD_CHARS < 100 * 1024
    assert BOUNDS["path"] == MAX_PATH_CHARS


def test_times_are_kept_in_utc_so_keys_sort_as_arrival() -> None:
    east = timezone(timedelta(hours=2))
    earlier = command(at=(START + timedelta(hours=1)).astimezone(east), request_id="a")  # 12:00 +02:00
    later = command(at=START + timedelta(hours=1, microseconds=1), request_id="b")
    assert earlier.at.utcoffset() == timedelta(0) and earlier.key < later.key
    naive = command(at=START.replace(tzinfo=None))
    assert naive.at == START


def test_json_round_trips_and_ignores_what_a_newer_writer_added() -> None:
    made = command(session="incident-4711", body='{"a":1}', reason="no grant covers it",
                   outcome=CommandOutcome.REFUSED, status=403, duration_ms=7)  # fmt: skip
    assert Command.from_json(made.to_json()) == made
    assert Command.from_json(made.to_json() | {"from_the_future": 1}) == made


def test_a_key_parses_back_into_its_time_and_request_id() -> None:
    made = command(request_id="abc#def")
    assert parse_command_key(made.key) == (START, "abc#def")
    assert command_key(*parse_command_key(made.key)) == made.key
    for bad in ("", "not-a-time#x", f"{START.isoformat()}#", START.replace(tzinfo=None).isoformat() + "#x"):
        with pytest.raises(ValueError):
            parse_command_key(bad)


@pytest.mark.parametrize(
    ("answer", "summary"),
    [
        ({"kind": "Status", "status": "Failure", "reason": "NotFound"}, "Status Failure: NotFound"),
        ({"kind": "Status", "status": "Success"}, "Status Success"),  # a delete's answer: no reason
        ({"kind": "PodList", "items": [{}, {}, {}]}, "PodList: 3 items"),
        ({"kind": "Deployment", "metadata": {"name": "payments-api"}}, "Deployment payments-api"),
        ("not an object", ""),
    ],
)
def test_an_answer_is_summarized_by_its_kind(answer: object, summary: str) -> None:
    assert summarize(200, answer) == summary
