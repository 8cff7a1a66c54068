"""``eks-jit session`` against local mode, as a script runs it: the api function there is wired
with the session log (lambdas/bootstrap.py), so a grant on the entry-mode ``demo`` cluster answers
an empty transcript, and an unknown grant exits as ``eks-jit status`` does."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e
RESTART = ("request", "--cluster", "demo", "--namespace", "payments", "--scope", "rollout-restart",
           "--duration", "5m", "--reason", "readiness probe failing")  # fmt: skip
UNKNOWN = "00000000-0000-4000-8000-00000000dead"


def test_a_grant_without_gateway_traffic_has_an_empty_session(local) -> None:
    grant = json.loads(local.cli(*RESTART, who="agent-oncall").stdout)
    try:
        done = local.cli("session", grant["id"], who="agent-oncall")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"grant_id": grant["id"], "commands": [], "next": None}
        other = local.cli("session", grant["id"], who="agent-other")
        assert other.returncode == local.cli("status", grant["id"], who="agent-other").returncode == 4
        assert json.loads(other.stdout)["code"] == "forbidden"
    finally:
        local.cli("revoke", grant["id"], who="agent-oncall")


def test_an_unknown_grant_exits_as_status_does(local) -> None:
    session = local.cli("session", UNKNOWN, who="agent-oncall")
    status = local.cli("status", UNKNOWN, who="agent-oncall")
    assert session.returncode == status.returncode == 4
    assert json.loads(session.stdout)["code"] == json.loads(status.stdout)["code"] == "grant_not_found"
