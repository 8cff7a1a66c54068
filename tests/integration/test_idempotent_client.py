"""The client's retries against the real API: eks_jit.client over HTTP, SigV4-signed, through
local mode's API Gateway (which checks the signature) to the real handler on moto. Faults are
injected between the gateway and the handler, where API Gateway itself fails: an answer lost
after the handler ran, a 5xx before it ran, a 504 while the handler goes on running."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from eks_jit.client import ApiError, Client
from eks_jit.emulation.lambda_dispatch import Context
from eks_jit.local.gateway import Gateway
from eks_jit.local.sigv4 import Identity
from eks_jit.server.handlers import api
from tests.support import ALICE, ONCALL, REGION

AGENT = Identity("agent-oncall", "AKIAIDEMONCALL000001", "agent-secret", ONCALL)
HUMAN = Identity("approver-alice", "AKIAIDEMALICE0000001", "alice-secret", ALICE)
GATEWAY_ERROR = {"statusCode": 502, "multiValueHeaders": {"Content-Type": ["application/json"]},
                 "body": json.dumps({"message": "Internal server error"})}  # fmt: skip
Fault = Callable[[int, dict[str, Any]], dict[str, Any] | None]


class Faulty:
    """The API handler behind a fault: ``fault(n, event)`` may answer the n-th request itself
    (return an answer) or let it through (return None)."""

    def __init__(self) -> None:
        self.fault: Fault = lambda n, event: None
        self.events: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            self.events.append(event)
            n = len(self.events)
        answer = self.fault(n, event) or api.handler(event, context)
        self.answers.append(answer)
        return answer

    def keys(self) -> list[str | None]:
        return [e["headers"].get("Idempotency-Key") for e in self.events]


@pytest.fixture
def signed(world) -> Iterator[tuple[Faulty, Callable[[Identity], Client]]]:
    faulty = Faulty()
    gateway = Gateway(0, faulty, {i.access_key_id: i for i in (AGENT, HUMAN)}, lambda: Context("eks-jit-api"),
                      region=REGION)  # fmt: skip
    gateway.start()

    def client(who: Identity, sleep: Callable[[float], None] = lambda _: None) -> Client:
        credentials = Credentials(who.access_key_id, who.secret_access_key)
        return Client(gateway.url, region=REGION, credentials=credentials, sleep=sleep)

    yield faulty, client
    gateway.stop()


def grants(world) -> list[dict[str, Any]]:
    return [i for i in world.table_items() if i["sk"]["S"] == "GRANT"]


def request(client: Client, **kwargs: Any) -> dict[str, Any]:
    return client.request_grant("prod-eks", "payments", "rollout-restart", "15m", "probe failing", **kwargs)


def test_an_answer_lost_after_the_grant_was_made_is_retried_with_the_same_key_and_one_grant(world, signed) -> None:
    faulty, client = signed

    def lose_the_first_answer(n: int, event: dict[str, Any]) -> dict[str, Any] | None:
        if n == 1:
            assert api.handler(event, Context("eks-jit-api"))["statusCode"] == 201  # the grant is made...
            return GATEWAY_ERROR  # ...and API Gateway answers 502 instead
        return None

    faulty.fault = lose_the_first_answer
    grant = request(client(AGENT))

    assert grant["status"] == "active" and grant["requester"] == ONCALL
    assert len(faulty.events) == 2 and faulty.keys()[0] == faulty.keys()[1] is not None
    assert faulty.answers[1]["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    assert [g["id"]["S"] for g in grants(world)] == [grant["id"]]


def test_a_5xx_before_the_handler_ran_is_retried_and_makes_one_grant(world, signed) -> None:
    faulty, client = signed
    faulty.fault = lambda n, event: GATEWAY_ERROR if n <= 2 else None
    grant = request(client(AGENT))
    assert len(faulty.events) == 3 and len(set(faulty.keys())) == 1
    assert [g["id"]["S"] for g in grants(world)] == [grant["id"]]


def test_a_504_while_the_handler_runs_on_is_retried_until_its_answer_is_ready(world, signed, monkeypatch) -> None:
    # API Gateway gives up after 29 s with a 504 while the Lambda goes on: the client's retry
    # meets the first request still in flight (409 in progress) and waits for its answer.
    faulty, client = signed
    inside, resume, first_done = threading.Event(), threading.Event(), threading.Event()
    create = world.deps.store.create

    def slow_create(grant, events):  # the first attempt is slow where it writes the grant
        inside.set()
        assert resume.wait(30)
        create(grant, events)

    def answer_504_and_run_on(n: int, event: dict[str, Any]) -> dict[str, Any] | None:
        if n != 1:
            return None
        threading.Thread(target=lambda: (api.handler(event, Context("eks-jit-api")), first_done.set())).start()
        assert inside.wait(30)  # the first attempt holds the key
        return {**GATEWAY_ERROR, "statusCode": 504}

    def sleep(_: float) -> None:
        if len(faulty.events) == 2:  # the retry was told "in progress": now the first one finishes
            resume.set()
            assert first_done.wait(30)

    monkeypatch.setattr(world.deps.store, "create", slow_create)
    faulty.fault = answer_504_and_run_on
    grant = request(client(AGENT, sleep=sleep))

    statuses = [a["statusCode"] for a in faulty.answers]
    assert statuses == [504, 409, 201], statuses
    assert json.loads(faulty.answers[1]["body"])["code"] == "idempotency_key_in_progress"
    assert len(set(faulty.keys())) == 1 and [g["id"]["S"] for g in grants(world)] == [grant["id"]]


def test_a_script_that_runs_again_with_its_key_gets_the_same_grant(world, signed) -> None:
    _, client = signed
    first = request(client(AGENT), idempotency_key="deploy-4711-restart")
    again = request(client(AGENT), idempotency_key="deploy-4711-restart")
    assert again == first and len(grants(world)) == 1
    # and a key is the caller's own: another principal's call with it is another request
    theirs = request(client(HUMAN), idempotency_key="deploy-4711-restart")
    assert theirs["id"] != first["id"] and theirs["requester"] == ALICE and len(grants(world)) == 2


def test_extend_through_the_client_is_retried_with_the_same_key(world, signed) -> None:
    faulty, client = signed
    agent = client(AGENT)
    grant = agent.request_grant("prod-eks", "payments", "rollout-restart", "5m", "probe failing")
    faulty.fault = lambda n, event: GATEWAY_ERROR if n == 2 else None
    extension = agent.extend(grant["id"], "5m", "the restart is slow")
    assert extension["extends"] == grant["id"] and extension["status"] == "active"
    assert faulty.keys()[1] == faulty.keys()[2] and faulty.keys()[0] != faulty.keys()[1]
    assert agent.grant(grant["id"])["duration"] == "10m"


def test_a_key_reused_for_another_request_is_not_retried(world, signed) -> None:
    faulty, client = signed
    request(client(AGENT), idempotency_key="k-1")
    with pytest.raises(ApiError) as error:
        client(AGENT).request_grant("prod-eks", "payments", "view", "15m", "look", idempotency_key="k-1")
    assert (error.value.status, error.value.code, error.value.idempotency_key) == (409, "idempotency_key_reused", "k-1")
    assert len(faulty.events) == 2 and len(grants(world)) == 1
