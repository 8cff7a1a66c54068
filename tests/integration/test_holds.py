"""``POST /v1/holds``, as an attacker would try it: the route that turns a held Kubernetes request
into a pending approval, or lets an approved one through once. Only the gateway's role may call it,
and nothing it says is taken on trust: the API reads the covering grant again and derives the
request's coverage and the guardrail's hold itself (logic/holds.py). Through the HTTP API handler,
against moto (DynamoDB, Step Functions' interpreter, Scheduler)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from eks_jit.server.domain.grant import GrantStatus
from tests.integration.test_approval_workflow import notified
from tests.integration.test_gateway_mode import EDIT, RESTART, Gw
from tests.integration.test_gateway_mode import gw as gw  # the fixture, shared
from tests.support import ACCOUNT, ALICE, BOB, ONCALL, ONCALL_SESSION, wait_until

GATEWAY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-jit-gateway"
GATEWAY_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/eks-jit-gateway/task-0a1b2c"
DEPLOYMENT = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
NO_BODY = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def held(gw: Gw) -> Gw:
    gw.switch("gateway", EKS_JIT_GATEWAY_ROLE_ARN=GATEWAY_ROLE)
    return gw


def edit_grant(world: Gw) -> dict[str, Any]:
    """An approved edit grant of the on-call agent on prod-gw (any of its sessions)."""
    _, grant = world.call("POST", "/v1/grants", body=EDIT, caller=ONCALL_SESSION)
    notified(world, grant["id"])
    status, answer = world.call("POST", f"/v1/grants/{grant['id']}/approve", body={}, caller=BOB)
    assert status == 200, answer
    wait_until(lambda: world.deps.store.get(grant["id"]).status is GrantStatus.ACTIVE)
    return grant


def ask(world: Gw, grant_id: str, *, caller: str = GATEWAY_SESSION, **overrides: Any) -> tuple[int, Any]:
    body = {
        "grant_id": grant_id,
        "principal": ONCALL,
        "session": "incident-4711",
        "cluster": "prod-gw",
        "method": "DELETE",
        "path": DEPLOYMENT,
        "query": "",
        "body_sha256": NO_BODY,
    } | overrides
    return world.call("POST", "/v1/holds", body=body, caller=caller)


def commands(world: Gw) -> list[dict[str, Any]]:
    """Every held command's grant in the table."""
    return [item for item in world.table_items() if item.get("scope", {}).get("S") == "command"]


def approve(world: Gw, grant_id: str, approver: str = BOB) -> None:
    notified(world, grant_id)
    status, answer = world.call("POST", f"/v1/grants/{grant_id}/approve", body={}, caller=approver)
    assert status == 200, answer


# -- who may ask ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", [ONCALL_SESSION, ONCALL, ALICE, f"arn:aws:iam::{ACCOUNT}:role/eks-jit-gateway-x"])
def test_nobody_but_the_gateways_role_may_hold_a_command(held: Gw, caller: str) -> None:
    grant = edit_grant(held)
    status, answer = ask(held, grant["id"], caller=caller)
    assert (status, answer["code"]) == (403, "not_the_gateway"), answer
    assert commands(held) == []


def test_without_a_configured_gateway_role_nobody_may(gw: Gw) -> None:
    grant = edit_grant(gw)
    status, answer = ask(gw, grant["id"])
    assert (status, answer["code"]) == (403, "not_the_gateway"), answer
    assert commands(gw) == []


# -- what it will hold --------------------------------------------------------------------------------------


def test_a_held_request_becomes_a_pending_grant_of_the_command_scope(held: Gw) -> None:
    grant = edit_grant(held)
    status, answer = ask(held, grant["id"])
    assert (status, answer["outcome"]) == (201, "held"), answer
    hold = answer["grant"]
    assert (hold["scope"], hold["status"], hold["requester"]) == ("command", "pending_approval", ONCALL)
    assert hold["command"]["grant"] == grant["id"] and hold["command"]["method"] == "DELETE"
    assert f"eks-jit approve {hold['id']}" in answer["message"]
    # asked again, the same hold
    status, again = ask(held, grant["id"])
    assert (status, again["grant"]["id"]) == (201, hold["id"])


def test_a_request_the_grant_does_not_cover_is_not_held(held: Gw) -> None:
    grant = edit_grant(held)
    status, answer = ask(held, grant["id"], path="/apis/apps/v1/namespaces/orders/deployments/orders-api")
    assert (status, answer["code"]) == (403, "not_covered"), answer
    status, answer = ask(held, grant["id"], principal=f"arn:aws:iam::{ACCOUNT}:role/agents/other-agent")
    assert (status, answer["code"]) == (403, "not_covered"), answer


def test_a_request_no_guardrail_holds_is_not_held(held: Gw) -> None:
    """The gateway cannot turn an ordinary request (or one a guardrail blocks) into an approval to ask."""
    grant = edit_grant(held)
    status, answer = ask(held, grant["id"], method="GET")
    assert (status, answer["code"]) == (400, "not_held"), answer
    status, answer = ask(held, grant["id"], method="POST", path="/api/v1/namespaces/payments/pods/p/exec")
    assert status in (400, 403) and answer["code"] in ("not_held", "not_covered"), answer


def test_a_held_command_cannot_be_the_covering_grant_nor_be_asked_for_directly(held: Gw) -> None:
    grant = edit_grant(held)
    _, answer = ask(held, grant["id"])
    status, nested = ask(held, answer["grant"]["id"])
    assert (status, nested["code"]) == (400, "not_covered"), nested
    status, direct = held.call("POST", "/v1/grants", body={**RESTART, "scope": "command"}, caller=ONCALL_SESSION)
    assert status == 400, direct


def test_an_ended_covering_grant_holds_nothing(held: Gw) -> None:
    grant = edit_grant(held)
    status, _ = held.call("POST", f"/v1/grants/{grant['id']}/revoke", body={}, caller=ONCALL_SESSION)
    assert status == 200
    status, answer = ask(held, grant["id"])
    assert status == 409, answer


# -- deciding and passing ----------------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_held_command(held: Gw) -> None:
    grant = edit_grant(held)
    _, answer = ask(held, grant["id"])
    notified(held, answer["grant"]["id"])
    status, refused = held.call("POST", f"/v1/grants/{answer['grant']['id']}/approve", body={}, caller=ONCALL_SESSION)
    assert status == 403, refused
    assert held.deps.store.get(answer["grant"]["id"]).status is GrantStatus.PENDING_APPROVAL


def approved_hold(gw: Gw, grant_id: str) -> str:
    """The held command of the default request under ``grant_id``, approved and active: its id."""
    _, answer = ask(gw, grant_id)
    hold = str(answer["grant"]["id"])
    approve(gw, hold)
    wait_until(lambda: gw.deps.store.get(hold).status is GrantStatus.ACTIVE)
    return hold


def test_approved_it_passes_once_for_exactly_that_request(held: Gw) -> None:
    grant = edit_grant(held)
    hold = approved_hold(held, grant["id"])
    # another body, another session, another principal: not the request it was approved for
    for other in ({"body_sha256": "0" * 64}, {"session": "incident-9999"}, {"query": "dryRun=All"}):
        status, elsewhere = ask(held, grant["id"], **other)
        assert (status, elsewhere["outcome"]) == (201, "held") and elsewhere["grant"]["id"] != hold, other
    status, passed = ask(held, grant["id"])
    assert (status, passed["outcome"], passed["grant"]["id"]) == (200, "pass", hold), passed
    used = held.deps.store.get(hold)
    assert used.status is GrantStatus.EXPIRED and "used once" in used.status_reason
    assert hold not in held.schedules()
    status, twice = ask(held, grant["id"])
    assert (status, twice["outcome"]) == (201, "held") and twice["grant"]["id"] != hold


def test_two_tries_at_once_pass_once(held: Gw) -> None:
    grant = edit_grant(held)
    approved_hold(held, grant["id"])
    answers: list[str] = []
    start = threading.Barrier(4)

    def one() -> None:
        start.wait()
        _, a = ask(held, grant["id"])
        answers.append(a["outcome"])

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == ["held", "held", "held", "pass"], answers


def test_revoking_the_covering_grant_before_the_vote_keeps_the_command_from_activating(held: Gw) -> None:
    grant = edit_grant(held)
    _, answer = ask(held, grant["id"])
    hold = answer["grant"]["id"]
    status, _ = held.call("POST", f"/v1/grants/{grant['id']}/revoke", body={}, caller=ONCALL_SESSION)
    assert status == 200
    notified(held, hold)
    held.call("POST", f"/v1/grants/{hold}/approve", body={}, caller=BOB)
    wait_until(lambda: held.deps.store.get(hold).status is not GrantStatus.PENDING_APPROVAL)
    assert held.deps.store.get(hold).status is not GrantStatus.ACTIVE
    status, answer = ask(held, grant["id"])
    assert status == 409, answer


def test_an_approved_command_does_not_pass_after_its_covering_grant_ends(held: Gw) -> None:
    grant = edit_grant(held)
    approved_hold(held, grant["id"])
    held.call("POST", f"/v1/grants/{grant['id']}/revoke", body={}, caller=ONCALL_SESSION)
    status, answer = ask(held, grant["id"])
    assert status == 409, answer
