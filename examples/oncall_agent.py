"""An on-call agent that fixes a stuck deployment with just-in-time EKS access, through eks-jit's MCP tools.

    eks-jit local up                                   # in one terminal (pip install 'eks-jit[local,mcp]')
    python examples/oncall_agent.py                    # in another, from the same folder

The agent holds no Kubernetes permission at rest. When the alert fires it runs the loop an LLM agent
runs with eks-jit as its MCP server (``eks-jit mcp``, started here as a stdio subprocess, signing as
local mode's ``agent-oncall``): look at what it may request -> request the narrowest grant -> get a
kubeconfig -> act -> give the access back. The "model" is a few lines of Python that read each tool's
answer (its ``status``, ``next``, and on a refusal its ``code``), so the loop runs without an LLM and
exits 0 only if the story played out.

Act: local mode emulates EKS's access entries and its authenticator, not a Kubernetes API server, so
the agent checks that the emulated cluster now maps its role (what kubectl would need) and prints the
``kubectl rollout restart`` it would run with the kubeconfig; against a real cluster it runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from eks_jit.client import ApiError, local_state
from eks_jit.local.authenticator import seen_by_authenticator

ALERT = {
    "id": "ALERT-4711",
    "title": "payments-api readiness probe failing",
    "cluster": "demo",
    "namespace": "payments",
    "deployment": "payments-api",
    "link": "https://alerts.example.com/ALERT-4711",
}
AGENT_ROLE = "arn:aws:iam::123456789012:role/agents/oncall-agent"


class StoryBroken(Exception):
    pass


def say(text: str) -> None:
    print(text, flush=True)


async def tool(client: Client, name: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    """(ok, answer): a tool error (isError) answers its ``{"code", "message", "next"}``."""
    result = await client.call_tool(name, arguments)
    body = dict(result.structured_content or {})
    shown = body.get("code") or body.get("status") or body.get("path") or ", ".join(body)
    say(f"  -> {name}({', '.join(f'{k}={v!r}' for k, v in arguments.items() if k != 'context')}): {shown}")
    return not result.is_error, body


def choose(entries: list[dict[str, Any]], alert: dict[str, Any]) -> dict[str, Any] | None:
    """The narrowest auto-approved scope that restarts a deployment in the alert's namespace."""
    for scope in ("rollout-restart", "edit"):
        for entry in entries:
            where = (entry["cluster"], entry.get("namespace"), entry["scope"])
            if where == (alert["cluster"], alert["namespace"], scope) and entry["decision"] != "deny":
                return entry
    return None


async def run(server: StdioServerParameters, state: dict[str, Any], alert: dict[str, Any]) -> None:
    async with Client(server, read_timeout_seconds=90) as client:
        say(f"alert {alert['id']}: {alert['title']} ({alert['cluster']}/{alert['namespace']})")

        ok, catalog = await tool(client, "list_requestable")
        scope, duration = "rollout-restart", "5m"
        if ok:
            entry = choose(catalog["entries"], alert)
            if entry is None:
                raise StoryBroken("nothing requestable restarts a deployment there: page a human")
            scope = entry["scope"]
            say(f"     catalog: {scope} is {entry['decision']}, at most {entry['max_duration']}")
        else:
            say(f"     {catalog['next']}")

        request = {
            "cluster": alert["cluster"],
            "namespace": alert["namespace"],
            "scope": scope,
            "duration": duration,
            "reason": f"{alert['id']}: {alert['title']}; rollout restart of {alert['deployment']}",
            "context": {
                "incident_url": alert["link"],
                "alert": alert["title"],
                "commands": [restart_command(alert, "<kubeconfig>")],
            },
        }
        ok, granted = await tool(client, "request_access", **request)
        if not ok:
            raise StoryBroken(f"refused: {granted['code']}: {granted['message']} ({granted['next']})")
        grant_id = granted["grant_id"]
        try:
            while granted["status"] in ("pending_approval", "approved"):
                say(f"     {granted['next']}")
                ok, granted = await tool(client, "wait_for_grant", grant_id=grant_id, wait_seconds=30)
            if granted["status"] != "active":
                raise StoryBroken(f"the grant is {granted['status']}: {granted['grant'].get('status_reason')}")

            ok, kube = await tool(client, "get_kubeconfig", grant_id=grant_id)
            if not ok:
                raise StoryBroken(f"no kubeconfig: {kube['code']}: {kube['next']}")
            await act(alert, kube, state)
        finally:
            ok, released = await tool(client, "release_access", grant_id=grant_id, reason=f"{alert['id']} handled")
        if not ok or released["status"] not in ("revoked", "cancelled", "expired"):
            raise StoryBroken(f"could not give the access back: {released}")
        say(f"     {released['next']}")


def restart_command(alert: dict[str, Any], kubeconfig: str) -> str:
    return f"kubectl --kubeconfig {kubeconfig} -n {alert['namespace']} rollout restart deployment/{alert['deployment']}"


async def act(alert: dict[str, Any], kube: dict[str, Any], state: dict[str, Any]) -> None:
    """The agent's work with its kubeconfig. EKS applies a new grant after a few seconds: until the
    cluster maps the role, kubectl would get 401, so the agent retries for up to 30 s."""
    command = restart_command(alert, kube["path"])
    # Against a real cluster: run `command` (eks_jit.client.retry_while_propagating rides out the 401s).
    deadline = time.monotonic() + 30
    while True:
        seen = await asyncio.to_thread(
            seen_by_authenticator, state["aws_endpoint"], state["region"], alert["cluster"], AGENT_ROLE
        )
        if seen["authenticated"]:
            break
        if time.monotonic() > deadline:
            raise StoryBroken("the cluster never mapped the agent's role")
        await asyncio.sleep(0.5)
    say(f"     the cluster maps the agent to {seen['kubernetesGroups']}; it runs:")
    say(f"     $ {command}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=".eks-jit", help="local mode's state (default: .eks-jit)")
    parser.add_argument("--as", dest="who", default="agent-oncall", help="local identity (default: agent-oncall)")
    args = parser.parse_args(argv)
    eks_jit = shutil.which("eks-jit") or str(Path(sys.executable).parent / "eks-jit")
    try:
        state = local_state(args.state_dir)
    except ApiError as exc:
        print(f"the on-call agent cannot start: {exc.message}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="oncall-kube-") as kubeconfigs:
        server = StdioServerParameters(
            command=eks_jit,
            args=["mcp", "--as", args.who, "--state-dir", str(Path(args.state_dir).resolve()),
                  "--kubeconfig-dir", kubeconfigs],
        )  # fmt: skip
        try:
            asyncio.run(run(server, state, ALERT))
        except StoryBroken as exc:
            print(f"the on-call agent stopped: {exc}", file=sys.stderr)
            return 1
    say("done: the deployment was restarted and the agent holds no access again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
