"""End to end against `eks-jit local up`: cluster demo-gateway through eks-jit's data-path gateway,
with real kubectl and the kubeconfig `eks-jit kubeconfig` writes (its exec runs `eks-jit token`), as
an agent on a laptop would use them. Real time: local mode's grants may be seconds long."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BIN, Local
from tests.kube_stub import kubectl

pytestmark = pytest.mark.e2e
RESTART = ("--cluster", "demo-gateway", "--namespace", "payments", "--scope", "rollout-restart")


def request(local: Local, *extra: str, duration: str = "10m") -> dict[str, Any]:
    done = local.cli(
        "request", *RESTART, "--duration", duration, "--reason", "probe failing", *extra, who="agent-oncall"
    )
    assert done.returncode == 0, done.stderr
    grant = json.loads(done.stdout)
    assert (grant["status"], grant["access_mode"]) == ("active", "gateway"), grant
    return grant


def kubeconfig(local: Local, grant_id: str, tmp_path: Path) -> Path:
    done = local.cli("kubeconfig", grant_id, who="agent-oncall")
    assert done.returncode == 0, done.stderr
    path = tmp_path / f"{grant_id}.json"
    path.write_text(done.stdout)
    return path


def run(config: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    # kubectl runs the exec plugin `eks-jit token ...`: it must be on PATH, as after `pip install eks-jit`
    env = {**os.environ, "PATH": f"{BIN.parent}:{os.environ.get('PATH', '')}"}
    command = [kubectl(), "--kubeconfig", str(config), "--cache-dir", str(tmp / "cache"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


def test_the_on_call_story_through_the_gateway(local: Local, tmp_path: Path) -> None:
    assert local.state["gateway_endpoint"].startswith("https://127.0.0.1:")
    banner = (local.state_dir / "local-mode.log").read_text()
    assert f"gateway       {local.state['gateway_endpoint']}   (kubectl for gateway clusters" in banner
    grant = request(local)
    config = kubeconfig(local, grant["id"], tmp_path)
    server = json.loads(config.read_text())["clusters"][0]["cluster"]["server"]
    assert server == f"{local.state['gateway_endpoint']}/clusters/demo-gateway"

    restart = run(config, "-n", "payments", "rollout", "restart", "deployment/payments-api", tmp=tmp_path)
    assert restart.returncode == 0 and "restarted" in restart.stdout, restart.stderr
    shown = run(config, "-n", "payments", "get", "deploy", "payments-api", "-o", "json", tmp=tmp_path)
    assert (
        "kubectl.kubernetes.io/restartedAt" in json.loads(shown.stdout)["spec"]["template"]["metadata"]["annotations"]
    )

    image = run(config, "-n", "payments", "set", "image", "deployment/payments-api", "app=evil:1", tmp=tmp_path)
    assert image.returncode == 1 and "rollout-restart may change only" in image.stderr, image.stderr
    secrets = run(config, "-n", "payments", "get", "secrets", tmp=tmp_path)
    assert secrets.returncode == 1 and "(Forbidden): eks-jit refuses list secrets" in secrets.stderr, secrets.stderr
    orders = run(config, "-n", "orders", "get", "pods", tmp=tmp_path)
    assert orders.returncode == 1 and "namespace orders is not payments" in orders.stderr, orders.stderr
    # `eks-jit session ID` lists each of them: the restart's patch, the refused image change and reads
    session = json.loads(local.cli("session", grant["id"], who="agent-oncall").stdout)["commands"]
    seen = {(c["verb"], c["path"].rsplit("/", 1)[-1], c["outcome"]) for c in session}
    assert {("patch", "payments-api", "allowed"), ("patch", "payments-api", "refused")} <= seen
    assert {("list", "secrets", "refused"), ("list", "pods", "refused")} <= seen
    printed = subprocess.run(
        [str(BIN), "session", grant["id"], "--as", "agent-oncall", "--state-dir", str(local.state_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert printed.returncode == 0 and f"{len(session)} commands" in printed.stdout.splitlines()[0], printed.stderr

    revoked = local.cli("revoke", grant["id"], "--reason", "done", who="agent-oncall")
    assert revoked.returncode == 0, revoked.stderr
    after = run(config, "-n", "payments", "get", "deploy", tmp=tmp_path)
    assert after.returncode == 1 and "the caller holds no grant on the cluster" in after.stderr, after.stderr


def test_a_watch_open_at_expiry_is_closed_and_the_kubeconfig_refused(local: Local, tmp_path: Path) -> None:
    grant = request(local, duration="6s")
    config = kubeconfig(local, grant["id"], tmp_path)
    env = {**os.environ, "PATH": f"{BIN.parent}:{os.environ.get('PATH', '')}"}
    watch = subprocess.Popen(
        [kubectl(), "--kubeconfig", str(config), "-n", "payments", "get", "deploy", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert watch.wait(timeout=30) == 0  # kubectl ends a watch the server ends, with 0
        ended = datetime.now(UTC)
        out = watch.stdout.read() if watch.stdout else ""
    finally:
        watch.kill()
    expires = datetime.fromisoformat(grant["expires_at"])
    assert "payments-api" in out
    assert expires <= ended, "the watch ended before the grant did"
    # the gateway's clock is this machine's: it closes the stream within its check interval of expires_at
    assert (ended - expires).total_seconds() < 5
    again = run(config, "-n", "payments", "get", "deploy", tmp=tmp_path)
    # before the scheduled revoke has run the grant is active but past expires_at; after, it is expired
    assert again.returncode == 1, again.stdout
    assert "expired at" in again.stderr or "no grant is in force on the cluster" in again.stderr, again.stderr


def test_a_session_bound_grant_serves_its_session_only(local: Local, tmp_path: Path) -> None:
    grant = request(local, "--session", "task-42")
    assert grant["session"] == "task-42"
    config = kubeconfig(local, grant["id"], tmp_path)
    kube = json.loads(config.read_text())
    args = kube["users"][0]["user"]["exec"]["args"]
    assert args[args.index("--session") + 1] == "task-42"
    assert run(config, "-n", "payments", "get", "deploy", tmp=tmp_path).returncode == 0

    args[args.index("--session") + 1] = "task-43"  # another task of the same role
    other = tmp_path / "other.json"
    other.write_text(json.dumps(kube))
    refused = run(other, "-n", "payments", "get", "deploy", tmp=tmp_path / "other")
    assert refused.returncode == 1 and "bound to session task-42, not task-43" in refused.stderr, refused.stderr


def test_token_session_outside_local_mode_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN), "token", "--cluster", "demo-gateway", "--session", "task-42"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    assert done.returncode == 2 and "--session is for local mode" in done.stderr, done.stderr


def test_guardrails_under_an_approved_edit_grant(local: Local, tmp_path: Path) -> None:
    """Issue 18's story with real kubectl against `eks-jit local up`. Last in the file: it deletes the
    seeded Deployment, which the tests above use (the local fixture lives for the whole session)."""
    done = local.cli(
        "request", "--cluster", "demo-gateway", "--namespace", "payments", "--scope", "edit", "--duration", "10m",
        "--reason", "check the DB secret and the logs", who="agent-oncall",
    )  # fmt: skip
    grant = json.loads(done.stdout)
    assert grant["status"] == "pending_approval", done.stderr
    assert local.cli("approve", grant["id"], who="approver-alice").returncode == 0
    waited = local.cli("wait", grant["id"], "--timeout", "30", who="agent-oncall")
    assert json.loads(waited.stdout)["status"] == "active", waited.stderr
    config = kubeconfig(local, grant["id"], tmp_path)

    secret = run(config, "-n", "payments", "get", "secret", "payments-db", "-o", "json", tmp=tmp_path)
    assert secret.returncode == 0, secret.stderr
    assert json.loads(secret.stdout)["data"] == {"password": "****", "username": "****"}
    logs = run(config, "-n", "payments", "logs", "deployment/payments-api", tmp=tmp_path)
    assert logs.returncode == 0 and "AKIA" not in logs.stdout and "aws_access_key_id=****" in logs.stdout
    shell = run(config, "-n", "payments", "exec", "deployment/payments-api", "--", "sh", tmp=tmp_path)
    assert shell.returncode == 1 and "guardrail agents-never-exec blocks" in shell.stderr, shell.stderr

    held = run(config, "-n", "payments", "delete", "deployment", "payments-api", tmp=tmp_path)
    assert held.returncode == 1, held.stdout
    hold = held.stderr.split("approval required: eks-jit approve ", 1)[1].split()[0]
    assert local.cli("approve", hold, who="agent-oncall").returncode != 0  # never its requester
    assert local.cli("approve", hold, who="approver-alice").returncode == 0
    assert json.loads(local.cli("wait", hold, "--timeout", "30", who="agent-oncall").stdout)["status"] == "active"
    deleted = run(config, "-n", "payments", "delete", "deployment", "payments-api", tmp=tmp_path)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout, deleted.stderr
    assert json.loads(local.cli("status", hold, who="agent-oncall").stdout)["status"] == "expired"  # used once

    assert local.cli("revoke", grant["id"], "--reason", "done", who="agent-oncall").returncode == 0
    after = run(config, "-n", "payments", "get", "secret", "payments-db", tmp=tmp_path)
    assert after.returncode == 1 and "no grant" in after.stderr, after.stderr
    session = json.loads(local.cli("session", grant["id"], who="agent-oncall").stdout)
    assert {"allowed", "blocked", "held", "approved"} <= {c["outcome"] for c in session["commands"]}
