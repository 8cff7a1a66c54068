"""A grant's session log, end to end: commands written by ``DynamoSessionLog`` (as the gateway writes
them) into moto's grant table, read back through the HTTP API (local mode's API Gateway, which checks
the SigV4 signature, in front of the real handler), through ``eks_jit.client`` and through the CLI
(``eks-jit session``, ``eks-jit audit -o csv``). Who may read it is exactly who may read the grant."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from eks_jit import cli
from eks_jit.client import ApiError, Client
from eks_jit.emulation.lambda_dispatch import Context
from eks_jit.local.gateway import Gateway
from eks_jit.local.sigv4 import Identity
from eks_jit.server.adapters.session_log import DynamoSessionLog
from eks_jit.server.domain.recording import Command, CommandOutcome
from eks_jit.server.handlers import api
from tests.conftest import TABLE
from tests.support import ADMIN, ALICE, ONCALL, OTHER_AGENT, REGION

AGENT = Identity("agent-oncall", "AKIAIDEMONCALL000001", "agent-secret", ONCALL)
OTHER = Identity("agent-other", "AKIAIDEMOTHER0000001", "other-secret", OTHER_AGENT)
HUMAN = Identity("approver-alice", "AKIAIDEMALICE0000001", "alice-secret", ALICE)
AUDITOR = Identity("admin", "AKIAIDEMADMIN0000001", "admin-secret", ADMIN)
BIN = Path(sys.executable).parent / "eks-jit"
RESTART = {"cluster": "prod-eks", "namespace": "payments", "scope": "rollout-restart", "duration": "15m"}
EDIT = {**RESTART, "scope": "edit", "duration": "30m", "reason": "hotfix"}
UNKNOWN = "00000000-0000-4000-8000-00000000dead"
DEPLOYMENT = "/apis/apps/v1/namespaces/payments/deployments/payments-api"


@pytest.fixture
def signed(world) -> Iterator[tuple[str, Callable[[Identity], Client]]]:
    gateway = Gateway(0, api.handler, {i.access_key_id: i for i in (AGENT, OTHER, HUMAN, AUDITOR)},
                      lambda: Context("eks-jit-api"), region=REGION)  # fmt: skip
    gateway.start()

    def client(who: Identity) -> Client:
        return Client(gateway.url, region=REGION, credentials=Credentials(who.access_key_id, who.secret_access_key))

    yield gateway.url, client
    gateway.stop()


@pytest.fixture
def recorder(world) -> DynamoSessionLog:
    """The adapter as the gateway builds it, on its own client: what it writes, the API must read."""
    assert isinstance(world.deps.session_log, DynamoSessionLog)  # bootstrap wires the api function's
    return DynamoSessionLog(boto3.client("dynamodb", region_name=REGION), TABLE)


def active_grant(world) -> dict[str, Any]:
    status, grant = world.call("POST", "/v1/grants", body={**RESTART, "reason": "probe failing"})
    assert (status, grant["status"]) == (201, "active"), grant
    return grant


def a_session(world, grant_id: str, n: int = 0) -> list[Command]:
    """The commands ``kubectl rollout restart`` and a stray ``get secrets`` leave, ``n`` more reads."""
    start = world.clock.now()

    def at(ms: int) -> Any:
        return start + timedelta(milliseconds=ms)

    base = {"grant_id": grant_id, "principal": ONCALL, "session": "incident-4711", "query": ""}
    made = [
        Command(**base, at=at(1), request_id="r-get", verb="get", path=DEPLOYMENT, outcome=CommandOutcome.ALLOWED,
                status=200, summary="Deployment payments-api", duration_ms=9),
        Command(**base | {"query": "fieldManager=kubectl-rollout"}, at=at(2), request_id="r-patch", verb="patch",
                path=DEPLOYMENT, outcome=CommandOutcome.ALLOWED, status=200, summary="Deployment payments-api",
                body='{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"x"}}}}}'),
        Command(**base, at=at(3), request_id="r-secrets", verb="list", path="/api/v1/namespaces/payments/secrets",
                outcome=CommandOutcome.REFUSED, status=403,
                reason="secrets is forbidden: no grant of this session covers list secrets in payments"),
    ]  # fmt: skip
    made += [
        Command(**base, at=at(10 + i), request_id=f"r-{i:03d}", verb="get", path=DEPLOYMENT,
                outcome=CommandOutcome.ALLOWED, status=200, summary="Deployment payments-api")
        for i in range(n)
    ]  # fmt: skip
    return made


def record(log: DynamoSessionLog, commands: list[Command]) -> None:
    for command in commands:
        log.record(command)


# -- the route ---------------------------------------------------------------------------------------


def test_the_session_reads_back_what_the_gateway_recorded(world, signed, recorder) -> None:
    _, client = signed
    grant = active_grant(world)
    made = a_session(world, grant["id"])
    record(recorder, made)
    answer = client(AGENT).session(grant["id"])
    assert answer == {"grant_id": grant["id"], "commands": [c.to_json() for c in made], "next": None}
    assert [Command.from_json(c) for c in answer["commands"]] == made


def test_every_outcome_the_gateway_records_reads_back(world, signed, recorder) -> None:
    """Guardrails' outcomes too (blocked, held, approved): `make demo` found the route answering 500
    for a session holding a blocked exec, its model knowing only allowed and refused."""
    _, client = signed
    grant = active_grant(world)
    (first, *_) = a_session(world, grant["id"])
    forwarded = (CommandOutcome.ALLOWED, CommandOutcome.APPROVED)
    made = [
        Command(**{**first.to_json(), "at": first.at + timedelta(milliseconds=i)} | {  # type: ignore[arg-type]
            "request_id": f"r-{outcome.value}", "outcome": outcome, "status": 200 if outcome in forwarded else 403,
            "reason": "" if outcome is CommandOutcome.ALLOWED else f"eks-jit says {outcome.value}"})
        for i, outcome in enumerate(CommandOutcome)
    ]  # fmt: skip
    record(recorder, made)
    answer = client(AGENT).session(grant["id"])
    assert [c["outcome"] for c in answer["commands"]] == [o.value for o in CommandOutcome]
    assert [Command.from_json(c) for c in answer["commands"]] == made


def test_pages_of_limit_add_up_to_the_log_in_order_and_the_last_has_no_next(world, signed, recorder) -> None:
    _, client = signed
    grant = active_grant(world)
    made = a_session(world, grant["id"], n=4)  # 7 commands
    record(recorder, made)
    agent = client(AGENT)
    path, seen, pages, after = f"/v1/grants/{grant['id']}/session", [], 0, None
    while True:
        page = agent._call("GET", path, query={"limit": "3"} | ({"after": after} if after else {}))
        assert set(page) == {"grant_id", "commands", "next"}
        seen += page["commands"]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert (seen, pages) == ([c.to_json() for c in made], 3)
    exact = agent._call("GET", path, query={"limit": "7"})
    assert len(exact["commands"]) == 7 and exact["next"] is None  # a page ending at the last command
    assert agent.session(grant["id"], page_size=2)["commands"] == seen  # the client follows the pages


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"after": "bm90LWEtdG9rZW4"}, "invalid_next_token", "after"),  # base64 of "not-a-token"
        ({"after": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwieCJd"}, "invalid_next_token", "after"),  # year 1, +05:00
        ({"after": "x!y"}, "invalid_request", None),
        ({"limit": "0"}, "invalid_request", None),
        ({"limit": "1001"}, "invalid_request", None),
    ],
)
def test_a_bad_page_request_is_a_400_with_a_stable_code(world, signed, recorder, query, code, field) -> None:
    _, client = signed
    grant = active_grant(world)
    record(recorder, a_session(world, grant["id"]))
    with pytest.raises(ApiError) as refused:
        client(AGENT)._call("GET", f"/v1/grants/{grant['id']}/session", query=query)
    assert (refused.value.status, refused.value.code) == (400, code)
    if field:
        assert refused.value.field == field


def test_an_unknown_grant_is_a_404_and_one_with_no_commands_an_empty_log(world, signed) -> None:
    _, client = signed
    with pytest.raises(ApiError) as unknown:
        client(AGENT).session(UNKNOWN)
    assert (unknown.value.status, unknown.value.code) == (404, "grant_not_found")
    grant = active_grant(world)  # prod-eks is an entry-mode cluster: the gateway records nothing there
    assert client(AGENT).session(grant["id"]) == {"grant_id": grant["id"], "commands": [], "next": None}


def test_who_may_read_the_session_is_exactly_who_may_read_the_grant(world, signed, recorder) -> None:
    """The requester, the approvers, auditors and admins; another agent is refused as GET /v1/grants/{id}
    refuses it, and learns nothing of the log."""
    _, client = signed
    restart = active_grant(world)
    _, edit = world.call("POST", "/v1/grants", body=EDIT)  # pending: alice is one of its approvers
    assert edit["status"] == "pending_approval"
    for grant in (restart, edit):
        record(recorder, a_session(world, grant["id"]))
    outcomes: dict[tuple[str, str], tuple[int, int]] = {}
    for who in (AGENT, OTHER, HUMAN, AUDITOR):
        for grant in (restart, edit):
            answers = []
            for path in (f"/v1/grants/{grant['id']}", f"/v1/grants/{grant['id']}/session"):
                try:
                    client(who)._call("GET", path)
                    answers.append(200)
                except ApiError as exc:
                    assert exc.code == "forbidden" and "commands" not in exc.message, exc
                    answers.append(exc.status)
            outcomes[(who.name, grant["scope"])] = (answers[0], answers[1])
    assert all(grant == session for grant, session in outcomes.values()), outcomes
    assert outcomes == {
        ("agent-oncall", "rollout-restart"): (200, 200),
        ("agent-oncall", "edit"): (200, 200),
        ("agent-other", "rollout-restart"): (403, 403),
        ("agent-other", "edit"): (403, 403),
        ("approver-alice", "rollout-restart"): (403, 403),  # not its approver: auto-approved by policy
        ("approver-alice", "edit"): (200, 200),
        ("admin", "rollout-restart"): (200, 200),
        ("admin", "edit"): (200, 200),
    }


# -- the CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def run_cli(signed, tmp_path) -> Callable[..., tuple[int, str, str]]:
    """``eks-jit`` as a script runs it (its own process: the handler's logs stay out of its output),
    signing with the identity's keys from the environment, against the signed API above."""
    url, _ = signed
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EKS_JIT_"))}

    def run(*args: str, who: Identity = AGENT) -> tuple[int, str, str]:
        env = keep | {"AWS_ACCESS_KEY_ID": who.access_key_id, "AWS_SECRET_ACCESS_KEY": who.secret_access_key}
        done = subprocess.run(
            [str(BIN), *args, "--endpoint", url, "--region", REGION],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, env=env,
        )  # fmt: skip
        return done.returncode, done.stdout, done.stderr

    return run


def test_eks_jit_session_prints_a_transcript_one_line_per_command(world, recorder, run_cli) -> None:
    grant = active_grant(world)
    made = a_session(world, grant["id"])
    hostile = Command(**{**made[0].to_json(), "at": made[2].at + timedelta(milliseconds=1)} | {  # type: ignore[arg-type]
        "request_id": "r-evil", "path": "/api/v1/namespaces/payments/pods/x\x1b[2J", "summary": "Pod x\n\rFAKE",
        "outcome": CommandOutcome.ALLOWED})  # fmt: skip
    record(recorder, [*made, hostile])
    code, out, err = run_cli("session", grant["id"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"grant {grant['id']}: 4 commands: 3 allowed, 1 refused, 0 blocked, 0 held, 0 approved"
    clock = made[0].at.strftime("%Y-%m-%dT%H:%M:%S.")
    assert lines[1] == f"  {clock}001Z  allowed   200  get  {DEPLOYMENT}  Deployment payments-api"
    assert lines[2] == (
        f"  {clock}002Z  allowed   200  patch  {DEPLOYMENT}?fieldManager=kubectl-rollout  Deployment payments-api"
    )
    assert lines[3] == f"    body: {made[1].body}"
    assert lines[4] == f"x {clock}003Z  refused   403  list  /api/v1/namespaces/payments/secrets"
    assert lines[5] == "    reason: secrets is forbidden: no grant of this session covers list secrets in payments"
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2J" in lines[6] and "FAKE" in lines[6]
    assert len(lines) == 7


def test_a_long_write_shows_its_first_lines_bounded(world, recorder, run_cli) -> None:
    grant = active_grant(world)
    body = "\n".join([json.dumps({"line": i, "pad": "x" * 300}) for i in range(5)])
    made = a_session(world, grant["id"])[1]
    record(recorder, [Command(**{**made.to_json(), "body": body} | {"at": made.at, "outcome": made.outcome})])  # type: ignore[arg-type]
    _, out, _ = run_cli("session", grant["id"])
    shown = out.splitlines()[2:]
    assert shown[0].startswith('    body: {"line": 0') and shown[0].endswith("...") and len(shown[0]) <= 170
    assert shown[1].startswith('          {"line": 1') and shown[1].endswith("...")
    assert shown[2] == "          ... (the whole body: eks-jit session --json)" and len(shown) == 3


def test_eks_jit_session_json_is_the_whole_answer_every_page(world, signed, recorder, run_cli) -> None:
    _, client = signed
    grant = active_grant(world)
    record(recorder, a_session(world, grant["id"], n=250))  # more than a page of the default 200
    code, out, _ = run_cli("session", grant["id"], "--json")
    answer = json.loads(out)
    assert code == 0 and len(answer["commands"]) == 253 and answer["next"] is None
    assert answer == client(AGENT).session(grant["id"])
    assert json.loads(run_cli("session", grant["id"], "-o", "json")[1]) == answer


def test_eks_jit_session_exits_as_eks_jit_status_does(world, recorder, run_cli) -> None:
    grant = active_grant(world)
    for args in ((UNKNOWN,), ("not-a-grant-id",)):
        status = run_cli("status", *args)
        session = run_cli("session", *args)
        assert session[0] == status[0] and session[0] in (2, 4), (args, session)
    assert run_cli("session", UNKNOWN)[0] == 4  # not found
    code, _, err = run_cli("session", grant["id"], who=OTHER)
    assert (code, run_cli("status", grant["id"], who=OTHER)[0]) == (4, 4) and "forbidden" in err
    code, out, _ = run_cli("session", UNKNOWN, "--json")
    assert code == 4 and json.loads(out)["code"] == "grant_not_found"
    assert run_cli("session", grant["id"], "-o", "csv")[0] == 2


# -- the audit -----------------------------------------------------------------------------------------


def test_the_audit_counts_each_grant_s_commands_in_a_last_csv_column(world, recorder, run_cli) -> None:
    used = active_grant(world)
    world.clock.advance(timedelta(seconds=1))
    unused = active_grant(world)
    world.clock.advance(timedelta(seconds=1))
    _, pending = world.call("POST", "/v1/grants", body=EDIT)
    record(recorder, a_session(world, used["id"], n=2))
    since = (world.clock.start - timedelta(hours=1)).isoformat()
    until = (world.clock.now() + timedelta(hours=1)).isoformat()
    _, audit = world.call("GET", "/v1/audit", query={"since": since, "until": until}, caller=ADMIN)
    assert {r["grant"]["id"]: r["commands"] for r in audit["rows"]} == {used["id"]: 5, unused["id"]: 0,
                                                                         pending["id"]: 0}  # fmt: skip
    code, out, _ = run_cli("audit", "--since", since, "--until", until, "-o", "csv", who=AUDITOR)
    assert code == 0
    header, *rows = list(csv.reader(io.StringIO(out)))
    assert header[-4:] == ["session", "commands", "blocked", "held"] and tuple(header) == cli.AUDIT_COLUMNS
    assert {r[0]: r[-3:] for r in rows} == {used["id"]: ["5", "0", "0"], unused["id"]: ["0", "0", "0"],
                                            pending["id"]: ["0", "0", "0"]}  # fmt: skip


def guarded_session(world, grant_id: str) -> list[Command]:
    """What issue 18's guardrails leave: an exec blocked, a delete held, then passed on its approval."""
    first = a_session(world, grant_id)[0]
    exec_path = "/api/v1/namespaces/payments/pods/payments-api-1/exec"
    base = first.to_json()

    def one(ms: int, **fields: Any) -> Command:
        return Command(**{**base, "at": first.at + timedelta(milliseconds=ms)} | fields)  # type: ignore[arg-type]

    return [
        first,
        one(5, request_id="r-exec", verb="create", path=exec_path, query="command=sh", outcome=CommandOutcome.BLOCKED,
            status=403, summary="", reason="eks-jit guardrail agents-never-exec blocks create pods/exec ..."),
        one(6, request_id="r-held", verb="delete", path=DEPLOYMENT, outcome=CommandOutcome.HELD, status=403,
            summary="", reason=f"approval required: eks-jit approve {HOLD} (eks-jit guardrail ... holds it)"),
        one(7, request_id="r-pass", verb="delete", path=DEPLOYMENT, outcome=CommandOutcome.APPROVED, status=200,
            summary="Status Success", reason=f"held command approved: eks-jit grant {HOLD} (used)"),
    ]  # fmt: skip


HOLD = "30c7166e-9148-48f7-ba55-58943889eebc"


def test_the_transcript_marks_blocked_held_and_approved_commands(world, recorder, run_cli) -> None:
    grant = active_grant(world)
    record(recorder, guarded_session(world, grant["id"]))
    code, out, err = run_cli("session", grant["id"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"grant {grant['id']}: 4 commands: 1 allowed, 0 refused, 1 blocked, 1 held, 1 approved"
    marks = [(line[0], line[2:].split()[1]) for line in lines[1:] if not line.startswith("    ")]
    assert marks == [(" ", "allowed"), ("!", "blocked"), ("?", "held"), ("+", "approved")]
    assert lines[3] == "    reason: eks-jit guardrail agents-never-exec blocks create pods/exec ..."
    assert lines[5] == f"    approval: eks-jit approve {HOLD}  (an approver approves it; it then passes once)"
    assert lines[7] == f"    approved by: held-command grant {HOLD} (eks-jit status {HOLD})"
    assert len(lines) == 8


def test_the_audit_counts_blocked_and_held_commands(world, recorder, run_cli) -> None:
    grant = active_grant(world)
    record(recorder, guarded_session(world, grant["id"]))
    since = (world.clock.start - timedelta(hours=1)).isoformat()
    until = (world.clock.now() + timedelta(hours=1)).isoformat()
    _, audit = world.call("GET", "/v1/audit", query={"since": since, "until": until}, caller=ADMIN)
    (row,) = [r for r in audit["rows"] if r["grant"]["id"] == grant["id"]]
    assert (row["commands"], row["blocked"], row["held"]) == (4, 1, 1)
    code, out, _ = run_cli("audit", "--since", since, "--until", until, "-o", "csv", who=AUDITOR)
    header, *rows = list(csv.reader(io.StringIO(out)))
    (mine,) = [dict(zip(header, r, strict=True)) for r in rows if r[0] == grant["id"]]
    assert (code, mine["commands"], mine["blocked"], mine["held"]) == (0, "4", "1", "1")
