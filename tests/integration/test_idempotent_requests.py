"""Idempotency-Key on POST /v1/grants and POST /v1/grants/{id}/extend, through the API handler
as API Gateway hands it a SigV4-signed request (the signer's identity in requestContext).

The first answer to a (caller, key) is kept 24 h and given again to a retry of the same request;
another request with the key is 409 and changes nothing; keys are per caller."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from eks_jit.server.api.models import GrantRequest
from eks_jit.server.handlers import api
from eks_jit.server.logic import requesting
from tests.support import ACCOUNT, ALICE, ONCALL, ONCALL_SESSION, OTHER_AGENT, LambdaContextStub, api_event, race

ANOTHER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall-agent/incident-4712"  # the same role
RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "readiness probe failing on payments-api",
}
EDIT = RESTART | {"scope": "edit", "reason": "hotfix the payments config"}  # needs an approver
CLUSTER_VIEW = RESTART | {"scope": "cluster-view", "namespace": None, "reason": "look around"}  # agents: denied


def post(world, path: str, body: dict[str, Any], *, caller: str = ONCALL_SESSION, **headers: str):
    """(status, body, response headers) of a signed POST."""
    response = world.raw("POST", path, body={k: v for k, v in body.items() if v is not None}, caller=caller,
                         headers=headers or None)  # fmt: skip
    return response["statusCode"], json.loads(response["body"]), dict(response.get("multiValueHeaders") or {})


def grants(world) -> list[dict[str, Any]]:
    return [i for i in world.table_items() if i["sk"]["S"] == "GRANT"]


def records(world) -> list[dict[str, Any]]:
    return [i for i in world.table_items() if i["pk"]["S"].startswith("IDEMPOTENCY#")]


def with_key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


# -- the attacker first: another principal holding (or guessing) someone's key ---------------------------


def test_another_principal_replaying_a_key_gets_its_own_request_never_the_first_callers(world) -> None:
    # Given the on-call agent's request, made with key K
    status, mine, _ = post(world, "/v1/grants", RESTART, **with_key("K-4711"))
    assert status == 201 and mine["status"] == "active"

    # When another principal sends the same key with the same body
    status, theirs, headers = post(world, "/v1/grants", RESTART, caller=ALICE, **with_key("K-4711"))

    # Then it is a request of its own, decided for it (a human in production needs an approver):
    # never the agent's grant, its connection details or a hint that the key exists
    assert status == 201, theirs
    assert theirs["id"] != mine["id"] and theirs["requester"] == ALICE
    assert theirs["status"] == "pending_approval" and theirs.get("connection") is None
    assert "Idempotent-Replayed" not in headers

    # And with another body it is not told the key was used (that would say someone holds it)
    status, third, _ = post(world, "/v1/grants", RESTART, caller=OTHER_AGENT, **with_key("K-4711"))
    assert (status, third["code"]) == (403, "policy_denied") and third["grant_id"] not in (mine["id"], theirs["id"])

    # And the agent's own retry still answers the agent's grant
    status, again, headers = post(world, "/v1/grants", RESTART, **with_key("K-4711"))
    assert (status, again, headers["Idempotent-Replayed"]) == (201, mine, ["true"])
    assert len(grants(world)) == 3 and len(records(world)) == 3


def test_a_principal_cannot_block_anothers_key_by_using_it_first(world) -> None:
    # Given another principal used K first, with a different request
    assert post(world, "/v1/grants", EDIT, caller=ALICE, **with_key("K-1"))[0] == 201
    # Then the agent's first request with K is simply its first: done, not 409
    status, grant, headers = post(world, "/v1/grants", RESTART, **with_key("K-1"))
    assert status == 201 and grant["requester"] == ONCALL and "Idempotent-Replayed" not in headers


# -- the same request again ------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_answers_the_first_grant_and_records_one(world) -> None:
    status, first, headers = post(world, "/v1/grants", RESTART, **with_key("retry-1"))
    assert status == 201 and first["status"] == "active" and "Idempotent-Replayed" not in headers
    entry = world.entry(ONCALL)

    # The same key again, also from another session of the same role: the same caller (its role ARN)
    for session in (ONCALL_SESSION, ANOTHER_SESSION):
        status, again, headers = post(world, "/v1/grants", RESTART, caller=session, **with_key("retry-1"))
        assert (status, again, headers["Idempotent-Replayed"]) == (201, first, ["true"])
    # The body is compared as a request, not as bytes: key order and spacing do not matter
    raw = world.raw("POST", "/v1/grants", raw_body=json.dumps(dict(reversed(RESTART.items())), indent=2),
                    headers=with_key("retry-1"))  # fmt: skip
    assert (raw["statusCode"], json.loads(raw["body"])) == (201, first)

    assert [g["id"]["S"] for g in grants(world)] == [first["id"]]
    assert world.entry(ONCALL) == entry and world.schedules() == [f"eks-jit-{first['id']}"]


def test_without_a_key_nothing_changes(world) -> None:
    first = post(world, "/v1/grants", RESTART)
    second = post(world, "/v1/grants", RESTART)
    assert first[0] == second[0] == 201 and first[1]["id"] != second[1]["id"]
    assert len(grants(world)) == 2 and records(world) == []


def test_the_same_key_with_another_body_is_409_and_changes_nothing(world) -> None:
    status, first, _ = post(world, "/v1/grants", RESTART, **with_key("K-2"))
    assert status == 201
    before = world.table_items()

    for other in (RESTART | {"duration": "10m"}, RESTART | {"reason": "another reason"}, EDIT):
        status, error, _ = post(world, "/v1/grants", other, **with_key("K-2"))
        assert (status, error["code"]) == (409, "idempotency_key_reused"), error
        assert error["grant_id"] is None  # the first answer is not handed to a different request
    # a key names one request: not a create and then an extension either
    status, error, _ = post(world, f"/v1/grants/{first['id']}/extend", {"duration": "5m", "reason": "slow"},
                            **with_key("K-2"))  # fmt: skip
    assert (status, error["code"]) == (409, "idempotency_key_reused")

    assert world.table_items() == before


def test_a_denied_request_retried_gets_the_same_denial_and_one_denied_grant(world) -> None:
    status, denial, _ = post(world, "/v1/grants", CLUSTER_VIEW, **with_key("deny-1"))
    assert (status, denial["code"]) == (403, "policy_denied") and denial["grant_id"]

    status, again, headers = post(world, "/v1/grants", CLUSTER_VIEW, **with_key("deny-1"))
    assert (status, again, headers["Idempotent-Replayed"]) == (403, denial, ["true"])
    (only,) = grants(world)
    assert (only["id"]["S"], only["status"]["S"]) == (denial["grant_id"], "denied")


def test_a_pending_request_retried_starts_one_approval(world) -> None:
    status, pending, _ = post(world, "/v1/grants", EDIT, **with_key("edit-1"))
    assert status == 201 and pending["status"] == "pending_approval"
    assert post(world, "/v1/grants", EDIT, **with_key("edit-1"))[:2] == (201, pending)
    assert [g["id"]["S"] for g in grants(world)] == [pending["id"]]


def test_extend_is_idempotent(world) -> None:
    status, grant, _ = post(world, "/v1/grants", RESTART | {"duration": "5m"})
    assert status == 201
    more = {"duration": "5m", "reason": "the restart is slow"}

    status, extension, _ = post(world, f"/v1/grants/{grant['id']}/extend", more, **with_key("ext-1"))
    assert status == 201 and extension["status"] == "active" and extension["extends"] == grant["id"]
    status, again, headers = post(world, f"/v1/grants/{grant['id']}/extend", more, **with_key("ext-1"))
    assert (status, again, headers["Idempotent-Replayed"]) == (201, extension, ["true"])

    _, detail = world.call("GET", f"/v1/grants/{grant['id']}")
    assert detail["duration"] == "10m"  # extended once, not twice
    assert [e["detail"]["extension"] for e in detail["events"] if e["type"] == "extended"] == [extension["id"]]
    # another body with the key: 409, nothing extended
    assert post(world, f"/v1/grants/{grant['id']}/extend", more | {"duration": "1m"}, **with_key("ext-1"))[0] == 409
    assert len(grants(world)) == 2


def test_only_the_requester_extends_even_with_the_requesters_key(world) -> None:
    _, grant, _ = post(world, "/v1/grants", RESTART | {"duration": "5m"})
    more = {"duration": "5m", "reason": "the restart is slow"}
    assert post(world, f"/v1/grants/{grant['id']}/extend", more, **with_key("ext-2"))[0] == 201
    status, error, _ = post(world, f"/v1/grants/{grant['id']}/extend", more, caller=OTHER_AGENT, **with_key("ext-2"))
    assert (status, error["code"]) == (403, "forbidden")


# -- malformed keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["", " ", "a" * 256, "tab\tinside", "new\nline", "del\x7f", "caf\u00e9", " leading", "trailing "],
    ids=["empty", "space", "256-chars", "tab", "newline", "del", "non-ascii", "leading-space", "trailing-space"],
)
def test_a_malformed_key_is_400_and_changes_nothing(world, value: str) -> None:
    status, error, _ = post(world, "/v1/grants", RESTART, **with_key(value))
    assert (status, error["code"], error["field"]) == (400, "invalid_idempotency_key", "Idempotency-Key")
    assert world.table_items() == []


def test_a_key_sent_twice_is_400(world) -> None:
    # API Gateway hands every value of a repeated header in multiValueHeaders: which one is meant?
    twice = api_event("POST", "/v1/grants", body=RESTART, headers=with_key("two"))
    twice["multiValueHeaders"]["Idempotency-Key"] = ["two", "three"]
    answer = api.handler(twice, LambdaContextStub())
    assert answer["statusCode"] == 400 and json.loads(answer["body"])["code"] == "invalid_idempotency_key"
    assert world.table_items() == []


def test_the_longest_key_and_any_printable_ascii_are_accepted(world) -> None:
    for value in ("k" * 255, "x !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~y"):
        assert post(world, "/v1/grants", RESTART, **with_key(value))[0] == 201


@pytest.mark.skipif("dry_run" not in GrantRequest.model_fields, reason="dry_run arrives with the catalog work")
def test_a_dry_run_never_creates_an_idempotency_record(world) -> None:
    status, _, _ = post(world, "/v1/grants", RESTART | {"dry_run": True}, **with_key("dry-1"))
    assert status == 200 and records(world) == [] and grants(world) == []
    # the key is still free: the real request with it is its first, not a reuse
    assert post(world, "/v1/grants", RESTART, **with_key("dry-1"))[0] == 201


# -- retries of a request still in flight, or cut short ----------------------------------------------------


def test_a_duplicate_while_the_first_is_in_flight_is_409_in_progress_then_the_first_answer(world, monkeypatch) -> None:
    inside, release = threading.Event(), threading.Event()
    create = world.deps.store.create

    def slow_create(grant, events):
        inside.set()
        assert release.wait(30)
        create(grant, events)

    monkeypatch.setattr(world.deps.store, "create", slow_create)
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(post(world, "/v1/grants", RESTART, **with_key("fly-1"))))
    thread.start()
    try:
        assert inside.wait(30)
        status, error, _ = post(world, "/v1/grants", RESTART, **with_key("fly-1"))
        assert (status, error["code"]) == (409, "idempotency_key_in_progress")
    finally:
        release.set()
        thread.join(30)
    assert first[0][0] == 201
    assert post(world, "/v1/grants", RESTART, **with_key("fly-1"))[:2] == (201, first[0][1])
    assert len(grants(world)) == 1


def test_an_attempt_that_failed_after_recording_the_grant_is_finished_by_its_retry(world, monkeypatch) -> None:
    # Given the first attempt records and activates the grant, then fails before answering (500)
    real_view = api.view
    calls: list[str] = []

    def view_once_broken(grant):
        calls.append(grant.id)
        if len(calls) == 1:
            raise RuntimeError("the answer was lost")
        return real_view(grant)

    monkeypatch.setattr(api, "view", view_once_broken)
    status, error, _ = post(world, "/v1/grants", RESTART, **with_key("lost-1"))
    assert (status, error["code"]) == (500, "internal_error")
    (recorded,) = grants(world)
    assert recorded["status"]["S"] == "active" and records(world) == []  # nothing kept for a failure

    # When the client retries with the same key, it gets that grant: no second grant, no second entry
    status, grant, _ = post(world, "/v1/grants", RESTART, **with_key("lost-1"))
    assert status == 201 and grant["id"] == recorded["id"]["S"] == calls[0] and grant["status"] == "active"
    assert len(grants(world)) == 1 and world.schedules() == [f"eks-jit-{grant['id']}"]


class Killed(BaseException):
    """The Lambda runtime ending an invocation (a timeout): no except clause of the code runs."""


def test_an_attempt_killed_mid_flight_holds_the_key_until_its_deadline_then_its_retry_finishes_it(
    world, monkeypatch
) -> None:
    # Given the first attempt recorded the (approved) grant and was killed before activating it
    def killed(deps, grant, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(requesting, "activate", killed)
        with pytest.raises(Killed):
            post(world, "/v1/grants", RESTART, **with_key("killed-1"))
    (recorded,) = grants(world)
    assert recorded["status"]["S"] == "approved"

    # Then a retry inside its deadline is told to come back (retryable), and changes nothing
    status, error, _ = post(world, "/v1/grants", RESTART, **with_key("killed-1"))
    assert (status, error["code"]) == (409, "idempotency_key_in_progress")

    # When the deadline has passed (the record aged, as the wall clock would), the retry finishes it
    (record,) = records(world)
    assert record["record_status"]["S"] == "INPROGRESS"
    world.ddb.update_item(
        TableName="eks-jit-grants",
        Key={"pk": record["pk"], "sk": record["sk"]},
        UpdateExpression="SET in_flight_until = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time() * 1000) - 1)}},
    )
    status, grant, _ = post(world, "/v1/grants", RESTART, **with_key("killed-1"))
    assert status == 201 and grant["id"] == recorded["id"]["S"] and grant["status"] == "active"
    assert len(grants(world)) == 1 and world.entry(ONCALL)["groups"] == ["eks-jit:rollout-restart:payments"]


def test_after_its_window_a_key_is_free_again(world) -> None:
    status, first, _ = post(world, "/v1/grants", RESTART, **with_key("daily"))
    assert status == 201
    # 24 h later: the record's end has passed (as DynamoDB's TTL sees it) and the grant is old
    (record,) = records(world)
    world.ddb.update_item(
        TableName="eks-jit-grants",
        Key={"pk": record["pk"], "sk": record["sk"]},
        UpdateExpression="SET #t = :past",
        ExpressionAttributeNames={"#t": "ttl"},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    world.clock.advance(timedelta(hours=24, minutes=1))

    status, second, headers = post(world, "/v1/grants", RESTART, **with_key("daily"))
    assert status == 201 and second["id"] != first["id"] and "Idempotent-Replayed" not in headers
    assert len(grants(world)) == 2


def test_records_live_under_their_own_prefix_and_end_with_the_window(world) -> None:
    started = int(time.time())
    post(world, "/v1/grants", RESTART, **with_key("ttl-1"))
    (record,) = records(world)
    assert record["sk"]["S"] == "IDEMPOTENCY" and "gsi1pk" not in record and "gsi2pk" not in record
    assert ONCALL not in json.dumps(record["pk"]) and "ttl-1" not in json.dumps(record["pk"])  # hashed
    ends = int(record["ttl"]["N"])
    assert started + 24 * 3600 - 5 <= ends <= int(time.time()) + 24 * 3600 + 5  # wall clock, as the TTL reads it


def test_two_attempts_under_one_id_racing_past_the_record_make_one_grant(world) -> None:
    # Even with no idempotency record to stop the second (it was lost, or both started at once),
    # the grant's id is put-if-absent: the loser finds the winner's grant and answers it.
    minutes = timedelta(minutes=15)
    request = requesting.AccessRequest(ONCALL, "prod-eks", "payments", "rollout-restart", minutes, "racing")
    same_id = "5d0b8f39-0000-5000-8000-000000000001"
    results = race(*(lambda: requesting.request_grant(world.deps, request, record_as=same_id) for _ in range(3)))
    assert [getattr(r, "id", repr(r)) for r in results] == [same_id] * 3, results
    assert [g["id"]["S"] for g in grants(world)] == [same_id]
