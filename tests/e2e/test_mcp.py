"""``eks-jit mcp`` through the real boundaries: the MCP SDK's own client drives the server as a stdio
subprocess and over streamable HTTP, against local mode (one, shared with the other e2e tests).
Approvers act through the Python client, as a human's tools would."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from eks_jit.client import local_client
from tests.e2e.conftest import BIN, Local

pytestmark = pytest.mark.e2e

TOOLS = {"whoami", "list_requestable", "request_access", "get_grant", "wait_for_grant", "extend_access",
         "release_access", "get_kubeconfig"}  # fmt: skip
RESTART = {"cluster": "demo", "namespace": "payments", "scope": "rollout-restart", "duration": "2m",
           "reason": "payments-api readiness probe failing: rollout restart"}  # fmt: skip
EDIT = {"cluster": "demo", "namespace": "payments", "scope": "edit", "duration": "2m",
        "reason": "payments-api needs a corrected feature flag"}  # fmt: skip
Scenario = Callable[[Client], Awaitable[None]]


def stdio(local: Local, who: str, kubeconfigs: Path) -> StdioServerParameters:
    args = ["mcp", "--as", who, "--state-dir", str(local.state_dir), "--kubeconfig-dir", str(kubeconfigs)]
    return StdioServerParameters(command=str(BIN), args=args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url(local: Local, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``eks-jit mcp --transport http`` for the module, signing as agent-oncall."""
    port = free_port()
    kubeconfigs = tmp_path_factory.mktemp("mcp-http-kube")
    log_path = kubeconfigs.parent / "mcp-http.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BIN), "mcp", "--transport", "http", "--port", str(port), "--as", "agent-oncall",
             "--state-dir", str(local.state_dir), "--kubeconfig-dir", str(kubeconfigs)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"eks-jit mcp did not listen: {log_path.read_text()}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
        process.terminate()
        process.wait(timeout=30)


def drive(server: StdioServerParameters | str, scenario: Scenario) -> None:
    async def run() -> None:
        async with Client(server, read_timeout_seconds=90) as client:
            await scenario(client)

    asyncio.run(run())


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed: its structured answer."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def refused(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must be a tool error (isError): its structured ``{"code", "message", "next"}``."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return dict(result.structured_content or {"text": result.content[0].text})  # type: ignore[union-attr]


def agent_holds_nothing(local: Local) -> bool:
    return "arn:aws:iam::123456789012:role/agents/oncall-agent" not in local.entries()


async def request_kubeconfig_release(client: Client, local: Local) -> None:
    tools = await client.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    assert all(t.description and len(t.description) > 80 for t in tools.tools)
    me = await call(client, "whoami")
    assert me["principal"].endswith("role/agents/oncall-agent")

    granted = await call(client, "request_access", **RESTART)
    grant_id = granted["grant_id"]
    try:
        assert granted["status"] == "active" and "get_kubeconfig" in granted["next"]
        assert not agent_holds_nothing(local)

        kube = await call(client, "get_kubeconfig", grant_id=grant_id)
        path = Path(kube["path"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = yaml.safe_load(path.read_text())
        assert config["current-context"] == kube["context"] and kube["namespace"] == "payments"
        assert config["clusters"][0]["name"] == "demo"
    finally:
        released = await call(client, "release_access", grant_id=grant_id, reason="done: restarted")
    assert released["status"] == "revoked" and agent_holds_nothing(local)
    again = await call(client, "release_access", grant_id=grant_id)
    assert again["status"] == "revoked" and "nothing to release" in again["next"]
    ended = await refused(client, "get_kubeconfig", grant_id=grant_id)
    assert ended["code"] == "not_active" and ended["next"]


def test_stdio_discover_request_kubeconfig_release(local: Local, tmp_path: Path) -> None:
    drive(stdio(local, "agent-oncall", tmp_path), lambda client: request_kubeconfig_release(client, local))


def test_http_discover_request_kubeconfig_release(local: Local, http_url: str) -> None:
    drive(http_url, lambda client: request_kubeconfig_release(client, local))


def test_a_manual_request_waits_for_an_approver_then_wait_for_grant_answers_active(local: Local, http_url: str) -> None:
    alice = local_client("approver-alice", local.state_dir)

    async def scenario(client: Client) -> None:
        pending = await call(client, "request_access", **EDIT, wait_seconds=1)
        grant_id = pending["grant_id"]
        try:
            assert pending["status"] == "pending_approval"
            assert "wait_for_grant" in pending["next"] and grant_id in pending["next"]
            assert agent_holds_nothing(local)
            still = await call(client, "wait_for_grant", grant_id=grant_id, wait_seconds=1)
            assert still["status"] == "pending_approval" and grant_id in still["next"]

            await asyncio.to_thread(alice.approve, grant_id, "go ahead")
            active = await call(client, "wait_for_grant", grant_id=grant_id, wait_seconds=30)
            assert active["status"] == "active" and active["grant"]["approved_by"]
            assert not agent_holds_nothing(local)
        finally:
            await call(client, "release_access", grant_id=grant_id, reason="fixed")
        assert agent_holds_nothing(local)

    drive(http_url, scenario)


def test_a_pending_request_is_withdrawn_by_release_access(local: Local, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        pending = await call(client, "request_access", **EDIT, wait_seconds=0)
        released = await call(client, "release_access", grant_id=pending["grant_id"], reason="not needed after all")
        assert released["status"] == "cancelled"

    drive(stdio(local, "agent-oncall", tmp_path), scenario)


def test_a_denied_request_is_a_tool_error_with_policy_denied(local: Local, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        error = await refused(client, "request_access", **RESTART | {"scope": "view"})
        assert error["code"] == "policy_denied" and error["grant_id"] and "list_requestable" in error["next"]
        verdict = await call(client, "request_access", **RESTART | {"scope": "view"}, dry_run=True)
        assert verdict["dry_run"] is True and verdict["decision"] == "deny"
        bad = await refused(client, "request_access", **RESTART | {"duration": "forever"})
        assert bad["code"] == "invalid_duration" and bad["field"] == "duration"

    drive(stdio(local, "agent-other", tmp_path), scenario)


def test_a_wait_longer_than_the_bound_is_refused_before_any_call(local: Local, http_url: str) -> None:
    async def scenario(client: Client) -> None:
        result = await client.call_tool("wait_for_grant", {"grant_id": "x", "wait_seconds": 600})
        assert result.is_error

    drive(http_url, scenario)


def test_list_requestable_offers_each_agent_what_policy_would_decide(local: Local, tmp_path: Path) -> None:
    async def oncall(client: Client) -> None:
        entries = (await call(client, "list_requestable"))["entries"]
        by_key = {(e["cluster"], e["namespace"], e["scope"]): e for e in entries}
        assert by_key[("demo", "payments", "rollout-restart")]["decision"] == "auto"
        assert by_key[("demo", "payments", "edit")]["decision"] == "manual"

    async def other(client: Client) -> None:
        entries = (await call(client, "list_requestable"))["entries"]
        assert [e for e in entries if e["decision"] != "deny"] == []

    drive(stdio(local, "agent-oncall", tmp_path), oncall)
    drive(stdio(local, "agent-other", tmp_path), other)


def test_without_local_mode_the_server_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN), "mcp", "--as", "agent-oncall", "--state-dir", str(tmp_path), "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "EKS_JIT_ENDPOINT": ""},
    )  # fmt: skip
    assert done.returncode == 2 and json.loads(done.stdout)["code"] == "no_endpoint", done.stderr
    assert done.stderr.count("\n") == 1


def test_the_oncall_agent_example_plays_its_story_against_local_mode(local: Local) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "oncall_agent.py"
    done = subprocess.run(
        [sys.executable, str(example), "--state-dir", str(local.state_dir)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "request_access" in done.stdout and "get_kubeconfig" in done.stdout and "release_access" in done.stdout
    assert "rollout restart deployment/payments-api" in done.stdout
    assert agent_holds_nothing(local)


def test_a_context_reaches_the_approver_and_a_retried_call_with_its_key_is_one_grant(
    local: Local, http_url: str
) -> None:
    context = {
        "incident_url": "https://alerts.example.com/ALERT-4711",
        "task_id": "INC-4711",
        "commands": ["kubectl -n payments rollout restart deployment/payments-api"],
    }

    async def scenario(client: Client) -> None:
        first = await call(
            client, "request_access", **EDIT, context=context, idempotency_key="inc-4711-edit", wait_seconds=0
        )
        again = await call(
            client, "request_access", **EDIT, context=context, idempotency_key="inc-4711-edit", wait_seconds=0
        )
        try:
            assert again["grant_id"] == first["grant_id"] and first["status"] == "pending_approval"
            assert first["grant"]["context"] == {**context, "alert": None}
            mine = await asyncio.to_thread(local_client("approver-alice", local.state_dir).approvals)
            assert [g["context"]["task_id"] for g in mine if g["id"] == first["grant_id"]] == ["INC-4711"]
            bad = await refused(client, "request_access", **EDIT, context={"incident_url": "javascript:alert(1)"})
            assert bad["code"] == "invalid_context" and bad["field"].startswith("context")
        finally:
            await call(client, "release_access", grant_id=first["grant_id"], reason="test done")

    drive(http_url, scenario)
