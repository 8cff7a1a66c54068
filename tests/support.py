"""Test helpers shared by every tier: a controllable clock, identities, API Gateway events."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
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


def default_start(now: datetime | None = None) -> datetime:
    """Where a test clock starts: 10:00:07 UTC on the day before the real one.

    A fixed time of day, so no test's hours and days depend on when the suite runs (a run at
    23:59:50, or one that crosses midnight, sees the same test times as any other); the day
    before, so the test clock is always in the past and within the 14 days CloudWatch Logs
    accepts events for (moto checks both against the real clock). Nothing may depend on the
    date itself: build dates and ranges from ``clock.start`` or ``clock.now()``."""
    today = (now or datetime.now(UTC)).astimezone(UTC)
    return (today - timedelta(days=1)).replace(hour=10, minute=0, second=7, microsecond=0)


class FakeClock:
    """Time that only moves when told to; ``sleep`` moves it. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or default_start()
        self._now = self.start
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
    headers: dict[str, str] | None = None,
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
    elif len(parts) == 3 and parts[1] == "approval-links":
        params = {"token": parts[2]}
        resource = "/v1/approval-links/{token}"
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "api.example.com", **(headers or {})},
        "multiValueHeaders": {k: [v] for k, v in {"Content-Type": "application/json", **(headers or {})}.items()},
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


def wait_until(check: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; fail the test after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at the same instant (threads behind a barrier); return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def recreate_cluster(name: str, **settings: Any) -> None:
    """Replace a moto cluster with one created with other settings (auth mode, logging)."""
    import boto3

    eks = boto3.client("eks", region_name=REGION)
    eks.delete_cluster(name=name)
    eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        **settings,
    )
