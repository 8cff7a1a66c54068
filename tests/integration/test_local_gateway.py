"""Local mode's API Gateway in-process: a request is let through only with a SigV4 signature
that API Gateway (AWS_IAM) would accept: service ``execute-api``, the local region, and a
payload hash that is the hash of the body actually sent. The signer is botocore's."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eks_jit.local.gateway import Gateway
from eks_jit.local.sigv4 import Identity

REGION = "us-east-1"
AGENT = Identity("agent-oncall", "AKIALOCALONCALL00001", "the-secret", "arn:aws:iam::123456789012:role/oncall-agent")
VIEW = json.dumps({"cluster": "demo", "namespace": "payments", "scope": "view", "duration": "1m", "reason": "r"})
EDIT = VIEW.replace('"view"', '"edit"')


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "multiValueHeaders": {"Content-Type": ["application/json"]}, "body": "{}"}

    gw = Gateway(0, handler, {AGENT.access_key_id: AGENT}, lambda: None, region=REGION)
    gw.start()
    yield gw, seen
    gw.stop()


def send(gw: Gateway, sign_body: str, send_body: str, *, service: str = "execute-api", region: str = REGION,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    url = gw.url + "/v1/grants"
    request = AWSRequest(
        method="POST", url=url, data=sign_body.encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    SigV4Auth(Credentials(AGENT.access_key_id, AGENT.secret_access_key), service, region).add_auth(request)
    sent = urllib.request.Request(url, data=send_body.encode(), method="POST", headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_correctly_signed_request_reaches_the_handler_with_its_body(gateway) -> None:
    gw, seen = gateway
    assert send(gw, VIEW, VIEW)[0] == 200
    sha = hashlib.sha256(VIEW.encode()).hexdigest()
    assert send(gw, VIEW, VIEW, headers={"X-Amz-Content-SHA256": sha})[0] == 200
    assert [e["body"] for e in seen] == [VIEW, VIEW]
    assert seen[0]["requestContext"]["identity"]["userArn"] == AGENT.principal_arn


@pytest.mark.parametrize(
    ("why", "kwargs", "code"),
    [
        ("signed for another service", {"service": "s3"}, "invalid_credential_scope"),
        ("signed for another region", {"region": "eu-west-1"}, "invalid_credential_scope"),
        (
            "UNSIGNED-PAYLOAD, body swapped",
            {"headers": {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}},
            "payload_mismatch",
        ),
        (
            "the signed hash is of the view body, the edit body is sent",
            {"headers": {"X-Amz-Content-SHA256": hashlib.sha256(VIEW.encode()).hexdigest()}},
            "payload_mismatch",
        ),
    ],
)
def test_a_request_api_gateway_would_refuse_is_refused_and_never_reaches_the_handler(gateway, why, kwargs, code):
    gw, seen = gateway
    body = EDIT if "headers" in kwargs else VIEW
    status, error = send(gw, VIEW, body, **kwargs)
    assert (status, error["code"]) == (403, code), why
    assert seen == []


def test_unsigned_payload_is_refused_even_with_the_body_it_came_with(gateway) -> None:
    gw, seen = gateway
    status, error = send(gw, VIEW, VIEW, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert (status, error["code"]) == (403, "payload_mismatch") and seen == []
