"""``make demo``: the on-call story, played end to end against local mode.

Starts ``eks-jit local up`` as a subprocess, then drives it only the way users do: the
``eks-jit`` CLI (agents and approvers), the approval link an approver receives (HTTP), and a
standard AWS client pointed at the local AWS endpoint to show what EKS itself holds. Exits 0
only if every step happened as told.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from eks_jit.cli import aws_cli_line
from eks_jit.local.authenticator import seen_by_authenticator

BIN = Path(sys.executable).parent / "eks-jit"
KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")  # google-cloud-cli's kubectl builds (kubectl.1.27 ...)
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = RESET = ""


class StoryBroken(Exception):
    pass


def say(text: str) -> None:
    print(f"\n{BOLD}{text}{RESET}", flush=True)


def ok(text: str) -> None:
    print(f"  {GREEN}✓{RESET} {text}", flush=True)


def check(condition: bool, text: str) -> None:
    if not condition:
        raise StoryBroken(text)
    ok(text)


def command(args: tuple[str, ...], who: str, state_dir: Path) -> tuple[str, list[str]]:
    """The transcript line for an ``eks-jit`` call (what you would type against your own
    ``eks-jit local up``, quoted so it pastes as one argv) and the argv the demo runs: the same,
    plus ``--state-dir`` (the demo's own local mode) and ``-o json`` (the demo reads the answer)."""
    shown = ["eks-jit", *args, "--as", who]
    return shlex.join(shown), [str(BIN), *shown[1:], "--state-dir", str(state_dir), "-o", "json"]


class Demo:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.state: dict[str, Any] = {}

    def cli(self, *args: str, who: str, expect: int = 0) -> Any:
        line, argv = command(args, who, self.state_dir)
        print(f"  {DIM}$ {line}{RESET}", flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != expect:
            raise StoryBroken(f"`eks-jit {args[0]}` exited {done.returncode}, expected {expect}: {done.stderr.strip()}")
        if done.stderr.strip():
            print(f"  {DIM}{done.stderr.strip()}{RESET}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["aws_endpoint"],
            region_name=self.state["region"],
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )

    def entry(self) -> dict[str, Any] | None:
        """What EKS itself holds for the agent (the local AWS endpoint, not our table)."""
        eks = self.aws("eks")
        if AGENT not in eks.list_access_entries(clusterName="demo")["accessEntries"]:
            return None
        try:  # three calls: the entry may be removed (expiry) between them
            found = eks.describe_access_entry(clusterName="demo", principalArn=AGENT)["accessEntry"]
            policies = eks.list_associated_access_policies(clusterName="demo", principalArn=AGENT)[
                "associatedAccessPolicies"
            ]
        except eks.exceptions.ResourceNotFoundException:
            return None
        return {
            "kubernetesGroups": found["kubernetesGroups"],
            "accessPolicies": {p["policyArn"].rsplit("/", 1)[-1]: p["accessScope"] for p in policies},
            "tags": found.get("tags", {}),
        }

    def show_entry(self) -> dict[str, Any] | None:
        entry = self.entry()
        line = aws_cli_line(
            self.state, "eks", "describe-access-entry", "--cluster-name", "demo", "--principal-arn", AGENT
        )
        print(f"  {DIM}$ {line}{RESET}")  # what boto3 asks here, as the AWS CLI would (runs as printed)
        print("  " + (json.dumps(entry) if entry else "(no access entry: the agent holds no Kubernetes permission)"))
        return entry

    def authenticated(self) -> tuple[bool, bool]:
        """Whether the emulated cluster's authenticator maps the agent now (not the EKS API), and
        whether every access-entry change made so far has reached it."""
        seen = seen_by_authenticator(self.state["aws_endpoint"], self.state["region"], "demo", AGENT)
        settles = seen["settlesAt"]
        return bool(seen["authenticated"]), not settles or datetime.fromisoformat(settles) <= datetime.now(UTC)

    def until_authenticated(self, wanted: bool, deadline: datetime) -> datetime:
        """Poll the authenticator until every change made so far has reached it and it maps the
        agent (or no longer does); when. Settled, not just mapped: an entry reaches it before its
        policy does, and a deletion made before the creation arrived must not look like no lag."""
        while True:
            mapped, settled = self.authenticated()
            if mapped is wanted and settled:
                return datetime.now(UTC)
            if datetime.now(UTC) > deadline:
                raise StoryBroken(f"the authenticator still {'did not map' if wanted else 'mapped'} the agent")
            time.sleep(0.05)

    def events(self, grant_id: str) -> None:
        grant = self.cli("status", grant_id, who="agent-oncall")
        for e in grant["events"]:
            print(f"    v{e['version']:<2} {e['at'][11:23]}  {e['type']:<20} {e['actor']}")

    def approval_link(self, approver: str, grant_id: str) -> str:
        """The link ``approver`` was sent about ``grant_id``, from their local inbox."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = self.cli("local", "inbox", "--timeout", "10", who=approver)
            found = [r["link"] for r in rows if r["grant_id"] == grant_id]
            if found:
                return str(found[0])
        raise StoryBroken(f"no approval message about {grant_id} reached {approver}'s inbox")

    def run(self) -> None:
        say("eks-jit demo: an on-call agent restarts a stuck deployment, then needs a human")
        plane = self.start()
        try:
            self.act_one()
            self.act_two()
            self.act_three()
            self.epilogue()
        finally:
            plane.send_signal(signal.SIGINT)
            plane.wait(timeout=30)
        say(f"{GREEN}The story played as told.{RESET}")

    def start(self) -> subprocess.Popen[str]:
        say("Starting local mode (moto, the real handlers, SigV4 API, local scheduler)")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        plane = subprocess.Popen(
            [str(BIN), "local", "up", "--port", "0", "--state-dir", str(self.state_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 90
        path = self.state_dir / "local.json"
        while not path.exists():
            if plane.poll() is not None or time.monotonic() > deadline:
                raise StoryBroken(f"local mode did not start: {plane.stdout.read() if plane.stdout else ''}")
            time.sleep(0.2)
        time.sleep(0.2)
        self.state = json.loads(path.read_text())
        ok(f"API {self.state['api_endpoint']}, AWS endpoint {self.state['aws_endpoint']}")
        return plane

    def act_one(self) -> None:
        say("Act 1 - 03:12, payments-api fails its readiness probe")
        check(self.show_entry() is None, "at rest the agent has no access entry on cluster demo")
        print("  The alert fires; the agent asks for exactly what it needs, for 20 seconds:")
        grant = self.cli(
            "request", "--cluster", "demo", "--namespace", "payments", "--scope", "rollout-restart",
            "--duration", "20s", "--reason", "payments-api readiness probe failing: rollout restart",
            who="agent-oncall",
        )  # fmt: skip
        check(
            grant["status"] == "active",
            f"policy auto-approved it: {grant['decision']['policies'][0]}, active in one call",
        )
        answered = datetime.now(UTC)
        entry = self.show_entry()
        check(
            entry is not None and entry["kubernetesGroups"] == ["eks-jit:rollout-restart:payments"],
            "EKS now has a managed access entry with only the payments rollout-restart group",
        )
        delay = self.state.get("propagation_delay_seconds", 0)
        print(
            f'  `active` means EKS accepted the entry; like EKS ("may take several seconds"), the emulated '
            f"cluster applies it {delay:.0f}s later."
        )
        print("  Until then kubectl gets 401 Unauthorized: the agent retries (eks_jit.client.retry_while_propagating)")
        mapped_at = self.until_authenticated(True, answered + timedelta(seconds=delay + 10))
        ok(f"the cluster's authenticator maps the agent {(mapped_at - answered).total_seconds():.1f}s after `active`")
        expires = datetime.fromisoformat(grant["expires_at"])
        print(
            "  The agent runs `kubectl rollout restart deployment/payments-api -n payments`;"
            f" the window ends at {grant['expires_at'][11:19]}Z"
        )
        while self.entry() is not None and datetime.now(UTC) < expires + timedelta(seconds=10):
            time.sleep(0.05)
        gone_at = datetime.now(UTC)
        self.show_entry()
        check(
            self.entry() is None,
            f"the entry disappeared on its own, {(gone_at - expires).total_seconds():.2f}s after expires_at",
        )
        unmapped_at = self.until_authenticated(False, gone_at + timedelta(seconds=delay + 10))
        ok(
            f"the authenticator stopped mapping the agent {(unmapped_at - expires).total_seconds():.2f}s after "
            "expires_at: revocation lag = removal + EKS propagation"
        )
        final = self.cli("status", grant["id"], who="agent-oncall")
        check(final["status"] == "expired", "the grant is expired")
        print("  Its record, for the auditor:")
        self.events(grant["id"])

    def act_two(self) -> None:
        say("Act 2 - the restart did not help; the agent needs to edit a ConfigMap")
        grant = self.cli(
            "request", "--cluster", "demo", "--namespace", "payments", "--scope", "edit",
            "--duration", "2m", "--reason", "payments-api needs a corrected feature flag", who="agent-oncall",
        )  # fmt: skip
        check(grant["status"] == "pending_approval", "edit needs a human: the request waits for payments-approvers")
        check(self.entry() is None, "no access while it waits")
        print("  Alice is emailed a single-use approval link; in local mode her inbox shows it:")
        link = self.approval_link("approver-alice", grant["id"])
        print(f"  {link}")
        page = urllib.request.urlopen(link, timeout=10).read().decode()
        check("Approve this access request?" in page and "corrected feature flag" in page,
              "opening the link shows the request and two buttons; nothing is decided by opening it")  # fmt: skip
        check(
            self.cli("status", grant["id"], who="agent-oncall")["status"] == "pending_approval",
            "still pending after the GET",
        )
        form = b"decision=approve&comment=go+ahead"
        result = (
            urllib.request.urlopen(urllib.request.Request(link, data=form, method="POST"), timeout=30).read().decode()
        )
        check("You approved this request" in result, "Alice pressed Approve")
        active = self.cli("wait", grant["id"], "--timeout", "60", who="agent-oncall")
        check(active["status"] == "active", "the workflow activated the grant")
        entry = self.show_entry()
        check(
            entry is not None and "AmazonEKSEditPolicy" in entry["accessPolicies"],
            "EKS has AmazonEKSEditPolicy on payments",
        )
        delay = self.state.get("propagation_delay_seconds", 0)
        activated = datetime.fromisoformat(active["activated_at"])
        mapped_at = self.until_authenticated(True, activated + timedelta(seconds=delay + 10))
        ok(f"the agent's kubectl goes through {(mapped_at - activated).total_seconds():.1f}s after activation")
        again = urllib.request.Request(link, data=form, method="POST")
        try:
            urllib.request.urlopen(again, timeout=10)
            raise StoryBroken("a used approval link worked twice")
        except urllib.error.HTTPError as exc:
            check(exc.code == 410, "the link is single use: a second press is refused (410)")
        print("  The fix is in; the agent gives the access back early:")
        revoked = self.cli("revoke", grant["id"], "--reason", "fixed", who="agent-oncall")
        revoked_at = datetime.now(UTC)
        check(revoked["status"] == "revoked", "revoked")
        self.show_entry()
        check(self.entry() is None, "the access entry is gone at once")
        unmapped_at = self.until_authenticated(False, revoked_at + timedelta(seconds=delay + 10))
        ok(f"the authenticator let go {(unmapped_at - revoked_at).total_seconds():.1f}s later (EKS propagation)")
        self.events(grant["id"])

    def kubectl(self, config: Path, *args: str, expect: int = 0) -> str:
        """Real kubectl with the grant's kubeconfig (its exec runs ``eks-jit token``: on PATH, as after
        ``pip install eks-jit``); what it printed (stdout, or stderr when it is expected to fail)."""
        print(f"  {DIM}$ KUBECONFIG={config.name} kubectl {shlex.join(args)}{RESET}", flush=True)
        env = {**os.environ, "PATH": f"{BIN.parent}:{os.environ.get('PATH', '')}"}
        cache = self.state_dir / "kube-cache"
        argv = [kubectl_binary(), "--kubeconfig", str(config), "--cache-dir", str(cache), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
        printed = (done.stdout if done.returncode == 0 else done.stderr).strip()
        if done.returncode != expect:
            raise StoryBroken(f"kubectl {args[0]} exited {done.returncode}, expected {expect}: {printed}")
        for line in printed.splitlines()[:6]:
            print(f"    {line}")
        return printed

    def act_three(self) -> None:
        say("Act 3 - cluster demo-gateway: every request goes through eks-jit's gateway")
        grant = self.cli(
            "request", "--cluster", "demo-gateway", "--namespace", "payments", "--scope", "edit",
            "--duration", "3m", "--reason", "payments-api: check the DB secret and the logs", who="agent-oncall",
        )  # fmt: skip
        check(grant["status"] == "pending_approval", "edit needs a human here too")
        self.cli("approve", grant["id"], "--comment", "look, do not touch", who="approver-alice")
        active = self.cli("wait", grant["id"], "--timeout", "60", who="agent-oncall")
        check(active["status"] == "active", "Alice approved it: active at once, no access entry to wait for")
        config = self.state_dir / "gateway.kubeconfig"
        self.cli("kubeconfig", grant["id"], "--out", str(config), who="agent-oncall")
        secret = json.loads(self.kubectl(config, "-n", "payments", "get", "secret", "payments-db", "-o", "json"))
        check(
            "password" in secret["data"] and set(secret["data"].values()) == {"****"},
            "the Secret's keys are shown, its values masked (****) before they leave the gateway",
        )
        logs = self.kubectl(config, "-n", "payments", "logs", "deployment/payments-api")
        check("AKIA" not in logs and "****" in logs, "the log line carrying an AWS access key id is masked")
        refused = self.kubectl(config, "-n", "payments", "exec", "deployment/payments-api", "--", "sh", expect=1)
        check("agents may not exec" in refused, "exec is refused by the guardrail agents-never-exec")
        held = self.kubectl(config, "-n", "payments", "delete", "deployment", "payments-api", expect=1)
        found = re.search(r"approval required: eks-jit approve ([0-9a-f-]{36})", held)
        check(found is not None, "deleting the Deployment is held: kubectl prints the approval to ask for")
        assert found is not None
        hold = found.group(1)
        self.cli("approve", hold, "--comment", "ok, recreate it from the pipeline", who="approver-alice")
        check(self.cli("wait", hold, "--timeout", "60", who="agent-oncall")["status"] == "active",
              "Alice approved that one command")  # fmt: skip
        deleted = self.kubectl(config, "-n", "payments", "delete", "deployment", "payments-api")
        check("deleted" in deleted, "the same command passes, once")
        used = self.cli("status", hold, who="agent-oncall")
        check(used["status"] == "expired", "its approval is used up: a second delete would need a new one")
        self.cli("revoke", grant["id"], "--reason", "done", who="agent-oncall")
        after = self.kubectl(config, "-n", "payments", "get", "pods", expect=1)
        check("no grant" in after, "after the revoke every request is refused")
        print("  What the gateway recorded, for the auditor:")
        line, argv = command(("session", grant["id"]), "auditor-dave", self.state_dir)
        print(f"  {DIM}$ {line}{RESET}")
        shown = subprocess.run(argv[:-2], capture_output=True, text=True, timeout=60, check=False)
        if shown.returncode != 0:
            raise StoryBroken(f"`eks-jit session` exited {shown.returncode}: {shown.stderr.strip()}")
        for row in shown.stdout.splitlines():
            print(f"    {row}")
        outcomes = " ".join(shown.stdout.split())
        check(all(o in outcomes for o in ("blocked", "held", "approved")),
              "the transcript shows the blocked exec, the held delete and its approved pass")  # fmt: skip

    def epilogue(self) -> None:
        say("Epilogue - what is refused")
        self.cli("request", "--cluster", "demo", "--namespace", "payments", "--scope", "view", "--duration", "1m",
                 "--reason", "curious", who="agent-other", expect=1)  # fmt: skip
        ok("another agent gets nothing (exit 1, policy_denied)")
        self.cli("request", "--cluster", "demo", "--scope", "cluster-view", "--duration", "1m", "--reason", "look",
                 who="agent-oncall", expect=1)  # fmt: skip
        ok("no agent gets a cluster-wide scope")


def kubectl_binary() -> str:
    """$EKS_JIT_KUBECTL, PATH's kubectl, or the newest google-cloud-cli build."""
    builds = sorted(KUBECTL_DIR.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[-1]))
    found = os.environ.get("EKS_JIT_KUBECTL") or shutil.which("kubectl") or (str(builds[-1]) if builds else None)
    if not found:
        raise StoryBroken("act 3 drives real kubectl: install it, or set EKS_JIT_KUBECTL to one")
    return found


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="eks-jit-demo-") as tmp:
        try:
            Demo(Path(tmp)).run()
        except StoryBroken as exc:
            print(f"\n{RED}The story broke: {exc}{RESET}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
