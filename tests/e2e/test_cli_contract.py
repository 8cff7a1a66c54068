"""The CLI keeps its exit-code table (eks_jit/cli.py's docstring): one test per row, run as a
script would run it, against local mode; and with -o json, every failure is JSON on stdout too."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.e2e.conftest import BIN

pytestmark = pytest.mark.e2e

RESTART = ("request", "--cluster", "demo", "--namespace", "payments", "--scope", "rollout-restart",
           "--duration", "5m", "--reason", "readiness probe failing")  # fmt: skip
EDIT = ("request", "--cluster", "demo", "--namespace", "payments", "--scope", "edit",
        "--duration", "5m", "--reason", "fix a ConfigMap")  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eks-jit: "), done.stderr
    return lines[0]


def json_error(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    error = json.loads(done.stdout)
    assert error["exit"] == done.returncode and error["code"] and error["message"], error
    return error


def test_0_active(local) -> None:
    done = local.cli(*RESTART, who="agent-oncall")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "active"
    local.cli("revoke", json.loads(done.stdout)["id"], who="agent-oncall")


def test_1_denied_by_policy(local) -> None:
    done = local.cli(*RESTART[:6], "view", *RESTART[7:], who="agent-other")
    assert done.returncode == 1 and "policy_denied" in one_line(done)
    assert json_error(done)["code"] == "policy_denied" and json_error(done)["grant_id"]


def test_1_denied_by_an_approver(local) -> None:
    grant = json.loads(local.cli(*EDIT, who="agent-oncall").stdout)
    assert local.cli("deny", grant["id"], "--comment", "not now", who="approver-bob").returncode == 0
    done = local.cli("wait", grant["id"], who="agent-oncall")
    assert done.returncode == 1 and json.loads(done.stdout)["status"] == "denied"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (
            (
                "request",
                "--cluster",
                "demo",
                "--namespace",
                "payments",
                "--scope",
                "view",
                "--duration",
                "forever",
                "--reason",
                "x",
            ),
            "invalid_duration",
        ),
        (
            (
                "request",
                "--cluster",
                "demo",
                "--namespace",
                "payments",
                "--namespace",
                "orders",
                "--scope",
                "view",
                "--duration",
                "5m",
                "--reason",
                "two namespaces",
            ),
            "usage",
        ),
        (("request", "--cluster", "demo"), "usage"),
        (("frobnicate",), "usage"),
        ((*RESTART, "--context-url", "javascript:alert(1)"), "invalid_context"),
        ((*RESTART, "--context-alert", "line one\nApproved by: security"), "invalid_context"),
        (
            (*RESTART, *[a for i in range(11) for a in ("--context-command", f"kubectl get pods # {i}")]),
            "invalid_context",
        ),
        ((*RESTART, "--context-url", "https://a.example/1", "--context-url", "https://a.example/2"), "usage"),
    ],
)
def test_2_bad_input_through_local_mode(local, args, code) -> None:
    done = local.cli(*args, who="agent-oncall")
    assert done.returncode == 2, done.stderr
    one_line(done)
    assert json_error(done)["code"] == code


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (
            ("whoami", "--endpoint", "https://abc.execute-api.eu-west-1.amazonaws.com/prod", "--profile", "no-such"),
            "profile_not_found",
        ),
        (("whoami", "--endpoint", "abc123.execute-api.eu-west-1.amazonaws.com"), "bad_endpoint"),
    ],
)
def test_2_bad_input_before_any_call(tmp_path, args, code) -> None:
    done = run(*args, "--state-dir", str(tmp_path), "-o", "json")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    one_line(done)
    assert json_error(done)["code"] == code


def test_2_csv_where_it_is_not_offered(local) -> None:
    done = run("list", "--as", "agent-oncall", "--state-dir", str(local.state_dir), "-o", "csv")
    assert done.returncode == 2 and "-o csv is for `eks-jit audit` only" in one_line(done)
    assert done.stdout == ""


def test_2_the_most_useful_error_wins(local) -> None:
    done = local.cli("request", "--cluster", "nope", "--namespace", "payments", "--scope", "view",
                     "--duration", "forever", "--reason", "x", who="agent-oncall")  # fmt: skip
    assert done.returncode == 2 and json_error(done)["code"] == "unknown_cluster"
    done = local.cli(*RESTART[:-1], "x", who="agent-oncall")
    assert done.returncode == 2 and json_error(done)["code"] == "reason_too_short"


def test_2_an_unknown_local_identity(local) -> None:
    done = local.cli("whoami", who="agent-nobody")
    assert done.returncode == 2 and "known: agent-oncall" in one_line(done)
    assert json_error(done)["code"] == "unknown_identity"


def test_3_wait_on_a_revoked_grant_is_not_success(local) -> None:
    grant = json.loads(local.cli(*RESTART, who="agent-oncall").stdout)
    assert local.cli("revoke", grant["id"], who="agent-oncall").returncode == 0
    done = local.cli("wait", grant["id"], who="agent-oncall")
    assert done.returncode == 3 and json.loads(done.stdout)["status"] == "revoked"
    assert "is revoked" in one_line(done)


def test_3_a_wait_that_times_out_prints_the_grant(local) -> None:
    done = local.cli(*EDIT, "--wait", "--timeout", "1", who="agent-oncall")
    assert done.returncode == 3
    grant = json.loads(done.stdout)
    assert grant["status"] == "pending_approval" and grant["id"]
    assert f"eks-jit wait {grant['id']}" in done.stderr.strip().splitlines()[-1]
    local.cli("cancel", grant["id"], who="agent-oncall")


def test_3_kubeconfig_of_a_grant_that_ended(local) -> None:
    grant = json.loads(local.cli(*RESTART, who="agent-oncall").stdout)
    local.cli("revoke", grant["id"], who="agent-oncall")
    done = local.cli("kubeconfig", grant["id"], who="agent-oncall")
    assert done.returncode == 3 and json_error(done)["code"] == "not_active"


def test_4_not_found_and_not_allowed(local) -> None:
    missing = local.cli("status", "00000000-0000-0000-0000-000000000000", who="agent-oncall")
    assert missing.returncode == 4 and json_error(missing)["code"] == "grant_not_found"
    grant = json.loads(local.cli(*EDIT, who="agent-oncall").stdout)
    mine = local.cli("approve", grant["id"], who="agent-oncall")
    assert mine.returncode == 4 and json_error(mine)["code"] == "self_approval"
    local.cli("cancel", grant["id"], who="agent-oncall")


def test_5_the_api_is_unreachable(local) -> None:
    done = local.cli("whoami", "--endpoint", "http://127.0.0.1:9", who="agent-oncall")
    assert done.returncode == 5 and json_error(done)["code"] == "unreachable"


def test_flags_may_come_before_the_command(local) -> None:
    done = run("--as", "agent-oncall", "--state-dir", str(local.state_dir), "-o", "json", "whoami")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["principal"].endswith("role/agents/oncall-agent")


def test_kubeconfig_honours_json(local) -> None:
    grant = json.loads(local.cli(*RESTART, who="agent-oncall").stdout)
    done = local.cli("kubeconfig", grant["id"], who="agent-oncall")
    assert done.returncode == 0 and json.loads(done.stdout)["kind"] == "Config"
    local.cli("revoke", grant["id"], who="agent-oncall")


def test_catalog_and_dry_run_tell_an_agent_what_it_would_get_and_write_nothing(local) -> None:
    done = local.cli("catalog", who="agent-oncall")
    assert done.returncode == 0, done.stderr
    entries = {(e["cluster"], e["namespace"], e["scope"]): e for e in json.loads(done.stdout)}
    assert entries[("demo", "payments", "rollout-restart")]["decision"] == "auto"
    assert entries[("demo", "payments", "edit")]["decision"] == "manual"
    assert {e["decision"] for e in json.loads(local.cli("catalog", who="agent-other").stdout)} == {"deny"}

    before = json.loads(local.cli("list", who="agent-oncall").stdout)
    would = local.cli(*RESTART, "--dry-run", who="agent-oncall")
    assert would.returncode == 0 and json.loads(would.stdout)["decision"] == "auto", would.stderr
    refused = local.cli(*RESTART[:4], "orders", *RESTART[5:], "--dry-run", who="agent-oncall")
    assert refused.returncode == 1 and json.loads(refused.stdout)["decision"] == "deny"
    assert json.loads(local.cli("list", who="agent-oncall").stdout) == before
    human = subprocess.run(
        [str(BIN), *RESTART, "--dry-run", "--as", "agent-oncall", "--state-dir", str(local.state_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert human.stdout.strip() == "auto up to 15m", human.stdout


@pytest.mark.parametrize(
    "flags",
    [("--config", "no/such/eks-jit.yaml"), ("--config", "README.md"), ("--identities", "README.md")],
    ids=["missing config", "not a config", "not an identities file"],
)
def test_2_local_up_with_a_bad_config_or_identities_file(tmp_path, flags) -> None:
    done = run("local", "up", "--port", "0", "--state-dir", str(tmp_path), *flags)
    assert done.returncode == 2 and flags[1] in one_line(done)
    assert not (tmp_path / "local.json").exists()


def test_the_context_flags_reach_the_grant_and_its_details(local) -> None:
    flags = ("--context-url", "https://incidents.example.com/INC-4711", "--context-task", "INC-4711",
             "--context-alert", "KubePodNotReady payments-api",
             "--context-command", "kubectl -n payments rollout restart deployment/payments-api",
             "--context-command", "kubectl -n payments rollout status deployment/payments-api")  # fmt: skip
    done = local.cli(*RESTART, *flags, who="agent-oncall")
    grant = json.loads(done.stdout)
    assert done.returncode == 0 and grant["context"] == {
        "incident_url": "https://incidents.example.com/INC-4711",
        "alert": "KubePodNotReady payments-api",
        "task_id": "INC-4711",
        "commands": [
            "kubectl -n payments rollout restart deployment/payments-api",
            "kubectl -n payments rollout status deployment/payments-api",
        ],
    }
    shown = run("status", grant["id"], "--as", "agent-oncall", "--state-dir", str(local.state_dir)).stdout
    assert '"INC-4711"' in shown and '"kubectl -n payments rollout status deployment/payments-api"' in shown
    local.cli("revoke", grant["id"], who="agent-oncall")


# -- --idempotency-key: a script may run `request` or `extend` again safely --------------------------------


def test_0_a_command_run_again_with_its_idempotency_key_answers_the_same_grant(local) -> None:
    first = local.cli(*RESTART, "--idempotency-key", "cli-restart-1", who="agent-oncall")
    again = local.cli(*RESTART, "--idempotency-key", "cli-restart-1", who="agent-oncall")
    assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
    grant = json.loads(first.stdout)
    assert json.loads(again.stdout)["id"] == grant["id"]
    extend = ("extend", grant["id"], "--duration", "1m", "--reason", "slow", "--idempotency-key", "cli-ext-1")
    extensions = [json.loads(local.cli(*extend, who="agent-oncall").stdout) for _ in range(2)]
    assert extensions[0]["id"] == extensions[1]["id"] and extensions[0]["extends"] == grant["id"]
    local.cli("revoke", grant["id"], who="agent-oncall")


def test_4_an_idempotency_key_used_for_another_request(local) -> None:
    first = local.cli(*RESTART, "--idempotency-key", "cli-reused-1", who="agent-oncall")
    assert first.returncode == 0
    done = local.cli(*EDIT, "--idempotency-key", "cli-reused-1", who="agent-oncall")
    assert done.returncode == 4 and json_error(done)["code"] == "idempotency_key_reused"
    local.cli("revoke", json.loads(first.stdout)["id"], who="agent-oncall")


def test_2_a_malformed_idempotency_key(local) -> None:
    done = local.cli(*RESTART, "--idempotency-key", "x" * 256, who="agent-oncall")
    assert done.returncode == 2 and json_error(done)["code"] == "invalid_idempotency_key"


def test_5_unreachable_says_which_key_to_run_again_with(local) -> None:
    done = local.cli(*RESTART, "--endpoint", "http://127.0.0.1:9", who="agent-oncall")
    error = json_error(done)
    assert done.returncode == 5 and error["code"] == "unreachable" and error["idempotency_key"]
    assert f"safe to run again with --idempotency-key {error['idempotency_key']}" in one_line(done)


# -- access_mode gateway: session-bound grants, `eks-jit token` ------------------------------------------

GATEWAY_RESTART = ("request", "--cluster", "demo-gateway", *RESTART[3:])


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((*RESTART, "--session", "task-42"), "session_not_supported"),
        ((*GATEWAY_RESTART, "--session", "task 42"), "invalid_session"),
        ((*GATEWAY_RESTART, "--session", "a", "--session", "b"), "usage"),
    ],
)
def test_2_a_session_where_it_cannot_be_or_not_a_session_name(local, args, code) -> None:
    done = local.cli(*args, who="agent-oncall")
    assert done.returncode == 2, done.stderr
    one_line(done)
    assert json_error(done)["code"] == code


def test_0_a_session_bound_grant_on_the_gateway_cluster_makes_no_access_entry(local) -> None:
    agent = local.identity("agent-oncall")["principal_arn"]
    done = local.cli(*GATEWAY_RESTART, "--session", "task-42", who="agent-oncall")
    grant = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert (grant["status"], grant["session"], grant["access_mode"]) == ("active", "task-42", "gateway")
    assert agent not in local.aws("eks").list_access_entries(clusterName="demo-gateway")["accessEntries"]
    shown = run("status", grant["id"], "--as", "agent-oncall", "--state-dir", str(local.state_dir)).stdout
    assert any(line.split() == ["session", "task-42"] for line in shown.splitlines()), shown
    listed = run("list", "--as", "agent-oncall", "--state-dir", str(local.state_dir)).stdout.splitlines()
    assert "SESSION" in listed[0].split() and any(grant["id"] in row and "task-42" in row for row in listed)
    catalog = {
        (e["cluster"], e["namespace"], e["scope"]): e
        for e in json.loads(local.cli("catalog", who="agent-oncall").stdout)
    }
    assert catalog[("demo-gateway", "payments", "rollout-restart")]["decision"] == "auto"  # treated as demo is
    assert catalog[("demo-gateway", "payments", "edit")]["decision"] == "manual"
    assert catalog[("demo-gateway", "payments", "rollout-restart")]["access_mode"] == "gateway"
    assert local.cli("revoke", grant["id"], who="agent-oncall").returncode == 0


def test_0_token_in_local_mode_signs_as_the_local_identity(local) -> None:
    done = local.cli("token", "--cluster", "demo-gateway", who="agent-oncall")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    credential = json.loads(done.stdout)
    assert credential["kind"] == "ExecCredential" and credential["status"]["token"].startswith("k8s-aws-v1.")
    assert local.identity("agent-oncall")["access_key_id"] in _presigned_url(credential["status"]["token"])


def _presigned_url(token: str) -> str:
    import base64

    encoded = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
