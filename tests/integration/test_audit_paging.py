"""The auditor's listing and the sweeper's report pass read a key range, not the whole history:
what DynamoDB examines stays the same when a year of ended grants lies outside the range, and
``/v1/audit`` answers in pages (``limit``, ``next``) that add up to the listing, in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eks_jit.emulation import lambda_dispatch
from eks_jit.server.domain.grant import GrantStatus
from eks_jit.server.logic.activity import write_due_reports
from eks_jit.server.logic.approvals import TOKEN
from tests.conftest import TABLE
from tests.history import dynamodb_reads, ended_grant, items_read, spread, write_history
from tests.support import ADMIN, ONCALL, wait_until

RESTART = {"cluster": "prod-eks", "namespace": "payments", "scope": "rollout-restart", "duration": "15m"}
DAY = timedelta(days=1)


def _day(world) -> dict[str, str]:
    start = world.clock.start.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"since": start.isoformat(), "until": (start + DAY).isoformat()}


def _the_days_grants(world) -> list[str]:
    """Today on the test clock: three ended grants of several kinds, one active, one pending."""
    start = world.clock.start.replace(hour=0, minute=0, second=0, microsecond=0)
    ended = [
        ended_grant(start + timedelta(hours=1)),
        ended_grant(start + timedelta(hours=2), status=GrantStatus.REVOKED, status_reason="done"),
        ended_grant(start + timedelta(hours=3), status=GrantStatus.FAILED, status_reason="EKS refused"),
    ]
    write_history(world.ddb, TABLE, ended)
    _, active = world.call("POST", "/v1/grants", body={**RESTART, "reason": "probe"})
    world.clock.advance(timedelta(seconds=1))
    _, pending = world.call("POST", "/v1/grants", body={**RESTART, "scope": "edit", "reason": "hotfix"})
    assert (active["status"], pending["status"]) == ("active", "pending_approval")
    # Nothing may run behind the read counts: the pending grant's workflow stores its task token.
    wait_until(lambda: world.deps.store.get_side(pending["id"], TOKEN) and not lambda_dispatch.in_flight())
    return [g.id for g in ended] + [active["id"], pending["id"]]


def _a_year_before(world, n: int) -> None:
    """``n`` expired grants spread over the year that ended two days before the test clock."""
    last = world.clock.start - 2 * DAY
    write_history(world.ddb, TABLE, [ended_grant(t) for t in spread(n, first=last - 365 * DAY, last=last)])


def _audit_everything(world, **query: str) -> tuple[list[str], int]:
    ids, pages, token = [], 0, None
    while True:
        status, page = world.call(
            "GET", "/v1/audit", query=_day(world) | query | ({"next": token} if token else {}), caller=ADMIN
        )
        assert status == 200, page
        ids += [row["grant"]["id"] for row in page["rows"]]
        pages += 1
        token = page.get("next")
        if not token:
            return ids, pages


def test_pages_of_two_add_up_to_the_whole_day_in_order(world) -> None:
    expected = _the_days_grants(world)
    whole, one_page = _audit_everything(world)
    assert (whole, one_page) == (expected, 1)
    paged, pages = _audit_everything(world, limit="2")
    assert paged == expected and pages == 3


def test_a_page_that_ends_exactly_at_the_last_row_has_no_next(world) -> None:
    expected = _the_days_grants(world)
    _, page = world.call("GET", "/v1/audit", query=_day(world) | {"limit": str(len(expected))}, caller=ADMIN)
    assert [r["grant"]["id"] for r in page["rows"]] == expected and page.get("next") is None


def test_a_grant_that_ends_between_pages_is_listed_once(world) -> None:
    expected = _the_days_grants(world)
    _, first = world.call("GET", "/v1/audit", query=_day(world) | {"limit": "4"}, caller=ADMIN)
    active_id = expected[3]
    world.call("POST", f"/v1/grants/{active_id}/revoke", body={"reason": "fixed"})
    query = _day(world) | {"limit": "4", "next": first["next"]}
    _, second = world.call("GET", "/v1/audit", query=query, caller=ADMIN)
    ids = [r["grant"]["id"] for r in first["rows"] + second["rows"]]
    assert ids == expected
    assert {r["grant"]["id"]: r["grant"]["status"] for r in first["rows"]}[active_id] == "active"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"next": "bm90LWEtdG9rZW4"}, "invalid_next_token"),  # base64 of "not-a-token"
        ({"next": "x!y"}, "invalid_request"),
        ({"limit": "0"}, "invalid_request"),
        ({"limit": "1001"}, "invalid_request"),
    ],
)
def test_a_bad_page_request_is_a_400_with_a_stable_code(world, query, code) -> None:
    status, error = world.call("GET", "/v1/audit", query=_day(world) | query, caller=ADMIN)
    assert (status, error["code"]) == (400, code)


def test_a_next_token_from_another_day_is_refused(world) -> None:
    _the_days_grants(world)
    _, first = world.call("GET", "/v1/audit", query=_day(world) | {"limit": "1"}, caller=ADMIN)
    tomorrow = {"since": _day(world)["until"], "until": (world.clock.start + 2 * DAY).isoformat()}
    status, error = world.call("GET", "/v1/audit", query=tomorrow | {"next": first["next"]}, caller=ADMIN)
    assert (status, error["code"], error["field"]) == (400, "invalid_next_token", "next")


def test_the_audit_reads_the_same_with_a_year_of_history_outside_the_range(world) -> None:
    _the_days_grants(world)
    with dynamodb_reads() as before:
        whole, _ = _audit_everything(world)
    _a_year_before(world, 300)
    with dynamodb_reads() as after:
        assert _audit_everything(world)[0] == whole
    assert items_read(after) == items_read(before), (before, after)


def test_the_sweepers_report_pass_reads_the_same_with_a_year_of_history(world) -> None:
    _the_days_grants(world)
    world.clock.advance(timedelta(hours=1))
    write_due_reports(world.deps)  # the day's ended grants get their reports once
    with dynamodb_reads() as before:
        assert write_due_reports(world.deps) == []
    _a_year_before(world, 300)
    with dynamodb_reads() as after:
        assert write_due_reports(world.deps) == []
    assert items_read(after) == items_read(before), (before, after)
    assert before["Query items"] > 0  # it does read the day's ended grants


def test_an_admin_listing_of_an_ended_status_is_the_newest_first_and_bounded(world) -> None:
    _a_year_before(world, 120)
    with dynamodb_reads() as reads:
        status, listing = world.call(
            "GET", "/v1/grants", query={"mine": "false", "status": "expired", "limit": "5"}, caller=ADMIN
        )
    assert status == 200, listing
    created = [g["created_at"] for g in listing["grants"]]
    assert len(created) == 5 and created == sorted(created, reverse=True)
    assert items_read(reads) < 120, reads


def test_my_listing_stops_reading_once_it_has_enough(world) -> None:
    _a_year_before(world, 120)
    with dynamodb_reads() as reads:
        status, listing = world.call("GET", "/v1/grants", query={"limit": "3"}, caller=ONCALL)
    assert status == 200 and len(listing["grants"]) == 3
    assert items_read(reads) < 120, reads
