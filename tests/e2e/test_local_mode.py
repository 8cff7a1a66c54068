"""End to end against `eks-jit local up` in a subprocess: the CLI, SigV4 over plain HTTP, and
a standard AWS client watching the emulated cluster."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eks_jit.local.authenticator import seen_by_authenticator
from tests.e2e.conftest import BIN

AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
pytestmark = pytest.mark.e2e


def signed(local, path: str, body: dict | None, key: str, secret: str, method: str = "POST") -> tuple[int, dict]:
    url = local.state["api_endpoint"] + path
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method=method, url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "execute-api", local.state["region"]).add_auth(request)
    return send(url, method, data if method != "GET" else None, dict(request.headers.items()))


def send(url: str, method: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, method=method, headers=headers), timeout=30
        ) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_on_call_story_through_the_cli(local) -> None:
    assert AGENT not in local.entries()
    done = local.cli(
        "request", "--cluster", "demo", "--namespace", "payments", "--scope", "rollout-restart",
        "--duration", "6s", "--reason", "readiness probe failing", who="agent-oncall",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    grant = json.loads(done.stdout)
    assert grant["status"] == "active"
    assert AGENT in local.entries()
    entry = local.aws("eks").describe_access_entry(clusterName="demo", principalArn=AGENT)["accessEntry"]
    assert entry["kubernetesGroups"] == ["eks-jit:rollout-restart:payments"]
    expires = datetime.fromisoformat(grant["expires_at"])
    while AGENT in local.entries():
        assert datetime.now(UTC) < expires + timedelta(seconds=3), "the entry outlived its window"
        time.sleep(0.05)
    lag = (datetime.now(UTC) - expires).total_seconds()
    assert lag < 2.0, f"access outlived its window by {lag:.2f}s"
    status = json.loads(local.cli("status", grant["id"], who="agent-oncall").stdout)
    assert status["status"] == "expired"
    assert [e["type"] for e in status["events"]] == [
        "requested", "approved", "activated", "access_granted", "expired", "access_removed",
    ]  # fmt: skip


def test_a_human_approves_with_the_cli_and_the_agent_revokes_early(local) -> None:
    done = local.cli(
        "request", "--cluster", "demo", "--namespace", "payments", "--scope", "edit",
        "--duration", "5m", "--reason", "fix a ConfigMap", who="agent-oncall",
    )  # fmt: skip
    grant = json.loads(done.stdout)
    assert grant["status"] == "pending_approval"
    pending = local.cli("list", "--pending", who="approver-bob")
    assert grant["id"] in [g["id"] for g in json.loads(pending.stdout)]
    mine = local.cli("approve", grant["id"], who="agent-oncall")
    assert mine.returncode == 4 and "self_approval" in mine.stderr
    approved = local.cli("approve", grant["id"], "--comment", "ok", who="approver-bob")
    assert approved.returncode == 0, approved.stderr
    active = local.cli("wait", grant["id"], "--timeout", "30", who="agent-oncall")
    assert active.returncode == 0 and json.loads(active.stdout)["status"] == "active"
    policies = local.aws("eks").list_associated_access_policies(clusterName="demo", principalArn=AGENT)
    assert [p["policyArn"].rsplit("/", 1)[-1] for p in policies["associatedAccessPolicies"]] == ["AmazonEKSEditPolicy"]
    revoked = local.cli("revoke", grant["id"], who="agent-oncall")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"
    assert AGENT not in local.entries()


def test_exit_codes_tell_denied_from_bad_input(local) -> None:
    denied = local.cli("request", "--cluster", "demo", "--namespace", "payments", "--scope", "view",
                       "--duration", "1m", "--reason", "curious", who="agent-other")  # fmt: skip
    assert denied.returncode == 1 and "policy_denied" in denied.stderr
    bad = local.cli("request", "--cluster", "nope", "--namespace", "payments", "--scope", "view",
                    "--duration", "1m", "--reason", "typo", who="agent-oncall")  # fmt: skip
    assert bad.returncode == 2 and "unknown_cluster" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_signed_requests_are_checked_for_real(local) -> None:
    agent = local.identity("agent-oncall")
    body = {"cluster": "demo", "namespace": "payments", "scope": "view", "duration": "1m", "reason": "sigv4"}
    status, me = signed(local, "/v1/whoami", None, agent["access_key_id"], agent["secret_access_key"], "GET")
    assert (status, me["principal"]) == (200, AGENT)
    status, error = signed(local, "/v1/grants", body, agent["access_key_id"], "not-the-secret")
    assert (status, error["code"]) == (403, "invalid_signature")
    status, error = signed(local, "/v1/grants", body, "AKIAUNKNOWN000000000", "whatever")
    assert (status, error["code"]) == (403, "unknown_access_key")
    assert "AKIAUNKNOWN000000000" in error["message"]
    url = local.state["api_endpoint"] + "/v1/grants"
    status, error = send(url, "POST", json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert (status, error["code"]) == (403, "missing_signature")
    # a signature for one body does not cover another
    request = AWSRequest(
        method="POST", url=url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(agent["access_key_id"], agent["secret_access_key"]), "execute-api", "us-east-1").add_auth(
        request
    )
    tampered = json.dumps({**body, "scope": "admin"}).encode()
    status, error = send(url, "POST", tampered, dict(request.headers.items()))
    assert (status, error["code"]) == (403, "invalid_signature")
    assert AGENT not in local.entries()


def test_a_second_local_up_on_a_busy_port_says_so(local, tmp_path) -> None:
    port = int(local.state["api_endpoint"].rsplit(":", 1)[1])
    done = subprocess.run(
        [str(BIN), "local", "up", "--port", str(port), "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 4 and f"port {port} is busy" in done.stderr
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the first one still serves


def test_kubeconfig_with_a_profile_makes_tokens_as_that_profile(local, tmp_path) -> None:
    """`eks-jit kubeconfig ID --profile P` signed the API call as P but wrote an exec section
    that ran `aws eks get-token` with the default credentials: another principal's token."""
    agent = local.identity("agent-oncall")
    (tmp_path / "credentials").write_text(
        f"[oncall]\naws_access_key_id = {agent['access_key_id']}\n"
        f"aws_secret_access_key = {agent['secret_access_key']}\n"
    )
    (tmp_path / "config").write_text("[default]\nregion = eu-central-1\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(BIN), *args, "--profile", "oncall", "--region", local.state["region"]]
        command += ["--state-dir", str(local.state_dir), "-o", "json"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)

    done = cli("request", "--cluster", "demo", "--namespace", "payments", "--scope", "view",
               "--duration", "1m", "--reason", "kubeconfig")  # fmt: skip
    assert done.returncode == 0, done.stderr
    grant = json.loads(done.stdout)
    out = tmp_path / "kube" / "config"
    out.parent.mkdir()
    out.write_text("stale and world-readable\n")
    out.chmod(0o644)
    written = cli("kubeconfig", grant["id"], "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert "retry a 401 Unauthorized or 403 Forbidden from kubectl" in written.stderr  # propagation hint
    assert out.stat().st_mode & 0o777 == 0o600
    exec_ = yaml.safe_load(out.read_text())["users"][0]["user"]["exec"]
    assert exec_["args"][:4] == ["--profile", "oncall", "--region", local.state["region"]]
    assert exec_["args"][4:] == ["eks", "get-token", "--cluster-name", "demo", "--output", "json"]
    assert {"name": "AWS_PROFILE", "value": "oncall"} in exec_["env"]
    local.cli("revoke", grant["id"], who="agent-oncall")


def test_access_reaches_the_authenticator_after_the_propagation_delay_and_leaves_after_it(local) -> None:
    """`active` = EKS accepted the entry. Local mode, like EKS, applies it to authentication only
    after a delay, and applies the deletion late too: part of the revocation lag."""
    delay = local.state["propagation_delay_seconds"]
    assert delay > 0, "local mode should not hide EKS's propagation"

    def seen(at: datetime | None = None) -> dict:
        return seen_by_authenticator(local.state["aws_endpoint"], local.state["region"], "demo", AGENT, at)

    # An earlier test's grant and revocation may still be propagating (a grant revoked within the
    # delay even reaches the authenticator after its revocation returned): let them settle first
    last_change = seen()["settlesAt"]
    if last_change:
        time.sleep(max(0.0, (datetime.fromisoformat(last_change) - datetime.now(UTC)).total_seconds()) + 0.05)
    assert seen()["authenticated"] is False

    done = local.cli(
        "request", "--cluster", "demo", "--namespace", "payments", "--scope", "view",
        "--duration", "6s", "--reason", "propagation", who="agent-oncall",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "EKS may take several seconds to honour a new grant" in done.stderr  # the one-line hint
    grant = json.loads(done.stdout)
    entry = local.aws("eks").describe_access_entry(clusterName="demo", principalArn=AGENT)["accessEntry"]
    accepted = entry["modifiedAt"]

    # The API knows the entry at once; the authenticator only from accepted + delay (the entry),
    # and its policy from its own association + delay (settlesAt: the last change)
    settles = datetime.fromisoformat(seen()["settlesAt"])
    assert 0 <= (settles - accepted).total_seconds() - delay < 1.0
    assert seen(accepted + timedelta(seconds=delay - 0.1))["authenticated"] is False
    while not seen().get("accessPolicies"):
        assert datetime.now(UTC) < settles + timedelta(seconds=2), "access never reached the authenticator"
        time.sleep(0.05)
    assert datetime.now(UTC) >= settles

    # At expiry the entry goes within the usual lag, the authenticator's mapping only later
    expires = datetime.fromisoformat(grant["expires_at"])
    while AGENT in local.entries():
        assert datetime.now(UTC) < expires + timedelta(seconds=3), "the entry outlived its window"
        time.sleep(0.05)
    assert seen()["authenticated"] is True or delay < 0.2
    while seen()["authenticated"]:
        assert datetime.now(UTC) < expires + timedelta(seconds=2 + delay), "authentication outlived the window"
        time.sleep(0.05)
