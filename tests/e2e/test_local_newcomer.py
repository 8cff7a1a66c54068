"""What a newcomer tries in local mode, end to end: the approver inbox and its links, the admin
and the auditor identities, the agent-script helpers, and the AWS CLI line `local up` prints."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import pytest

from eks_jit.cli import AUDIT_COLUMNS
from eks_jit.client import local_aws, local_client
from eks_jit.kubeconfig import GrantNotActive
from tests.e2e.conftest import BIN

AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
pytestmark = pytest.mark.e2e


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def request(local, scope: str, duration: str, reason: str) -> dict:
    return ok(local.cli("request", "--cluster", "demo", "--namespace", "payments", "--scope", scope,
                        "--duration", duration, "--reason", reason, who="agent-oncall"))  # fmt: skip


def inbox_row(local, approver: str, grant_id: str, within: float = 30.0) -> dict | None:
    """The inbox row about ``grant_id``; None if it does not show within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        rows = ok(local.cli("local", "inbox", who=approver))
        found = [r for r in rows if r["grant_id"] == grant_id]
        assert len(found) <= 1, found
        if found or time.monotonic() > deadline:
            return found[0] if found else None
        time.sleep(0.5)


def test_an_approver_finds_the_link_in_the_local_inbox_and_its_post_approves(local) -> None:
    grant = request(local, "edit", "5m", "inbox: fix a ConfigMap")
    assert grant["status"] == "pending_approval"
    alice = inbox_row(local, "approver-alice", grant["id"])
    assert alice is not None, "alice's inbox never showed the request"
    assert alice["approver"] == "approver-alice" and f"{AGENT} asks for 'edit' on demo/payments" in alice["request"]
    assert alice["link"].startswith(local.state["api_endpoint"] + "/v1/approval-links/")
    bob = inbox_row(local, "approver-bob", grant["id"])
    assert bob is not None and bob["link"] != alice["link"], "each approver gets a link of their own"
    everyone = ok(local.cli("local", "inbox"))  # no --as: every human's inbox
    assert {(r["approver"], r["grant_id"]) for r in everyone} >= {
        ("approver-alice", grant["id"]), ("approver-bob", grant["id"])
    }  # fmt: skip

    page = urllib.request.urlopen(alice["link"], timeout=10).read().decode()
    assert "Approve this access request?" in page and "inbox: fix a ConfigMap" in page
    assert ok(local.cli("status", grant["id"], who="agent-oncall"))["status"] == "pending_approval"
    form = urllib.request.Request(alice["link"], data=b"decision=approve&comment=from+the+inbox", method="POST")
    assert "You approved this request" in urllib.request.urlopen(form, timeout=30).read().decode()
    active = ok(local.cli("wait", grant["id"], "--timeout", "30", who="agent-oncall"))
    assert active["status"] == "active" and active["approved_by"] == ["arn:aws:iam::123456789012:user/alice"]

    # decided: gone from both inboxes, without waiting for anything to arrive
    assert inbox_row(local, "approver-alice", grant["id"], within=0) is None
    assert inbox_row(local, "approver-bob", grant["id"], within=0) is None
    assert ok(local.cli("revoke", grant["id"], who="agent-oncall"))["status"] == "revoked"


def test_only_humans_have_an_inbox(local) -> None:
    done = local.cli("local", "inbox", who="agent-oncall")
    assert done.returncode == 2 and "agent-oncall has no inbox" in done.stderr
    assert json.loads(done.stdout)["code"] == "no_inbox"


@pytest.mark.parametrize(
    ("who", "admin", "auditor"),
    [("admin-carol", True, True), ("auditor-dave", False, True), ("approver-alice", False, False),
     ("agent-oncall", False, False)],
)  # fmt: skip
def test_whoami_says_who_is_admin_and_who_is_auditor(local, who: str, admin: bool, auditor: bool) -> None:
    me = ok(local.cli("whoami", who=who))
    assert (me["name"], me["admin"], me["auditor"]) == (who, admin, auditor)


def plain(local, *args: str, who: str) -> subprocess.CompletedProcess[str]:
    """The CLI without the fixture's ``-o json`` (for csv and tables)."""
    command = [str(BIN), *args, "--as", who, "--state-dir", str(local.state_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_auditor_audits_as_csv_and_can_neither_decide_nor_revoke(local) -> None:
    pending = request(local, "edit", "5m", "audit: pending")
    active = request(local, "view", "1m", "audit: active")
    assert (pending["status"], active["status"]) == ("pending_approval", "active")
    # the range comes from the grants' own times, not from the clock
    since = datetime.fromisoformat(pending["created_at"])
    until = datetime.fromisoformat(active["created_at"]) + timedelta(milliseconds=1)
    done = plain(local, "audit", "--since", since.isoformat(), "--until", until.isoformat(), "-o", "csv",
                 who="auditor-dave")  # fmt: skip
    assert done.returncode == 0, done.stderr
    reader = csv.DictReader(io.StringIO(done.stdout))
    assert tuple(reader.fieldnames or ()) == AUDIT_COLUMNS
    rows = {r["grant_id"]: r for r in reader}
    assert list(rows) == [pending["id"], active["id"]]
    assert rows[active["id"]]["approved_by"] == "policy:oncall-agent-payments-auto"
    assert rows[pending["id"]]["status"] == "pending_approval" and rows[pending["id"]]["reason"] == "audit: pending"
    assert plain(local, "audit", "--since", since.isoformat(), "--until", until.isoformat(),
                 who="agent-oncall").returncode == 4  # fmt: skip

    for verb, grant in (("approve", pending), ("deny", pending), ("revoke", active)):
        refused = local.cli(verb, grant["id"], who="auditor-dave")
        assert refused.returncode == 4, (verb, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1
    assert "an eks-jit admin may revoke" in refused.stderr
    assert ok(local.cli("status", pending["id"], who="auditor-dave"))["status"] == "pending_approval"
    assert ok(local.cli("status", active["id"], who="auditor-dave"))["status"] == "active"
    local.cli("revoke", active["id"], who="agent-oncall")
    local.cli("cancel", pending["id"], who="agent-oncall")


def test_the_admin_lists_everyones_grants_and_may_revoke_any(local) -> None:
    pending = request(local, "edit", "5m", "admin: pending")
    active = request(local, "view", "1m", "admin: active")
    listed = ok(local.cli("list", "--all", "--status", "pending_approval", who="admin-carol"))
    assert pending["id"] in [g["id"] for g in listed]
    assert {g["status"] for g in listed} == {"pending_approval"}
    assert active["id"] in [g["id"] for g in ok(local.cli("list", "--all", "--status", "active", who="admin-carol"))]
    assert local.cli("list", "--all", "--status", "active", who="agent-oncall").returncode == 4
    assert local.cli("list", "--all", "--status", "active", who="auditor-dave").returncode == 4
    assert local.cli("approve", pending["id"], who="admin-carol").returncode == 4  # admins approve nothing here
    revoked = ok(local.cli("revoke", active["id"], "--reason", "admin cleanup", who="admin-carol"))
    assert revoked["status"] == "revoked" and revoked["status_reason"] == "admin cleanup"
    assert AGENT not in local.entries()
    local.cli("cancel", pending["id"], who="agent-oncall")


def test_an_agent_script_needs_only_the_public_client(local) -> None:
    agent = local_client("agent-oncall", local.state_dir)
    grant = agent.request_grant("demo", "payments", "view", "1m", "script: look around")
    assert grant["status"] == "active"
    assert AGENT in local_aws("eks", local.state_dir).list_access_entries(clusterName="demo")["accessEntries"]
    config = agent.kubeconfig(grant["id"])
    assert config == ok(local.cli("kubeconfig", grant["id"], who="agent-oncall"))  # the CLI's, to the byte
    assert config["contexts"][0]["context"]["namespace"] == "payments"
    assert agent.revoke(grant["id"], "done")["status"] == "revoked"
    with pytest.raises(GrantNotActive):
        agent.kubeconfig(grant["id"])


def test_the_aws_cli_line_local_up_prints_runs_as_printed(local, tmp_path) -> None:
    banner = (local.state_dir / "local-mode.log").read_text().splitlines()
    lines = [line.strip() for line in banner if line.strip().startswith("AWS_ACCESS_KEY_ID=")]
    assert len(lines) == 1, banner
    assert "--region us-east-1" in lines[0] and f"--endpoint-url {local.state['aws_endpoint']}" in lines[0]
    if not shutil.which("aws"):
        pytest.skip("the AWS CLI is not installed (not a dependency: the README's quick start does not use it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}  # the Makefile's region, no credentials  # fmt: skip
    done = subprocess.run(["bash", "-c", lines[0]], capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert "arn:aws:iam::123456789012:user/moto" in json.loads(done.stdout)["accessEntries"]  # the cluster creator
