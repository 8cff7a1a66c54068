"""Test helpers shared by every tier: a controllable clock, identities, API Gateway events."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config" / "example" / "eks-jit.yaml"
ACCOUNT = "111122223333"
REGION = "eu-west-1"
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/agents/oncall-agent"
ONCALL_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall-agent/incident-4711"
OTHER_AGENT = f"arn:aws:iam::{ACCOUNT}:role/agents/report-agent"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/eks-jit-admin"
CLUSTER = "prod-eks"


class FakeClock:
    """Time that only moves when told to; ``sleep`` moves it. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 10, 0, 7, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=max(0.0, seconds)))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, when)


def api_event(
    method: str,
    path: str,
    *,
    caller: str | None = ONCALL_SESSION,
    body: Any = None,
    query: dict[str, str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as it arrives after AWS_IAM authorisation: the SigV4
    signer's identity is in ``requestContext.identity``."""
    identity: dict[str, Any] = {"sourceIp": "10.0.0.7", "userAgent": "eks-jit-tests"}
    if caller:
        account = caller.split(":")[4]
        identity |= {
            "accountId": account,
            "caller": "AROAEXAMPLE:incident-4711",
            "user": "AROAEXAMPLE:incident-4711",
            "userArn": caller,
            "accessKey": "ASIAEXAMPLE",
            "cognitoIdentityPoolId": None,
        }
    resource = path
    params = None
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "grants":
        params = {"grant_id": parts[2]}
        resource = "/v1/grants/{grant_id}" + ("/" + "/".join(parts[3:]) if len(parts) > 3 else "")
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "api.example.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "identity": identity,
        },
        "body": text,
        "isBase64Encoded": False,
    }


class LambdaContextStub:
    function_name = "eks-jit-api"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:eks-jit-api"
    aws_request_id = "test-request"
