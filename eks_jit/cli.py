"""The ``eks-jit`` command line, for agents and people.

Exit codes (stable, for scripts):
  0  done: the grant is active, or the action succeeded
  1  denied: by policy or by an approver
  2  bad input: a usage error, an invalid request (HTTP 400), an unknown profile or local
     identity, a malformed endpoint, no credentials
  3  the grant is not (or no longer) giving access: expired, revoked, cancelled, failed; or a
     wait timed out (the grant is printed, so a script still gets its id)
  4  not allowed, not found or conflicting state (HTTP 403/404/409/410), e.g. an
     --idempotency-key already used for another request
  5  the API is unreachable or failed (HTTP 5xx), or the first request with this
     --idempotency-key is still being answered: run the same command again (same key)
Every non-zero exit prints one line on stderr saying why; with ``-o json`` the reason is also a
JSON object on stdout, ``{"code", "message", "exit", ...}`` (or the grant itself, when the
answer is a grant that ended or a wait that timed out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from eks_jit.bundled import bundled

DEFAULT_CONFIG = bundled("config", "example", "eks-jit.yaml")
DEFAULT_STATE = Path(".eks-jit")
IDEMPOTENCY_HELP = (
    "makes the command safe to run again: the same key and arguments within 24 h answer the same grant "
    "(default: a new key for each run; 1-255 printable ASCII characters)"
)
EXIT_BY_STATUS = {"active": 0, "denied": 1, "expired": 3, "cancelled": 3, "failed": 3, "revoked": 3}


class CliError(Exception):
    """A refusal by the CLI itself: exit ``code``, a stable ``error`` code and a one-line message."""

    def __init__(self, code: int, message: str, error: str = "usage") -> None:
        super().__init__(message)
        self.code, self.error = code, error


# -- output ------------------------------------------------------------------------------------------

GRANT_COLUMNS = ("id", "kind", "status", "scope", "cluster", "namespaces", "session", "expires_at", "requester")
# What an approver needs to decide, without opening each request
PENDING_COLUMNS = (
    "id", "kind", "requester", "cluster", "namespaces", "scope", "session", "duration", "reason", "task",
    "created_at",
)  # fmt: skip


def with_kind(grants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marks extensions (``extension of <grant>``): their window is their grant's, not their own."""
    return [
        g
        | {
            "kind": f"extension of {g['extends'][:8]}" if g.get("extends") else "grant",
            "task": _one_line((g.get("context") or {}).get("task_id") or ""),
        }
        for g in grants
    ]


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return "-" if value in (None, "") else str(value)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def show(args: argparse.Namespace, value: Any, human: str) -> None:
    print(json.dumps(value, indent=2) if args.output == "json" else human)


CONTEXT_FIELDS = (("incident_url", "incident"), ("alert", "alert"), ("task_id", "task"))


def _one_line(value: Any) -> str:
    """A requester's text on one terminal line: control characters (escape sequences, newlines)
    shown as ``\\xNN``-style escapes, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def context_lines(context: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A grant's context as (label, line) pairs: the requester's words, so quoted."""
    if not context:
        return []
    lines = [(label, json.dumps(_one_line(context[k]))) for k, label in CONTEXT_FIELDS if context.get(k)]
    lines += [(f"command {i}", json.dumps(_one_line(c))) for i, c in enumerate(context.get("commands") or [], 1)]
    return lines


def describe_grant(grant: dict[str, Any]) -> str:
    fields = ("id", "status", "requester", "cluster", "access_mode", "namespaces", "scope", "session", "duration",
              "reason", "created_at", "activated_at", "expires_at", "ended_at", "status_reason",
              "approved_by")  # fmt: skip
    width = max(map(len, fields))
    lines = [f"{f.ljust(width)}  {_cell(grant.get(f))}" for f in fields if grant.get(f) not in (None, "", [])]
    lines += [f"{k.ljust(width)}  {v}" for k, v in context_lines(grant.get("context"))]
    if grant.get("events"):
        lines += ["", table(grant["events"], ("version", "type", "at", "actor"))]
    return "\n".join(lines)


# -- the client -----------------------------------------------------------------------------------------


def client(args: argparse.Namespace) -> Any:
    from eks_jit.client import ApiError, Client, local_state
    from eks_jit.kubeconfig import LocalIdentity

    state: dict[str, Any] | None = None
    with contextlib.suppress(ApiError):  # not in local mode: fine unless --as is given
        state = local_state(args.state_dir)
    endpoint = args.endpoint or os.environ.get("EKS_JIT_ENDPOINT") or (state or {}).get("api_endpoint")
    if not endpoint:
        raise CliError(
            2, "no API endpoint: pass --endpoint, set EKS_JIT_ENDPOINT, or run `eks-jit local up`", "no_endpoint"
        )
    credentials = local_identity(args, state)
    region = args.region or (state or {}).get("region") if args.as_identity else args.region
    api = Client(endpoint, region=region, profile=args.profile, credentials=credentials)
    if args.as_identity:  # its kubeconfigs make tokens as that identity (`eks-jit token --as`)
        api.local = LocalIdentity(args.as_identity, str(Path(args.state_dir).resolve()))
    return api


def local_identity(args: argparse.Namespace, state: dict[str, Any] | None) -> Any:
    """The keys of ``--as NAME`` (None without ``--as``); exit 2 outside local mode or for an unknown name."""
    from eks_jit.client import local_credentials

    if not args.as_identity:
        return None
    if not state:
        raise CliError(
            2, f"--as {args.as_identity} needs local mode ({args.state_dir}/local.json not found)", "not_local_mode"
        )
    return local_credentials(state, args.as_identity)  # ApiError unknown_identity: exit 2


def _progress(grant: dict[str, Any], waited: float) -> None:
    if sys.stderr.isatty():
        print(f"\rwaiting: {grant['status']} for {waited:4.0f}s", end="", file=sys.stderr, flush=True)
    elif int(waited) % 10 == 0:
        print(f"waiting: {grant['status']} for {waited:.0f}s", file=sys.stderr, flush=True)


def _settle(args: argparse.Namespace, grant: dict[str, Any]) -> int:
    timed_out = None
    if getattr(args, "wait", False) and grant["status"] in ("pending_approval", "approved"):
        api = client(args)
        try:
            grant = api.wait(grant["id"], timeout=args.timeout, interval=1.0, progress=_progress)
        except TimeoutError as exc:
            timed_out, grant = str(exc), api.grant(grant["id"])
        if sys.stderr.isatty():
            print(file=sys.stderr)
    show(args, grant, describe_grant(grant))
    if timed_out:
        print(f"eks-jit: {timed_out} (eks-jit wait {grant['id']} to keep waiting)", file=sys.stderr)
        return 3
    code = EXIT_BY_STATUS.get(grant["status"], 0)
    if grant["status"] == "active" and not grant.get("extends") and grant.get("access_mode") != "gateway":
        propagation_hint(grant["id"])  # an extension adds no new access; the gateway reads the grant at once
    if code:
        print(
            f"eks-jit: grant {grant['id']} is {grant['status']}: {grant.get('status_reason') or 'no reason given'}",
            file=sys.stderr,
        )
    return code


def propagation_hint(grant_id: str) -> None:
    """One line on stderr: ``active`` means EKS accepted the entry, not that it is in effect yet."""
    from eks_jit.client import PROPAGATION_HINT

    print(f"eks-jit: grant {grant_id} is active. {PROPAGATION_HINT}", file=sys.stderr)


# -- commands --------------------------------------------------------------------------------------------


def request_context(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--context-*`` flags as the API's ``context`` object (None when none is given); the
    API checks it (400 ``invalid_context``: exit 2)."""
    context = {
        "incident_url": args.context_url,
        "alert": args.context_alert,
        "task_id": args.context_task,
        "commands": args.context_command or None,
    }
    return {k: v for k, v in context.items() if v is not None} or None


def cmd_request(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    grant = client(args).request_grant(
        args.cluster,
        args.namespace,
        args.scope,
        args.duration,
        args.reason,
        context=request_context(args),
        idempotency_key=args.idempotency_key,
        session=args.session,
    )
    return _settle(args, grant)


def _dry_run(args: argparse.Namespace) -> int:
    """What the request would get, nothing written: exit 0 if it would be granted (at once or by
    approvers), 1 if it would be denied, so `eks-jit request --dry-run ... && ...` reads naturally."""
    answer = client(args).dry_run(
        args.cluster, args.namespace, args.scope, args.duration, args.reason, session=args.session
    )
    show(args, answer, describe_verdict(answer))
    return 1 if answer["decision"] == "deny" else 0


def describe_verdict(verdict: dict[str, Any]) -> str:
    """One line: ``auto up to 15m``, ``manual up to 1h: 1 of group:payments-approvers``, ``deny: why``."""
    if verdict["decision"] == "deny":
        return f"deny: {verdict.get('reason') or 'no reason given'}"
    line = f"{verdict['decision']} up to {verdict.get('max_duration')}"
    if verdict["decision"] == "manual":
        line += f": {verdict['approvals_required']} of {', '.join(verdict['approvers'])}"
    longer = verdict.get("longer")
    return f"{line}; longer: {describe_verdict(longer)}" if longer else line


def cmd_catalog(args: argparse.Namespace) -> int:
    entries = client(args).catalog()
    rows = [e | {"namespace": e.get("namespace") or "(cluster)", "decision": describe_verdict(e)} for e in entries]
    human = table(rows, ("cluster", "namespace", "scope", "decision")) if rows else "(nothing to request)"
    show(args, entries, human)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    grant = client(args).grant(args.id)
    show(args, grant, describe_grant(grant))
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    args.wait = True
    return _settle(args, client(args).grant(args.id))


def cmd_list(args: argparse.Namespace) -> int:
    api = client(args)
    grants = api.approvals() if args.pending else api.grants(status=args.status, mine=not args.all, limit=args.limit)
    columns = PENDING_COLUMNS if args.pending else GRANT_COLUMNS
    show(args, grants, table(with_kind(grants), columns) if grants else "(none)")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    api = client(args)
    action = {"approve": api.approve, "deny": api.deny, "revoke": api.revoke, "cancel": api.cancel}[args.command]
    grant = action(args.id, args.comment)
    show(args, grant, describe_grant(grant))
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    extension = client(args).extend(
        args.id, args.duration, args.reason, context=request_context(args), idempotency_key=args.idempotency_key
    )
    return _settle(args, extension)


def cmd_activity(args: argparse.Namespace) -> int:
    report = client(args).activity(args.id)
    lines = [
        f"{report['status']}: {report['total']} requests {report.get('window_start')} .. {report.get('window_end')}"
    ]
    if report.get("note"):
        lines.append(report["note"])
    if report["summary"]:
        rows = [r | {"codes": " ".join(f"{c}x{n}" for c, n in r["codes"].items())} for r in report["summary"]]
        lines += ["", table(rows, ("verb", "resource", "namespace", "count", "codes"))]
    if report["forbidden"]:
        lines += [
            "",
            "FORBIDDEN (outside the grant):",
            table(report["forbidden"], ("at", "verb", "resource", "namespace", "name", "code")),
        ]
    show(args, report, "\n".join(lines))
    return 0


TRANSCRIPT_BODY_LINES = 2  # a write's body: its first lines, each cut to TRANSCRIPT_WIDTH
TRANSCRIPT_WIDTH = 160
OUTCOMES = ("allowed", "refused", "blocked", "held", "approved")  # the API's, in the summary's order
# A line's first character: what the gateway did with it, for the eye and for grep ('^!' finds the blocked).
MARKS = {"allowed": " ", "refused": "x", "blocked": "!", "held": "?", "approved": "+"}
# The gateway's own words (lambdas/domain/holds.py, lambdas/handlers/gateway.py): a held request's
# refusal starts with the approval to ask for; an approved one names the held-command grant it used.
HELD_REASON = re.compile(r"^approval required: eks-jit approve ([0-9A-Za-z-]{1,64})\b")
APPROVED_REASON = re.compile(r"^held command approved: eks-jit grant ([0-9A-Za-z-]{1,64})\b")
FOLLOW_INTERVAL = 2.0


def cmd_session(args: argparse.Namespace) -> int:
    if args.json:
        args.output = "json"
    if args.follow:
        if args.output == "json":
            raise CliError(2, "--follow prints a transcript: drop --json (or -o json), or drop --follow")
        if not args.interval > 0:
            raise CliError(2, f"--interval must be more than 0 seconds, not {args.interval}")
        return follow(client(args), args.id, interval=args.interval)
    answer = client(args).session(args.id)
    show(args, answer, transcript(answer))
    return 0


def transcript(answer: dict[str, Any]) -> str:
    """The session log as a transcript: a summary line (how many commands, of each outcome), then one
    line per command (see :func:`command_lines`)."""
    commands = answer["commands"]
    head = f"grant {answer['grant_id']}: {tally(commands)}"
    if not commands:
        return head + " (none recorded: not used through the gateway yet, or not a gateway cluster)"
    return "\n".join([head, *(line for c in commands for line in command_lines(c))])


def tally(commands: list[dict[str, Any]]) -> str:
    """``12 commands: 9 allowed, 1 refused, 1 blocked, 1 held, 0 approved`` (an outcome this CLI does
    not know yet, from a newer API, is counted after them)."""
    counts = {o: 0 for o in OUTCOMES}
    for c in commands:
        counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
    total = f"{len(commands)} command{'s' if len(commands) != 1 else ''}"
    return total if not commands else f"{total}: " + ", ".join(f"{n} {_one_line(o)}" for o, n in counts.items())


def command_lines(c: dict[str, Any]) -> list[str]:
    """One command: its mark (:data:`MARKS`), time, outcome, status, verb, path (and query), summary;
    below it, indented, why it was not simply allowed (the approval a held one waits for, the held
    command grant an approved one used, the gateway's reason) and a write's body (its first lines).
    Everything but the time and numbers was sent by the agent or its cluster: one line each, escaped."""
    outcome = c["outcome"]
    target = c["path"] + (f"?{c['query']}" if c.get("query") else "")
    fields = [_clock(c["at"]), outcome.ljust(8), str(c["status"]), c["verb"], target, c.get("summary") or ""]
    lines = [_one_line(MARKS.get(outcome, "*") + " " + "  ".join(f for f in fields if f))]
    reason = c.get("reason") or ""
    if outcome == "held" and (held := HELD_REASON.match(reason)):
        lines.append(f"    approval: eks-jit approve {held.group(1)}  (an approver approves it; it then passes once)")
    elif outcome == "approved" and (used := APPROVED_REASON.match(reason)):
        lines.append(f"    approved by: held-command grant {used.group(1)} (eks-jit status {used.group(1)})")
    elif outcome != "allowed" and reason:
        lines.append("    reason: " + _cut(reason))
    if c.get("body"):
        body = [line for line in c["body"].splitlines() if line.strip()]
        shown = [_cut(line) for line in body[:TRANSCRIPT_BODY_LINES]]
        more = (
            len(body) > TRANSCRIPT_BODY_LINES
            or c.get("body_truncated")
            or any(len(line) > TRANSCRIPT_WIDTH for line in body[:TRANSCRIPT_BODY_LINES])
        )
        lines += [f"    body: {line}" if i == 0 else f"          {line}" for i, line in enumerate(shown)]
        if more:
            lines.append("          ... (the whole body: eks-jit session --json)")
    return lines


def follow(api: Any, grant_id: str, *, interval: float, sleep: Any = time.sleep) -> int:
    """``eks-jit session ID --follow``: the transcript so far, then each command as it is recorded,
    every ``interval`` s, until the grant is no longer pending or in force; then one line saying how it
    ended, exit 0 (Ctrl-C: 130). Each poll reads again from the start of the last page read (the API's
    paging), and a command already shown (same ``at`` and ``request_id``: the record's key) is not shown
    again; when the grant has ended the whole log is read once more, so a command recorded late (a long
    watch or exec is recorded when it ends, under the time it began) is shown then, out of order."""
    from eks_jit.client import ApiError

    seen: set[tuple[str, str]] = set()

    def read(start: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The commands from after ``start``, and the ``after`` the last page was read from."""
        commands: list[dict[str, Any]] = []
        last = start
        for read_from, page in api.session_pages(grant_id, after=start):
            last = read_from
            commands += page["commands"]
        return commands, last

    def unseen(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = []
        for c in commands:
            if (key := (c["at"], c["request_id"])) not in seen:
                seen.add(key)
                new.append(c)
        return new

    try:
        grant = api.grant(grant_id)
        commands, tail = read(None)
        print(transcript({"grant_id": grant_id, "commands": unseen(commands)}), flush=True)
        while grant["status"] in FOLLOWED:
            sleep(interval)
            try:
                latest = api.grant(grant_id)  # before reading: what was recorded before it ended is read
                commands, tail = read(tail)
                if latest["status"] not in FOLLOWED:
                    commands += read(None)[0]
            except ApiError as exc:
                if not exc.transient:
                    raise
                print(f"eks-jit: {exc.code}: {exc.message} (trying again in {interval:g}s)", file=sys.stderr)
                continue
            grant = latest
            for line in (line for c in unseen(commands) for line in command_lines(c)):
                print(line, flush=True)
        print(ended(grant), flush=True)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 0


FOLLOWED = frozenset({"pending_approval", "approved", "active"})  # a grant that may still give access


def ended(grant: dict[str, Any]) -> str:
    """The last line of ``--follow``: ``-- grant G expired at 2026-06-01T10:15:00Z (reason)``."""
    at = grant.get("ended_at") or grant.get("expires_at")
    why = grant.get("status_reason")
    return _one_line(
        f"-- grant {grant['id']} {grant['status']}"
        + (f" at {at}" if at else "")
        + (f": {why}" if why else "")
        + ": no more commands can be recorded under it"
    )


def _clock(at: str) -> str:
    """``2026-06-01T10:00:07.250Z``: to the millisecond, in UTC as recorded."""
    from datetime import UTC, datetime

    return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _cut(text: str) -> str:
    line = _one_line(text)
    return line if len(line) <= TRANSCRIPT_WIDTH else line[: TRANSCRIPT_WIDTH - 3] + "..."


AUDIT_COLUMNS = (
    "grant_id", "requester", "cluster", "namespaces", "scope", "reason", "status", "created_at",
    "approved_by", "activated_at", "expires_at", "ended_at", "ended_how", "forbidden", "activity",
    "context_incident_url", "context_alert", "context_task_id", "context_commands", "session", "commands",
    "blocked", "held",
)  # fmt: skip  # new columns go last: consumers that read by position keep working


def audit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat = []
    for row in rows:
        grant = row["grant"]
        flat.append(
            {
                "grant_id": grant["id"],
                "requester": grant["requester"],
                "cluster": grant["cluster"],
                "namespaces": ";".join(grant["namespaces"]),
                "scope": grant["scope"],
                "reason": inert_cell(grant["reason"]),  # the requester's words, as the context cells
                "status": grant["status"],
                "created_at": grant["created_at"],
                "approved_by": ";".join(grant["approved_by"]),
                "activated_at": grant.get("activated_at") or "",
                "expires_at": grant.get("expires_at") or "",
                "ended_at": grant.get("ended_at") or "",
                "ended_how": inert_cell(grant.get("status_reason") or ""),  # a revoke's or denial's reason
                "forbidden": row["forbidden"],
                "activity": row["activity"],
                **context_cells(grant.get("context") or {}),
                "session": inert_cell(grant.get("session") or ""),  # a session name may start with = + - @
                "commands": row.get("commands", 0),  # recorded by the gateway (its session log); an older API: 0
                "blocked": row.get("blocked", 0),  # of those, blocked by a guardrail; an older API: 0
                "held": row.get("held", 0),  # of those, held by a guardrail for their own approval
            }
        )
    return flat


def context_cells(context: dict[str, Any]) -> dict[str, str]:
    """The request's context as CSV cells. The requester wrote them, and a spreadsheet runs a
    cell that starts with ``= + - @`` (or a tab or CR) as a formula: such a cell gets a leading
    ``'`` (OWASP, "CSV injection"). Commands are joined with `` ; `` in one cell."""
    cells = {
        "context_incident_url": context.get("incident_url") or "",
        "context_alert": context.get("alert") or "",
        "context_task_id": context.get("task_id") or "",
        "context_commands": " ; ".join(context.get("commands") or []),
    }
    return {k: inert_cell(v) for k, v in cells.items()}


def inert_cell(value: str) -> str:
    """A requester's text as a CSV cell a spreadsheet shows rather than runs (OWASP, "CSV injection")."""
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def cmd_audit(args: argparse.Namespace) -> int:
    import csv

    rows = audit_rows(client(args).audit(args.since, args.until))
    if args.output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return 0
    short = ("grant_id", "requester", "scope", "namespaces", "status", "approved_by", "ended_how", "activity",
             "commands", "blocked", "held")  # fmt: skip
    show(args, rows, table(rows, short) if rows else "(no grants in that range)")
    return 0


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    import yaml

    from eks_jit.files import write_private
    from eks_jit.kubeconfig import GrantNotActive

    api = client(args)  # its exec makes tokens as the API call is signed: the same profile or local identity
    try:
        config = api.kubeconfig(args.id)
    except GrantNotActive as exc:
        raise CliError(3, str(exc), "not_active") from None
    # kubectl reads a kubeconfig written as JSON as well as YAML: -o json is honoured, file or stdout
    text = json.dumps(config, indent=2) + "\n" if args.output == "json" else yaml.safe_dump(config, sort_keys=False)
    if args.out:
        path = Path(args.out)
        write_private(path, text)
        print(f"wrote {path} (expires with the grant; KUBECONFIG={path} kubectl ...)", file=sys.stderr)
    else:
        print(text, end="")
    if config["users"][0]["user"]["exec"]["command"] != "eks-jit":  # gateway: in force at once
        propagation_hint(args.id)
    return 0


CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")  # EKS's rule for a cluster name


def cmd_token(args: argparse.Namespace) -> int:
    """The ExecCredential kubectl's exec plugin reads (the same token as ``aws eks get-token``),
    signed by the normal credential chain (``--profile``, the environment...) or, in local mode,
    by ``--as NAME``'s keys. Always JSON: kubectl parses it."""
    from datetime import UTC, datetime

    from botocore.exceptions import BotoCoreError, ProfileNotFound

    from eks_jit.client import ApiError, local_state
    from eks_jit.token import NoCredentials, token_for

    if not CLUSTER_NAME.match(args.cluster):
        raise CliError(2, f"'{args.cluster}' is not an EKS cluster name", "invalid_cluster")
    state = None
    if args.as_identity:
        with contextlib.suppress(ApiError):
            state = local_state(args.state_dir)
    credentials = local_identity(args, state)
    if args.session:
        from eks_jit.local.sessions import SESSION_NAME, session_credentials

        if credentials is None:
            raise CliError(
                2,
                "--session is for local mode (--as NAME): on AWS the session is your credentials' own "
                "(assume the role with --role-session-name)",
                "usage",
            )
        if not SESSION_NAME.match(args.session):
            raise CliError(2, f"'{args.session}' is not an STS role session name", "invalid_session")
        credentials = session_credentials(credentials.access_key, credentials.secret_key, args.session)
    region = args.region or ((state or {}).get("region") if args.as_identity else None)
    try:
        _, credential = token_for(
            args.cluster, datetime.now(UTC), profile=args.profile, region=region, credentials=credentials
        )
    except ProfileNotFound:
        named = args.profile or os.environ.get("AWS_PROFILE")
        raise CliError(2, f"no AWS profile '{named}' (aws configure list-profiles)", "profile_not_found") from None
    except NoCredentials as exc:
        raise CliError(2, str(exc), "no_credentials") from None
    except BotoCoreError as exc:  # e.g. an SSO session that expired: the chain cannot sign
        raise CliError(2, f"cannot sign a token: {exc}", "no_credentials") from None
    print(json.dumps(credential))
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    me = client(args).whoami()
    show(args, me, "\n".join(f"{k:9}  {_cell(v)}" for k, v in me.items()))
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    import mcp  # noqa: F401 - first: without the 'mcp' extra, exit 2 naming the SDK, before anything else

    from eks_jit.mcp import serve

    api = client(args)  # the CLI's own credentials: --profile, the environment, --as NAME, --endpoint
    kubeconfig_dir = Path(args.kubeconfig_dir) if args.kubeconfig_dir else None
    return serve(api, transport=args.transport, host=args.host, port=args.port, kubeconfig_dir=kubeconfig_dir)


def cmd_rbac_render(args: argparse.Namespace) -> int:
    from eks_jit.rbac import render
    from eks_jit.server.config import ConfigError, load_config

    try:
        catalog, _ = load_config(args.config)
        written = render(catalog, args.out, args.kubernetes_version)  # a catalog RBAC cannot express: ConfigError
    except ConfigError as exc:
        raise CliError(2, " ".join(str(exc).split()), "invalid_config") from None
    for path in written:
        print(path)
    return 0


def aws_cli_line(state: dict[str, Any], *command: str) -> str:
    """An AWS CLI command line against local mode's emulated AWS, runnable as printed: moto takes
    any keys, but the CLI wants some, and local mode's region (not $AWS_DEFAULT_REGION's)."""
    import shlex

    keys = ["AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"]
    return " ".join([*keys, shlex.join(["aws", "--region", state["region"], "--endpoint-url", state["aws_endpoint"],
                                        *command])])  # fmt: skip


def banner(state: dict[str, Any], state_dir: Path) -> list[str]:
    """What ``local up`` prints: where everything is, and the first command for each."""
    sd_flag = "" if state_dir == DEFAULT_STATE else f" --state-dir {state_dir}"
    humans = ", ".join(state.get("inboxes", {})) or "-"
    return [
        f"eks-jit local mode is up (state: {state_dir.resolve()}/local.json)",
        f"  API endpoint  {state['api_endpoint']}   (SigV4, service execute-api, region {state['region']})",
        f"  AWS endpoint  {state['aws_endpoint']}   (moto; what EKS holds, with the AWS CLI:)",
        "                " + aws_cli_line(state, "eks", "list-access-entries", "--cluster-name", "demo"),
        "  identities    " + ", ".join(i["name"] for i in state["identities"]) + f"   (eks-jit --as NAME{sd_flag} ...)",
        f"  approvals     eks-jit local inbox [--as approver-alice]{sd_flag}   (approval links sent to {humans})",
        *(
            [
                f"  gateway       {state['gateway_endpoint']}   (kubectl for gateway clusters such as demo-gateway: "
                f"eks-jit kubeconfig ID --as NAME{sd_flag})"
            ]
            if state.get("gateway_endpoint")
            else []
        ),
    ]


def cmd_local_inbox(args: argparse.Namespace) -> int:
    from eks_jit.client import local_aws, local_client, local_state
    from eks_jit.local import inbox

    state_dir = Path(args.state_dir)
    state = local_state(state_dir)
    queues: dict[str, str] = state.get("inboxes", {})
    if args.as_identity and args.as_identity not in queues:
        raise CliError(2, f"{args.as_identity} has no inbox (approvers: {', '.join(queues) or 'none'})", "no_inbox")
    names = [args.as_identity] if args.as_identity else list(queues)
    sqs = local_aws("sqs", state_dir)
    deadline = time.monotonic() + args.timeout
    while True:
        arrived = [n for name in names for body in inbox.drain(sqs, queues[name]) if (n := inbox.parse(name, body))]
        # what each approver may decide now: notices of requests decided, withdrawn or timed out go
        still = {name: {g["id"] for g in local_client(name, state_dir).approvals()} for name in names}
        kept = inbox.pending(inbox.load(state_dir), arrived, still)
        inbox.save(state_dir, kept)
        shown = [n for n in kept if n.approver in still]
        if shown or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    rows = [{"approver": n.approver, "grant_id": n.grant_id, "request": n.request, "link": n.link} for n in shown]
    human = table(rows, ("approver", "grant_id", "request", "link")) if rows else "(no pending approvals)"
    show(args, rows, human + ("\nOpen a link in a browser: the page shows the request; only its buttons decide."
                              if rows else ""))  # fmt: skip
    return 0


def cmd_local_up(args: argparse.Namespace) -> int:
    import signal
    import threading

    from eks_jit.local.stack import LocalControlPlane, PortBusy, load_identities
    from eks_jit.server.config import ConfigError, load_config

    for given in (args.config, args.identities):
        if not given.is_file():
            raise CliError(2, f"{given}: no such file", "no_such_file")
    try:
        load_config(args.config)  # a bad file is bad input, said before anything starts
        load_identities(args.identities)
    except (ConfigError, ValueError) as exc:
        raise CliError(2, " ".join(str(exc).split()), "invalid_config") from None
    plane = LocalControlPlane(
        Path(args.state_dir),
        port=args.port,
        aws_port=args.aws_port,
        config_path=args.config.resolve(),
        identities_path=args.identities.resolve(),
    )
    try:
        state = plane.start()
    except PortBusy as exc:
        raise CliError(4, str(exc), "port_busy") from None
    for line in banner(state, Path(args.state_dir)):
        print(line)
    print("Ctrl-C stops everything.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    plane.stop()
    print("eks-jit local mode stopped.")
    return 0


# -- parser ---------------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr (and JSON on stdout with ``-o json``), exit 2."""

    def error(self, message: str) -> NoReturn:
        raise CliError(2, f"{message} (see: {self.prog} --help)")


class Once(argparse.Action):
    """A flag that takes one value: given twice is an error, not 'the last one wins'."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any, flag: Any = None
    ) -> None:
        if getattr(namespace, self.dest, None) not in (None, self.default):
            hint = (
                " (one grant covers one namespace: request one grant per namespace)" if self.dest == "namespace" else ""
            )
            raise CliError(2, f"{flag} given more than once{hint}")
        setattr(namespace, self.dest, value)


def _common(suppress: bool) -> Parser:
    """The flags every command takes, before or after the command's name. After it, they are
    parsed with no defaults (SUPPRESS), so they override the ones given before it only if given."""
    common = Parser(add_help=False)

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    common.add_argument(
        "--endpoint", default=default(None), help="API base URL (default: $EKS_JIT_ENDPOINT or local mode's)"
    )
    common.add_argument("--profile", default=default(None), help="AWS profile to sign with")
    common.add_argument("--region", default=default(None), help="AWS region to sign for")
    common.add_argument(
        "--as", dest="as_identity", default=default(os.environ.get("EKS_JIT_AS")), help="local mode identity"
    )
    common.add_argument("--state-dir", default=default(str(DEFAULT_STATE)), help="local mode state (default: .eks-jit)")
    common.add_argument(
        "--output", "-o", choices=("table", "json", "csv"), default=default("table"), help="csv: audit only"
    )
    return common


def add_context_flags(command: argparse.ArgumentParser) -> None:
    """What the access is for, shown to approvers and kept in the audit (the API's ``context``)."""
    group = command.add_argument_group("context (shown to approvers, kept in the audit)")
    group.add_argument("--context-url", action=Once, metavar="URL", help="the incident or alert: an https:// link")
    group.add_argument("--context-alert", action=Once, metavar="TEXT", help="the alert's title or text, one line")
    group.add_argument("--context-task", action=Once, metavar="ID", help="the task or ticket id")
    group.add_argument(
        "--context-command",
        action="append",
        metavar="CMD",
        help="a command it plans to run (repeat for each, in order; at most 10)",
    )


def parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)
    top = Parser(
        prog="eks-jit", description="Just-in-time, self-expiring access to Amazon EKS.", parents=[_common(False)]
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    def add(name: str, run: Any, helptext: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=helptext, description=helptext)
        sub.set_defaults(run=run)
        return sub

    request = add("request", cmd_request, "ask for access")
    request.add_argument("--cluster", required=True, action=Once)
    request.add_argument("--namespace", action=Once, help="omit for a cluster-wide scope")
    request.add_argument("--scope", required=True, action=Once, help="a scope from the catalog, e.g. rollout-restart")
    request.add_argument("--duration", required=True, action=Once, help="90s, 15m, 1h or ISO-8601")
    request.add_argument("--reason", required=True, action=Once, help="why, for the approver and the audit")
    add_context_flags(request)
    request.add_argument("--wait", action="store_true", help="wait until active, denied or expired")
    request.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)")
    request.add_argument("--idempotency-key", action=Once, help=IDEMPOTENCY_HELP)
    request.add_argument(
        "--session",
        action=Once,
        metavar="NAME",
        help="bind the grant to this STS role session (gateway clusters only): only that session may use it",
    )
    request.add_argument(
        "--dry-run", action="store_true", help="only say what policy would decide (exit 1 if deny); write nothing"
    )
    add("catalog", cmd_catalog, "what I could request, each with the decision a request would get")
    add("status", cmd_status, "show a grant and its events").add_argument("id")
    wait = add("wait", cmd_wait, "wait until a grant is active or over")
    wait.add_argument("id")
    wait.add_argument("--timeout", type=float, default=3600.0)
    listing = add("list", cmd_list, "list my grants, or requests pending my approval")
    listing.add_argument("--pending", action="store_true", help="requests I may approve now")
    listing.add_argument("--status", help="only grants in this status")
    listing.add_argument("--all", action="store_true", help="everyone's (admins; needs --status)")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (1-200, default 200)")
    for verb, helptext in (
        ("approve", "approve a request"),
        ("deny", "deny a request"),
        ("revoke", "end a grant now"),
        ("cancel", "withdraw my pending request"),
    ):
        sub = add(verb, cmd_decide, helptext)
        sub.add_argument("id")
        sub.add_argument("--comment", "--reason", dest="comment", default="")
    add("whoami", cmd_whoami, "who the API takes me to be")
    extend = add("extend", cmd_extend, "ask to lengthen an active grant (same policy, whole window)")
    extend.add_argument("id", help="the grant (not one of its extensions)")
    extend.add_argument("--duration", required=True, action=Once, help="additional time, added to the current expiry")
    extend.add_argument("--reason", required=True, action=Once)
    add_context_flags(extend)
    extend.add_argument("--wait", action="store_true")
    extend.add_argument("--timeout", type=float, default=3600.0)
    extend.add_argument("--idempotency-key", action=Once, help=IDEMPOTENCY_HELP)
    kube = add(
        "kubeconfig",
        cmd_kubeconfig,
        "write a kubeconfig for an active grant (aws eks get-token; eks-jit token on a gateway cluster)",
    )
    kube.add_argument("id")
    kube.add_argument("--out", help="file to write (default: standard output)")
    token = add("token", cmd_token, "print an EKS token for kubectl (ExecCredential JSON, as aws eks get-token)")
    token.add_argument("--cluster", required=True, action=Once, help="the EKS cluster's name")
    token.add_argument(
        "--session",
        action=Once,
        help="local mode (--as): sign as this STS role session of the identity, for a session-bound grant",
    )
    add("activity", cmd_activity, "what a grant's principal did on the cluster (EKS audit log)").add_argument("id")
    session = add("session", cmd_session, "the Kubernetes requests sent with a grant through the gateway (transcript)")
    session.add_argument("id")
    session.add_argument("--json", action="store_true", help="the API's answer as JSON, every page (as -o json)")
    session.add_argument(
        "--follow", "-f", action="store_true", help="then print each new command until the grant ends (Ctrl-C stops)"
    )
    session.add_argument(
        "--interval",
        type=float,
        default=FOLLOW_INTERVAL,
        metavar="SECONDS",
        help="--follow: seconds between polls (default: %(default)s)",
    )
    audit = add("audit", cmd_audit, "every grant in a time range, for auditors (table, json or csv)")
    audit.add_argument("--since", required=True, help="ISO-8601 date or time, inclusive")
    audit.add_argument("--until", required=True, help="ISO-8601 date or time, exclusive")
    audit.set_defaults(csv_ok=True)

    mcp = add("mcp", cmd_mcp, "serve eks-jit as MCP tools for an agent (stdio, or streamable HTTP)")
    mcp.set_defaults(extra="mcp")
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP: address to listen on (default: 127.0.0.1)")
    mcp.add_argument("--port", type=int, default=8766, help="HTTP: port (default: 8766); the URL is /mcp")
    mcp.add_argument(
        "--kubeconfig-dir",
        help="where get_kubeconfig writes (default: $EKS_JIT_KUBECONFIG_DIR or ~/.kube/eks-jit)",
    )

    rbac_parser = commands.add_parser("rbac", help="in-cluster RBAC for the scope catalog")
    rbac_parser.set_defaults(extra="rbac")  # every `rbac` command: see needs_extra
    rbac = rbac_parser.add_subparsers(dest="rbac_command", required=True)
    render = rbac.add_parser("render", help="write validated Role/RoleBinding YAML per cluster")
    render.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration file (default: %(default)s)")
    render.add_argument("--out", type=Path, default=Path("deploy/rbac"), help="output folder (default: %(default)s)")
    render.add_argument("--kubernetes-version", default="1.33.0", help="schema to validate against")
    render.set_defaults(run=cmd_rbac_render)

    local_parser = commands.add_parser("local", help="local mode")
    local_parser.set_defaults(extra="local")  # every `local` command: see needs_extra
    local = local_parser.add_subparsers(dest="local_command", required=True)
    up = local.add_parser("up", help="run the whole control plane locally (no AWS account)")
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("EKS_JIT_LOCAL_PORT", "8765")),
        help="API port (default: $EKS_JIT_LOCAL_PORT or 8765; 0 picks a free one)",
    )
    up.add_argument("--aws-port", type=int, default=0, help="moto's port (default: a free one)")
    up.add_argument(
        "--config",
        type=Path,
        default=bundled("config", "local", "eks-jit.yaml"),
        help="eks-jit.yaml (default: the demo's)",
    )
    up.add_argument(
        "--identities",
        type=Path,
        default=bundled("config", "local", "identities.yaml"),
        help="who may call the local API (default: the demo's)",
    )
    up.add_argument("--state-dir", default=argparse.SUPPRESS, help="where local.json goes (default: .eks-jit)")
    up.set_defaults(run=cmd_local_up)
    inbox = local.add_parser(
        "inbox",
        parents=[common],
        help="pending approvals local mode's approvers were sent, with their approval links",
        description="The approval messages sent to an approver (all approvers without --as) whose "
        "request is still pending for them, with the single-use approval link each carries.",
    )
    inbox.add_argument(
        "--timeout", type=float, default=0.0, help="seconds to wait for one to arrive when there is none (default 0)"
    )
    inbox.set_defaults(run=cmd_local_inbox)
    return top


RETRY_CODES = frozenset({"idempotency_key_in_progress"})  # 409s that mean "again, later", not a conflict
USAGE_CODES = frozenset({"bad_endpoint", "no_credentials", "profile_not_found", "unknown_identity", "not_local_mode"})


def exit_code(status: int, code: str) -> int:
    """The exit code of an API error (the table at the top of this module)."""
    if status == 403 and code == "policy_denied":
        return 1
    if status == 400 or code in USAGE_CODES:
        return 2
    if code in RETRY_CODES:
        return 5
    if status in (403, 404, 409, 410):
        return 4
    return 5


def needs_extra(args: argparse.Namespace) -> int:
    """Runs the command; one that needs an extra the install lacks (``pip install eks-jit`` is the
    client and CLI only) is a usage error naming the extra, not a traceback."""
    try:
        return int(args.run(args))
    except ModuleNotFoundError as exc:
        extra = getattr(args, "extra", None)
        if extra is None or (exc.name or "").split(".")[0] == "eks_jit":
            raise
        raise CliError(
            2,
            f"`eks-jit {args.command}` needs the '{extra}' extra (no module {exc.name}): "
            f"pip install 'eks-jit[{extra}]'",
            "missing_extra",
        ) from None


def _wants_json(argv: list[str]) -> bool:
    """``-o json`` (or ``session``'s ``--json``) anywhere on the line, also when parsing it failed."""
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return any(
        a in ("-ojson", "--output=json") or (a in ("-o", "--output") and b == "json") or a == "--json" for a, b in pairs
    )


def _fail(json_out: bool, exit_with: int, code: str, message: str, **extra: Any) -> int:
    print(f"eks-jit: {message}", file=sys.stderr)
    if json_out:
        known = {k: v for k, v in extra.items() if v is not None}
        print(json.dumps({"code": code, "message": message, "exit": exit_with, **known}, indent=2))
    return exit_with


def main(argv: list[str] | None = None) -> int:
    from eks_jit.client import ApiError

    argv = sys.argv[1:] if argv is None else argv
    json_out = _wants_json(argv)
    try:
        args = parser().parse_args(argv)
        if args.output == "csv" and not getattr(args, "csv_ok", False):
            raise CliError(2, f"-o csv is for `eks-jit audit` only; use -o table or -o json with {args.command}")
        return needs_extra(args)
    except CliError as exc:
        return _fail(json_out, exc.code, exc.error, str(exc))
    except ApiError as exc:
        message = f"{exc.code}: {exc.message}" + (f" (field: {exc.field})" if exc.field else "")
        code = exit_code(exc.status, exc.code)
        if code == 5 and exc.idempotency_key:
            message += f" (safe to run again with --idempotency-key {exc.idempotency_key})"
        return _fail(
            json_out,
            code,
            exc.code,
            message,
            status=exc.status or None,
            field=exc.field,
            grant_id=exc.grant_id,
            idempotency_key=exc.idempotency_key,  # the key to run the same command again with
        )


if __name__ == "__main__":
    sys.exit(main())
