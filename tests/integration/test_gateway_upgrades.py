"""exec and attach through the gateway: a websocket from real kubectl, checked like any request, then
bridged to the emulated API server's websocket as the covering grant; recorded (masked) and cut when
the grant ends. SPDY, and an upgrade of anything but a pod's exec/attach/port-forward, are refused.

The example policies forbid exec to agents (tests/integration/test_gateway.py shows the block); here
``open_exec`` is the same configuration without that one guardrail."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from eks_jit.server.domain.grant import GrantStatus
from eks_jit.server.domain.recording import CommandOutcome
from eks_jit.server.handlers.upgrades import NOT_UPGRADED
from tests.integration.test_gateway import Through, edit_grant, running
from tests.integration.test_gateway import through as through  # the fixture, shared
from tests.integration.test_gateway_mode import RESTART, write_config
from tests.kube_stub import KUBECTL_DIR, kubectl
from tests.support import wait_until

POD = "payments-api-7c9d8f6b5d-x2k4p"
EXEC = f"/api/v1/namespaces/payments/pods/{POD}/exec"
NO_EXEC_FORBID = """@id("agents-never-exec")
@reason("agents may not exec into, attach to or port-forward to pods")
forbid (principal, action == EksJit::Action::"kube", resource)
when {
  principal.kind == "agent" && context.resource == "pods" &&
  ["exec", "attach", "portforward"].contains(context.subresource)
};
"""


@pytest.fixture
def open_exec(tmp_path: Path) -> Iterator[Through]:
    configs = {mode: write_config(tmp_path / mode, mode) for mode in ("entry", "gateway")}
    policies = configs["gateway"].parent / "policies.cedar"
    text = policies.read_text()
    assert NO_EXEC_FORBID in text  # the guardrail this fixture takes out is the example's, word for word
    policies.write_text(text.replace(NO_EXEC_FORBID, ""))
    with running(tmp_path, configs) as t:
        yield t


def exec_records(t: Through, grant_id: str) -> list[Any]:
    return [c for c in t.log.commands(grant_id)[0] if c.path.endswith("/exec")]


def websocket(t: Through, path: str, token: str | None = None) -> Any:
    """A websocket to the gateway as kubectl opens one (its CA, the v5 channel protocol, a bearer token)."""
    return connect(
        "wss://" + t.server.removeprefix("https://") + path,
        ssl=ssl.create_default_context(cadata=t.gateway.server.ca_pem),
        proxy=None,
        subprotocols=["v5.channel.k8s.io"],  # type: ignore[list-item]
        additional_headers={"authorization": f"Bearer {token or t.token()}"},
    )


def handshake(t: Through, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """A websocket handshake to the gateway as kubectl opens it: the status, and the Status body of a refusal."""

    async def go() -> tuple[int, dict[str, Any]]:
        try:
            async with websocket(t, path, token) as ws:
                await ws.close()
                return 101, {}
        except InvalidStatus as refused:
            return refused.response.status_code, json.loads(refused.response.body or b"{}")

    return asyncio.run(go())


# -- allowed: bridged, recorded, cut -----------------------------------------------------------------


def test_an_allowed_exec_runs_over_a_websocket_as_the_grant(open_exec: Through) -> None:
    grant = edit_grant(open_exec)
    ran = open_exec.kubectl("-n", "payments", "exec", POD, "--", "echo", "hello", "from", "the", "pod")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hello from the pod\n"
    (seen,) = [s for s in open_exec.api.cluster.seen if s.path.endswith("/exec")]
    assert (seen.method, seen.user, seen.authenticated) == ("GET", "eks-jit:grant", True)
    assert seen.extra["eks-jit.io/grant-id"] == (grant["id"],) and list(seen.groups) == ["eks-jit:edit:payments"]
    (record,) = exec_records(open_exec, grant["id"])
    # "get", as the API server's RequestInfo names a GET; it was authorized as a create (kube_rules.py)
    assert (record.outcome, record.status, record.verb) == (CommandOutcome.ALLOWED, 101, "get")
    assert "command=echo" in record.query
    assert record.body is not None and "stdout: hello from the pod" in record.body
    assert "ended by upstream" in record.summary


def test_what_is_typed_and_answered_is_recorded_masked(open_exec: Through) -> None:
    grant = edit_grant(open_exec)
    typed = "export KEY=AKIAIOSFODNN7EXAMPLE\n"
    config = str(open_exec.kubeconfig(open_exec.token()))
    ran = subprocess.run(
        [kubectl(), "--kubeconfig", config, "-n", "payments", "exec", "-i", POD, "--", "cat"],
        input=typed,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == typed  # the session itself is not masked: what the agent asked for, it gets
    (record,) = exec_records(open_exec, grant["id"])
    assert record.body is not None and "AKIAIOSFODNN7EXAMPLE" not in record.body
    assert "stdin > export KEY=" in record.body and "stdout: export KEY=" in record.body


def test_an_exec_open_when_the_grant_expires_is_cut_and_kubectl_says_why(open_exec: Through) -> None:
    grant = edit_grant(open_exec)
    config = open_exec.kubeconfig(open_exec.token())
    command = [kubectl(), "--kubeconfig", str(config), "-n", "payments", "exec", "-i", POD, "--", "sleep", "3600"]
    shell = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(s.path.endswith("/exec") for s in open_exec.api.cluster.seen), timeout=30)
        time.sleep(0.5)  # the bridge is up (kubectl has its 101)
        assert shell.poll() is None
        expires_at = open_exec.world.deps.store.get(grant["id"]).expires_at
        assert expires_at is not None
        open_exec.world.clock.set(expires_at + timedelta(seconds=1))
        _, stderr = shell.communicate(timeout=30)
    finally:
        shell.kill()
    assert shell.returncode != 0
    assert "eks-jit ended the session: grant expired" in stderr, stderr
    (record,) = exec_records(open_exec, grant["id"])
    assert "ended by grant expired" in record.summary


def test_an_exec_is_cut_when_the_grant_is_revoked(open_exec: Through) -> None:
    grant = edit_grant(open_exec)
    config = open_exec.kubeconfig(open_exec.token())
    command = [kubectl(), "--kubeconfig", str(config), "-n", "payments", "exec", "-i", POD, "--", "sleep", "3600"]
    shell = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(s.path.endswith("/exec") for s in open_exec.api.cluster.seen), timeout=30)
        time.sleep(0.5)
        status, _ = open_exec.world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={})
        assert status == 200
        _, stderr = shell.communicate(timeout=30)
    finally:
        shell.kill()
    assert "eks-jit ended the session: grant revoked" in stderr, stderr


# -- refused -------------------------------------------------------------------------------------------


def test_an_exec_over_a_websocket_get_is_blocked_by_the_guardrail_before_any_upgrade(through: Through) -> None:
    """Kubernetes #128743: an exec is a GET with Upgrade: websocket. Under edit (whose rules allow
    pods/exec), the example guardrail blocks it at the handshake, and nothing reaches the cluster."""
    grant = edit_grant(through)
    status, answer = handshake(through, EXEC + "?command=sh&stdin=true&stdout=true")
    assert status == 403 and "agents-never-exec" in answer["message"], answer
    assert not any("/exec" in s.path for s in through.api.cluster.seen)
    (record,) = exec_records(through, grant["id"])
    assert record.outcome is CommandOutcome.BLOCKED


def test_an_exec_no_grant_covers_is_refused_at_the_handshake(open_exec: Through) -> None:
    _, grant = open_exec.world.call("POST", "/v1/grants", body=RESTART)  # rollout-restart: no exec
    assert grant["status"] == "active"
    status, answer = handshake(open_exec, EXEC + "?command=sh")
    assert status == 403 and answer["kind"] == "Status", answer
    status, answer = handshake(open_exec, EXEC.replace("payments", "orders") + "?command=sh")
    assert status == 403, answer
    assert not any("/exec" in s.path for s in open_exec.api.cluster.seen)


def test_only_a_pods_exec_attach_or_port_forward_is_upgraded(open_exec: Through) -> None:
    edit_grant(open_exec)
    status, answer = handshake(open_exec, "/api/v1/namespaces/payments/pods?watch=true")
    assert status == 400 and "only exec, attach and port-forward" in answer["message"], answer


def test_spdy_is_refused_after_the_same_checks(open_exec: Through) -> None:
    """kubectl before 1.30 speaks SPDY (a POST with Upgrade: SPDY/3.1), which the gateway never
    bridges: refused with a message saying what works; still blocked first where a guardrail blocks."""
    edit_grant(open_exec)
    answer = open_exec.http("POST", EXEC + "?command=sh", headers={"connection": "Upgrade", "upgrade": "SPDY/3.1"})
    assert answer.status_code == 400 and answer.json()["message"] == NOT_UPGRADED
    old = KUBECTL_DIR / "kubectl.1.29"
    if old.exists():
        command = [str(old), "--kubeconfig", str(open_exec.kubeconfig(open_exec.token())), "-n", "payments"]
        ran = subprocess.run(
            [*command, "exec", POD, "--", "id"], capture_output=True, text=True, timeout=60, check=False
        )
        assert ran.returncode != 0 and "over a websocket only" in ran.stderr, ran.stderr
    assert not any("/exec" in s.path for s in open_exec.api.cluster.seen)


def test_an_ended_grant_opens_no_new_session(open_exec: Through) -> None:
    grant = edit_grant(open_exec)
    token = open_exec.token()
    open_exec.world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={})
    wait_until(lambda: open_exec.world.deps.store.get(grant["id"]).status is GrantStatus.REVOKED)
    status, _ = handshake(open_exec, EXEC + "?command=sh", token=token)
    assert status == 403


def session(t: Through, path: str, frames: list[bytes]) -> list[bytes]:
    """An exec as an interactive terminal sends it: each frame as given (one keystroke each), then what
    the pod answered until it closes."""

    async def go() -> list[bytes]:
        async with websocket(t, path) as ws:
            for frame in frames:
                await ws.send(frame)
            await ws.send(b"\xff\x00")  # v5: close stdin
            return [m if isinstance(m, bytes) else m.encode() async for m in ws]

    return asyncio.run(go())


def test_a_key_typed_one_keystroke_per_frame_is_still_masked_in_the_record(open_exec: Through) -> None:
    """Red team: a terminal sends each keystroke as its own frame, and a pod may answer a line in pieces;
    a mask that looks at one frame at a time never sees the whole key."""
    grant = edit_grant(open_exec)
    typed = "export KEY=AKIAIOSFODNN7EXAMPLE\n"
    answered = session(open_exec, EXEC + "?command=cat&stdin=true&stdout=true", [b"\x00" + c.encode() for c in typed])
    assert b"AKIAIOSFODNN7EXAMPLE" in b"".join(a[1:] for a in answered if a[:1] == b"\x01")  # cat echoed it, unmasked
    (record,) = exec_records(open_exec, grant["id"])
    assert "AKIA" not in (record.body or "") and "AKIAIOSF" not in (record.body or "")
    assert "stdin > export KEY=****" in (record.body or ""), record.body
