"""The data-path gateway (issue 17): its overhead per request, and how exactly it ends access.

Both in one process, over HTTPS on localhost: the emulated Kubernetes API (eks_jit/emulation) and the
real gateway app in front of it, with the grant store in memory (the deployed gateway adds two
consistent DynamoDB reads and one write per request: see docs/performance.md) and local identities.

- **Overhead**: the same GET of a deployment, sequential over one kept-alive connection, directly
  to the emulated API and through the gateway, interleaved in one run; p50/p99 of each and the added
  milliseconds (a report: the deployed figure depends on DynamoDB and Lambda).
- **Expiry**: a grant that ends a second from now; one client asks every 5 ms, one holds a watch;
  the time from ``expires_at`` to the first refusal and to the watch being closed (targets: the
  first request at or after ``expires_at`` is refused, so the figure is bounded by the poll interval;
  the watch within a stream check, 1 s here).
"""

from __future__ import annotations

import http.client
import ssl
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import percentile  # noqa: E402

REQUESTS = 400
WARMUP = 40
PATH = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
STREAM_CHECK = 1.0  # seconds
ACCESS_KEY = "AKIABENCHGATEWAY0001"


class OneGrantStore:
    """The two reads the gateway makes, over one grant (whose status a test may change)."""

    def __init__(self, grant: Any) -> None:
        self.grant = grant

    def active_for(self, principal: str, cluster: str) -> list[Any]:
        g = self.grant
        ok = g.requester == principal and g.cluster == cluster and g.status.value == "active"
        return [g] if ok else []

    def get(self, grant_id: str) -> Any:
        return self.grant


def _grant(catalog: Any, principal: str, now: datetime, lasts: timedelta) -> Any:
    from eks_jit.server.domain.grant import Decision, Grant, GrantStatus

    return Grant(
        id=str(uuid.uuid4()),
        requester=principal,
        cluster="demo-gateway",
        namespaces=("payments",),
        scope="rollout-restart",
        reason="bench",
        duration=lasts,
        status=GrantStatus.ACTIVE,
        version=3,
        created_at=now,
        decision=Decision(outcome="auto_approve", policies=("bench",)),
        activated_at=now,
        expires_at=now + lasts,
    )


class Setup:
    def __init__(self, lasts: timedelta) -> None:
        from botocore.credentials import Credentials

        from eks_jit.local import kube_gateway
        from eks_jit.local.sigv4 import Identity
        from eks_jit.server.config import load_catalog
        from eks_jit.server.logic.ports import SystemClock
        from eks_jit.token import token_for

        catalog = load_catalog(ROOT / "config" / "local" / "eks-jit.yaml")
        principal = next(p.arn for p in catalog.principals if p.name == "agent-oncall")
        identity = Identity("bench", ACCESS_KEY, "bench-secret", principal)
        self.store = OneGrantStore(_grant(catalog, principal, datetime.now(UTC), lasts))
        self.running = kube_gateway.start(
            catalog, self.store, {ACCESS_KEY: identity}, SystemClock(), stream_check_seconds=STREAM_CHECK
        )
        self.token, _ = token_for(
            "demo-gateway", datetime.now(UTC), region="us-east-1", credentials=Credentials(ACCESS_KEY, "bench-secret")
        )
        self.upstream = self.running.clusters["demo-gateway"]

    def connection(self, url: str, ca_pem: str) -> http.client.HTTPSConnection:
        parts = urlsplit(url)
        context = ssl.create_default_context(cadata=ca_pem)
        return http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context, timeout=30)

    def stop(self) -> None:
        self.running.stop()


def _get(conn: http.client.HTTPSConnection, path: str, token: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    answer = conn.getresponse()
    answer.read()
    return answer.status, time.perf_counter() - started


def overhead() -> list[dict[str, Any]]:
    setup = Setup(timedelta(minutes=30))
    try:
        direct = setup.connection(setup.upstream.url, setup.upstream.ca_pem)
        through = setup.connection(setup.running.url, setup.running.server.ca_pem)
        token = setup.running.upstream_tokens["demo-gateway"]
        plain, gated = [], []
        for i in range(WARMUP + REQUESTS):
            status_a, a = _get(direct, PATH, token)
            status_b, b = _get(through, "/clusters/demo-gateway" + PATH, setup.token)
            assert (status_a, status_b) == (200, 200), (status_a, status_b)
            if i >= WARMUP:
                plain.append(a)
                gated.append(b)
    finally:
        setup.stop()
    p50a, p99a = statistics.median(plain) * 1000, percentile(plain, 99) * 1000
    p50b, p99b = statistics.median(gated) * 1000, percentile(gated, 99) * 1000
    return [
        {
            "figure": f"gateway: GET direct to the emulated API ({REQUESTS} sequential)",
            "value": f"p50 {p50a:.2f} ms, p99 {p99a:.2f} ms",
            "target": "report",
            "pass": True,
        },
        {
            "figure": "gateway: the same GET through the gateway (store in memory)",
            "value": f"p50 {p50b:.2f} ms, p99 {p99b:.2f} ms (+{p50b - p50a:.2f} ms p50)",
            "target": "report",
            "pass": True,
        },
    ]


def expiry() -> list[dict[str, Any]]:
    setup = Setup(timedelta(seconds=1.5))
    expires_at = setup.store.grant.expires_at
    refused_at: list[datetime] = []
    closed_at: list[datetime] = []

    def poll() -> None:
        conn = setup.connection(setup.running.url, setup.running.server.ca_pem)
        while datetime.now(UTC) < expires_at + timedelta(seconds=5):
            status, _ = _get(conn, "/clusters/demo-gateway" + PATH, setup.token)
            if status == 403:
                refused_at.append(datetime.now(UTC))
                return
            time.sleep(0.005)

    def watch() -> None:
        conn = setup.connection(setup.running.url, setup.running.server.ca_pem)
        conn.request(
            "GET",
            "/clusters/demo-gateway/apis/apps/v1/namespaces/payments/deployments?watch=true",
            headers={"Authorization": f"Bearer {setup.token}"},
        )
        answer = conn.getresponse()
        while answer.read1(65536):
            pass
        closed_at.append(datetime.now(UTC))

    try:
        threads = [threading.Thread(target=poll), threading.Thread(target=watch)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
    finally:
        setup.stop()
    assert refused_at and closed_at, "no refusal or the watch was not closed"
    refusal_ms = (refused_at[0] - expires_at).total_seconds() * 1000
    closed_ms = (closed_at[0] - expires_at).total_seconds() * 1000
    return [
        {
            "figure": "gateway: expires_at -> first refusal (5 ms polls)",
            "value": f"{refusal_ms:.1f} ms",
            "target": "<= 50 ms",
            "pass": 0 <= refusal_ms <= 50,
        },
        {
            "figure": "gateway: expires_at -> open watch closed",
            "value": f"{closed_ms:.1f} ms",
            "target": "<= 1000 ms",
            "pass": 0 <= closed_ms <= 1000,
        },
    ]


def guardrails() -> list[dict[str, Any]]:
    """Guardrail evaluation per request (issue 18): PolicySet.guard for a request that passes and one
    that is blocked, against the same question asked as a grant request (the api's decide)."""
    from eks_jit.server.config import load_config
    from eks_jit.server.domain.policy import KubeQuestion
    from eks_jit.server.domain.question import AccessQuestion

    catalog, policies = load_config(ROOT / "config" / "local" / "eks-jit.yaml")
    agent = next(p.arn for p in catalog.principals if p.name == "agent-oncall")
    passing = KubeQuestion(
        agent, "demo-gateway", "patch", "apps", "deployments", "", "payments", "x", "rollout-restart"
    )
    blocked = KubeQuestion(agent, "demo-gateway", "create", "", "pods", "exec", "payments", "x", "edit")
    assert policies.guard(passing).outcome == "pass" and policies.guard(blocked).outcome == "block"
    asked = AccessQuestion(agent, "demo-gateway", "rollout-restart", "payments", timedelta(minutes=5))

    def timed(call: Any, n: int = 500) -> float:
        started = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - started) / n * 1000

    guard_ms = statistics.median(timed(lambda: policies.guard(passing)) for _ in range(3))
    block_ms = statistics.median(timed(lambda: policies.guard(blocked)) for _ in range(3))
    decide_ms = statistics.median(timed(lambda: policies.decide(asked), 100) for _ in range(3))
    return [
        {
            "figure": "guardrails: policy evaluation per gateway request (pass / block)",
            "value": f"{guard_ms:.2f} ms / {block_ms:.2f} ms (a grant request's decide: {decide_ms:.2f} ms)",
            "target": "report",
            "pass": True,
        }
    ]


def masking() -> list[dict[str, Any]]:
    """Masking throughput (issue 18): a 1 MB SecretList, and a 1 MB log streamed in 4 KiB chunks."""
    import base64
    import json

    from eks_jit.server.domain.masking import LogMasker, Masking, mask_json_bytes

    rules = Masking.of()
    items = []
    while len(json.dumps(items)) < 1_000_000:
        n = len(items)
        value = base64.b64encode(f"secret-{n}".encode() * 8).decode()
        items.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s-{n}"}, "data": {"password": value}}
        )
    listed = json.dumps({"kind": "SecretList", "apiVersion": "v1", "items": items}).encode()
    line = b"2026 INFO request served in 3 ms from 10.0.0.1 user=alice AKIAIOSFODNN7EXAMPLE ok\n"
    log = line * (1_000_000 // len(line))

    def rate(work: Any, size: int) -> float:
        started = time.perf_counter()
        work()
        return size / (time.perf_counter() - started) / 1_000_000

    def stream() -> None:
        masker = LogMasker(rules)
        for i in range(0, len(log), 4096):
            masker.feed(log[i : i + 4096])
        masker.end()

    secrets = statistics.median(rate(lambda: mask_json_bytes(listed, rules), len(listed)) for _ in range(3))
    logs = statistics.median(rate(stream, len(log)) for _ in range(3))
    return [
        {
            "figure": f"masking: a {len(listed) / 1e6:.1f} MB SecretList ({len(items):,} Secrets)",
            "value": f"{secrets:.1f} MB/s",
            "target": "report",
            "pass": True,
        },
        {
            "figure": f"masking: a {len(log) / 1e6:.1f} MB log streamed in 4 KiB chunks",
            "value": f"{logs:.1f} MB/s",
            "target": "report",
            "pass": True,
        },
    ]


def measure() -> list[dict[str, Any]]:
    return [*overhead(), *expiry(), *guardrails(), *masking()]


if __name__ == "__main__":
    for row in measure():
        print(f"{row['figure']:<70} {row['value']:<40} {row['target']:<10} {'pass' if row['pass'] else 'MISS'}")
