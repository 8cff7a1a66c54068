"""The client's keyed calls (request_grant, extend) over real HTTP against a scripted stub: each
call sends one Idempotency-Key (new, or the caller's) on every attempt, retries only what may
succeed later, a bounded number of times, and says which key it sent when it gives up."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials

from eks_jit.client import ApiError, Client

GRANT = {"id": "0b9c1d2e-0000-4000-8000-000000000001", "status": "active"}
OK = (201, {}, GRANT)
IN_PROGRESS = (409, {}, {"code": "idempotency_key_in_progress", "message": "retry"})
REUSED = (409, {}, {"code": "idempotency_key_reused", "message": "another request"})
GATEWAY = (502, {}, {"message": "Internal server error"})  # API Gateway's own 5xx: no code
THROTTLED = (429, {"Retry-After": "3"}, {"message": "Too Many Requests"})
DROP = "drop"  # close the connection without an answer


class Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list[Any] = []
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append({"path": self.path, "headers": dict(self.headers.items()), "body": json.loads(body)})
        step = self.script.pop(0) if self.script else OK
        if step == DROP:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        status, headers, answer = step
        raw = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    Scripted.script, Scripted.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client(url: str, slept: list[float], **kwargs: Any) -> Client:
    return Client(url, region="eu-west-1", credentials=Credentials("AKIDEXAMPLE", "secret"), sleep=slept.append,
                  **kwargs)  # fmt: skip


def keys() -> list[str]:
    return [s["headers"]["Idempotency-Key"] for s in Scripted.seen]


def request(api: Client, **kwargs: Any) -> dict[str, Any]:
    return api.request_grant("prod-eks", "payments", "rollout-restart", "15m", "probe failing", **kwargs)


@pytest.mark.parametrize(
    "failures",
    [[GATEWAY], [IN_PROGRESS, IN_PROGRESS], [THROTTLED], [DROP], [(503, {}, {"code": "aws_unavailable"})]],
    ids=["5xx", "in-progress", "429", "connection-dropped", "503"],
)
def test_a_transient_failure_is_retried_with_the_same_key(stub: str, failures: list[Any]) -> None:
    Scripted.script = list(failures)
    slept: list[float] = []
    assert request(client(stub, slept)) == GRANT
    assert len(Scripted.seen) == len(failures) + 1
    assert len(set(keys())) == 1 and uuid.UUID(keys()[0]).version == 4
    assert len(slept) == len(failures) and all(0 < s <= 5.0 for s in slept)


def test_retry_after_is_honoured_up_to_five_seconds(stub: str) -> None:
    Scripted.script = [THROTTLED, (429, {"Retry-After": "60"}, {})]
    slept: list[float] = []
    request(client(stub, slept))
    assert slept[0] >= 3.0 and slept[1] == 5.0


def test_each_call_has_its_own_key_unless_the_caller_gives_one(stub: str) -> None:
    api = client(stub, [])
    request(api)
    request(api)
    request(api, idempotency_key="nightly-restart-2027-03-01")
    api.extend(GRANT["id"], "5m", "slow", idempotency_key="ext-1")
    assert keys()[0] != keys()[1] and keys()[2:] == ["nightly-restart-2027-03-01", "ext-1"]
    # the key is signed with the request, so nothing between the client and API Gateway can swap it
    assert all("idempotency-key" in s["headers"]["Authorization"] for s in Scripted.seen)
    assert Scripted.seen[3]["path"] == f"/v1/grants/{GRANT['id']}/extend"


@pytest.mark.parametrize(
    ("answer", "code"),
    [(REUSED, "idempotency_key_reused"), ((403, {}, {"code": "policy_denied", "message": "no"}), "policy_denied"),
     ((400, {}, {"code": "invalid_duration", "message": "bad"}), "invalid_duration")],
)  # fmt: skip
def test_an_answer_is_not_retried(stub: str, answer: Any, code: str) -> None:
    Scripted.script = [answer]
    slept: list[float] = []
    with pytest.raises(ApiError) as error:
        request(client(stub, slept), idempotency_key="k-1")
    assert (error.value.code, error.value.idempotency_key) == (code, "k-1")
    assert len(Scripted.seen) == 1 and slept == []


def test_retries_are_bounded_and_the_error_names_the_key_to_retry_with(stub: str) -> None:
    Scripted.script = [GATEWAY] * 10
    slept: list[float] = []
    with pytest.raises(ApiError) as error:
        request(client(stub, slept, retries=3, backoff=0.25))
    assert error.value.status == 502 and error.value.transient
    assert error.value.idempotency_key == keys()[0] and len(set(keys())) == 1
    assert len(Scripted.seen) == 4 and len(slept) == 3
    assert all(low / 2 <= s <= high for s, low, high in zip(slept, (0.25, 0.5, 1.0), (0.25, 0.5, 1.0), strict=True))


def test_retries_can_be_turned_off(stub: str) -> None:
    Scripted.script = [GATEWAY]
    with pytest.raises(ApiError):
        request(client(stub, [], retries=0))
    assert len(Scripted.seen) == 1


def test_other_calls_are_not_retried(stub: str) -> None:
    Scripted.script = [GATEWAY]
    with pytest.raises(ApiError) as error:
        client(stub, []).revoke(GRANT["id"])
    assert error.value.status == 502 and len(Scripted.seen) == 1
    assert "Idempotency-Key" not in Scripted.seen[0]["headers"]


def test_the_cli_exit_codes_of_keyed_failures() -> None:
    from eks_jit.cli import exit_code

    assert exit_code(409, "idempotency_key_in_progress") == 5  # run the same command again, same key
    assert exit_code(409, "idempotency_key_reused") == 4  # a conflict: a new request needs a new key
    assert exit_code(400, "invalid_idempotency_key") == 2
