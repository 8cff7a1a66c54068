"""Bad input gets a clear 4xx with a stable code and changes nothing: not the table, not the
cluster, not the schedules."""

from __future__ import annotations

import pytest

from tests.support import ALICE, ONCALL, ONCALL_SESSION, OTHER_AGENT

GOOD = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "probe",
}


def with_(**changes):
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


CASES = [
    ("unknown cluster", with_(cluster="nope-eks"), 400, "unknown_cluster", "cluster"),
    ("unknown scope", with_(scope="root"), 400, "unknown_scope", "scope"),
    ("namespace with bad characters", with_(namespace="pay$ments"), 400, "invalid_namespace", "namespace"),
    ("namespace with capitals", with_(namespace="Payments"), 400, "invalid_namespace", "namespace"),
    ("namespace not registered", with_(namespace="kube-system"), 400, "unknown_namespace", "namespace"),
    ("namespace missing", with_(namespace=None), 400, "namespace_required", "namespace"),
    ("namespace on a cluster scope", with_(scope="cluster-view"), 400, "namespace_not_allowed", "namespace"),
    ("zero duration", with_(duration="0s"), 400, "invalid_duration", "duration"),
    ("ISO zero duration", with_(duration="PT0S"), 400, "invalid_duration", "duration"),
    ("unparseable duration", with_(duration="15 minutes"), 400, "invalid_duration", "duration"),
    ("too short", with_(duration="30s"), 400, "duration_too_short", "duration"),
    ("over the policy maximum", with_(duration="16m"), 400, "duration_exceeds_maximum", "duration"),
    ("over the global maximum", with_(duration="13h"), 400, "duration_exceeds_maximum", "duration"),
    ("missing scope", with_(scope=None), 400, "invalid_request", "scope"),
    ("missing reason", with_(reason=None), 400, "invalid_request", "reason"),
    ("empty reason", with_(reason="  "), 400, "reason_too_short", "reason"),
    ("two-letter reason", with_(reason="ok"), 400, "reason_too_short", "reason"),
    # the most useful error wins: the target first, then the duration, then the reason
    ("unknown cluster, short reason", with_(cluster="nope-eks", reason="x"), 400, "unknown_cluster", "cluster"),
    ("unknown cluster, bad duration", with_(cluster="nope-eks", duration="soon"), 400, "unknown_cluster", "cluster"),
    ("unknown scope, bad duration", with_(scope="root", duration="soon"), 400, "unknown_scope", "scope"),
    ("bad duration, short reason", with_(duration="soon", reason="x"), 400, "invalid_duration", "duration"),
    ("too long, short reason", with_(duration="13h", reason="x"), 400, "duration_exceeds_maximum", "duration"),
    ("unknown field", with_(role="admin"), 400, "invalid_request", "role"),
    ("duration as a list", with_(duration=["15m"]), 400, "invalid_request", "duration"),
]


@pytest.fixture
def snapshot(world):
    def take():
        return (
            sorted(map(str, world.table_items())),
            world.all_entries(),
            world.schedules(),
        )

    return take


@pytest.mark.parametrize(("case", "body", "status", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_bodies(world, snapshot, case, body, status, code, field) -> None:
    before = snapshot()
    got, error = world.call("POST", "/v1/grants", body=body)
    assert (got, error["code"], error["field"]) == (status, code, field), error
    assert error["message"] and "Traceback" not in error["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "malformed_json"),
        ("[1, 2]", "invalid_request"),
        ("", "invalid_request"),
        ("null", "invalid_request"),
    ],
)
def test_malformed_bodies(world, snapshot, raw, code) -> None:
    before = snapshot()
    status, error = world.call("POST", "/v1/grants", raw_body=raw)
    assert (status, error["code"]) == (400, code), error
    assert snapshot() == before


def test_an_unsigned_request_is_refused(world, snapshot) -> None:
    before = snapshot()
    status, error = world.call("POST", "/v1/grants", body=GOOD, caller=None)
    assert (status, error["code"]) == (403, "forbidden")
    assert "SigV4" in error["message"]
    assert snapshot() == before


def test_someone_elses_grant_can_be_neither_read_nor_revoked(world, snapshot) -> None:
    _, grant = world.call("POST", "/v1/grants", body=GOOD, caller=ONCALL_SESSION)
    before = snapshot()
    for method, path in (("GET", f"/v1/grants/{grant['id']}"), ("POST", f"/v1/grants/{grant['id']}/revoke")):
        status, error = world.call(method, path, caller=OTHER_AGENT)
        assert (status, error["code"]) == (403, "forbidden"), error
    assert snapshot() == before
    assert world.entry(ONCALL)["groups"] == ["eks-jit:rollout-restart:payments"]


def test_unknown_and_malformed_grant_ids(world, snapshot) -> None:
    before = snapshot()
    status, error = world.call("GET", "/v1/grants/00000000-0000-4000-8000-000000000000")
    assert (status, error["code"]) == (404, "grant_not_found")
    status, error = world.call("GET", "/v1/grants/not-an-id")
    assert (status, error["code"], error["field"]) == (400, "invalid_request", "grant_id")
    status, error = world.call("GET", "/v1/nothing-here")
    assert (status, error["code"]) == (404, "route_not_found")
    assert snapshot() == before


def test_a_policy_denial_is_403_recorded_for_the_auditor_and_grants_nothing(world) -> None:
    entries = world.all_entries()
    status, error = world.call("POST", "/v1/grants", body=with_(scope="view"), caller=OTHER_AGENT)
    assert (status, error["code"]) == (403, "policy_denied")
    assert "no policy allows" in error["message"]
    assert world.all_entries() == entries and world.schedules() == []
    status, record = world.call("GET", f"/v1/grants/{error['grant_id']}", caller=OTHER_AGENT)
    assert record["status"] == "denied" and [e["type"] for e in record["events"]] == ["requested", "denied"]
    status, error = world.call(
        "POST", "/v1/grants", body=with_(scope="cluster-view", namespace=None, duration="5m"), caller=ONCALL_SESSION
    )
    assert (status, error["code"], error["message"]) == (
        403,
        "policy_denied",
        "agents are never granted cluster-wide scopes",
    )


def test_a_grant_needing_approval_waits_and_grants_nothing_yet(world) -> None:
    status, grant = world.call("POST", "/v1/grants", body=with_(scope="edit", duration="30m"))
    assert status == 201 and grant["status"] == "pending_approval"
    assert world.entry(ONCALL) is None and world.schedules() == []
    assert grant["decision"] == {
        "outcome": "needs_approval",
        "policies": ["payments-edit-needs-approver"],
        "reason": "",
        "approvals_required": 1,
        "approvers": ["group:payments-approvers"],
    }
    status, listed = world.call("GET", "/v1/grants", query={"status": "pending_approval"})
    assert [g["id"] for g in listed["grants"]] == [grant["id"]]
    status, error = world.call("GET", "/v1/grants", query={"mine": "false", "status": "active"}, caller=ALICE)
    assert (status, error["code"]) == (403, "forbidden")
