"""``eks-jit mcp``: eks-jit as Model Context Protocol tools, for agents.

A thin layer over :class:`eks_jit.client.Client` (the same client, credentials and endpoint as the
CLI), served with the official ``mcp`` SDK over stdio (the default: the agent's MCP host starts
``eks-jit mcp`` as a subprocess) or streamable HTTP (``--transport http``, localhost by default).

Every tool answers structured JSON (``structured_content``, and the same as text). A refused call
is an MCP *tool error* (``isError``) whose structured content is ``{"code", "message", "next",
...}``: the API's stable ``code`` and what to do about it. Waiting for a human is bounded per call
(:data:`MAX_WAIT` seconds): MCP hosts drop a tool call blocked for about a minute, so a request
still pending when the wait ends answers ``pending_approval`` with the id and "call
wait_for_grant". The SDK (2.3.0) implements no task (long-running operation) support on the
server side, so bounded waits are the mechanism.
"""

# No `from __future__ import annotations`: the SDK builds each tool's input schema from its annotations
# as objects (string annotations of a wrapped method do not resolve there).

import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from eks_jit.client import PROPAGATION_HINT, ApiError, Client
from eks_jit.files import write_private
from eks_jit.kubeconfig import GrantNotActive

DEFAULT_WAIT = 30
"""Seconds ``request_access``, ``extend_access`` and ``wait_for_grant`` wait for a decision when
not told otherwise."""
MAX_WAIT = 45
"""The most any one tool call waits. MCP hosts (Claude Code, Cursor...) drop a tool call blocked
for roughly 60-120 s; 45 s plus a few API round trips stays under the lower end."""
POLL_INTERVAL = 1.0
WAITING = frozenset({"pending_approval", "approved"})
ENDED = frozenset({"denied", "expired", "revoked", "cancelled", "failed"})

RETRY = "a transient failure: call the same tool again in a few seconds"
HUMAN = "the control plane could not finish this: tell a human operator, quoting the grant_id if there is one"
NEXT_STEP: dict[str, str] = {
    "policy_denied": "policy does not allow this request and retrying will not change that: call list_requestable "
    "to see what you may request, or ask a human to change the policy",
    "invalid_request": "an argument is wrong: fix the one named in 'field' and call again",
    "malformed_json": "an argument is wrong: fix it and call again",
    "unknown_cluster": "no such cluster: call list_requestable for the clusters you may request",
    "unknown_scope": "no such scope: call list_requestable for the scopes you may request",
    "unknown_namespace": "no such namespace on that cluster: call list_requestable",
    "namespace_required": "this scope is namespaced: call again with a namespace",
    "namespace_not_allowed": "this scope is cluster-wide: call again without a namespace",
    "invalid_namespace": "the namespace is not a valid Kubernetes name: fix it and call again",
    "invalid_duration": "give the duration as 90s, 15m, 1h or ISO-8601 (PT15M) and call again",
    "duration_too_short": "ask for a longer duration",
    "duration_exceeds_maximum": "ask for at most the scope's max_duration (list_requestable shows it)",
    "reason_too_short": "say why you need the access in a full sentence (the approver and the audit read it)",
    "forbidden": "you may not act on this grant (it is not yours, or your role does not allow it)",
    "not_an_approver": "you are not an approver of this request",
    "self_approval": "nobody may approve their own request: a human approver must",
    "grant_not_found": "no grant has that id: check the grant_id you were given",
    "invalid_state": "the grant's status does not allow this now: call get_grant to see its status",
    "extension_not_revocable": "release the grant this extension extends, not the extension",
    "extension_not_extendable": "extend the grant this extension extends, not the extension",
    "not_active": "the grant gives no access now: if it is pending call wait_for_grant, if it ended call "
    "request_access again",
    "approval_timed_out": "nobody decided in time: call request_access again, or ask a human to approve",
    "idempotency_key_reused": "the same idempotency key was used for a different request: send a new request",
    "idempotency_key_in_progress": RETRY,  # the first attempt of this call is still being answered
    "conflict": RETRY,
    "busy": RETRY,
    "aws_unavailable": RETRY,
    "unreachable": "the eks-jit API cannot be reached: " + RETRY + "; if it persists, tell a human",
    "http_error": RETRY,
    "internal_error": RETRY + "; if it persists, tell a human",
    "unmanaged_access_entry": "your role already has an EKS access entry that eks-jit does not manage: "
    "a human must remove it",
    "access_apply_failed": HUMAN,
    "principal_refused": HUMAN,
    "scheduling_failed": HUMAN,
    "notification_failed": HUMAN,
    "invalid_context": "a context field breaks its rules (named in 'field'): fix it (https URL, one line each, "
    "at most 10 commands) or leave it out, and call again",
    "invalid_idempotency_key": "the idempotency_key must be 1-255 printable ASCII characters: fix it and call again",
}

INSTRUCTIONS = """\
eks-jit gives you short-lived, narrowly scoped access to Amazon EKS clusters. At rest you have no \
Kubernetes permission at all. For a task: call list_requestable to see what you may ask for \
(decision auto: granted at once; manual: a human approves; deny: refused), then request_access \
for the narrowest scope and shortest duration the task needs, with a real reason. When the grant \
is active, call get_kubeconfig and run kubectl with KUBECONFIG set to the path it answers. A \
manual request answers pending_approval: call wait_for_grant with its grant_id until it is \
active or ended (each call waits at most 45 s). When you are done, call release_access: do not \
keep access you no longer need. Errors are tool errors with a stable 'code' and a 'next' that \
says what to do; never retry a policy_denied.\
"""

GrantId = Annotated[str, Field(description="The grant's id, as request_access or get_grant answered it", min_length=1)]
WaitSeconds = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_WAIT,
        description=f"How long to wait for a decision in this call, 0 to {MAX_WAIT} seconds "
        f"(default {DEFAULT_WAIT}). The call returns as soon as the grant is active or ended.",
    ),
]


IdempotencyKey = Annotated[
    str | None,
    Field(
        description="Optional, 1-255 printable ASCII characters: send the same key again when you retry this very "
        "call (after a timeout or a lost answer) and you get the same grant, never a second one; a new task needs "
        "a new key. Omitted: a retry of the call is a new request.",
        min_length=1,
        max_length=255,
    ),
]


class RequestContext(BaseModel):
    """What a request is for: the API's ``context`` (it validates and bounds each field)."""

    model_config = ConfigDict(extra="forbid")

    incident_url: str | None = Field(default=None, description="https:// link to the incident, alert or ticket")
    alert: str | None = Field(default=None, description="the alert's title or text, one line (at most 500)")
    task_id: str | None = Field(default=None, description="your task or ticket id (at most 128)")
    commands: list[str] | None = Field(
        default=None, description="the commands you plan to run with the access, in order (at most 10, one line each)"
    )


class Refused(Exception):
    """A refusal this layer knows the code of (a tool error)."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.extra = code, message, extra


def answer(value: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(value, indent=1))], structured_content=value
    )


def refusal(code: str, message: str, **extra: Any) -> CallToolResult:
    """An MCP tool error carrying the API's code: ``isError`` with ``{"code", "message", "next", ...}``."""
    body = {"code": code, "message": message, "next": NEXT_STEP.get(code, RETRY if code.endswith("_error") else HUMAN)}
    body |= {k: v for k, v in extra.items() if v not in (None, "")}
    text = f"{code}: {message}\nnext: {body['next']}" + "".join(
        f"\n{k}: {v}" for k, v in extra.items() if v not in (None, "")
    )
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body, is_error=True)


def next_for(grant: dict[str, Any]) -> str:
    """What the agent should do next about ``grant``, by its status."""
    status, grant_id = grant["status"], grant["id"]
    if status == "active" and grant.get("extends"):
        return f"the extension is in force: grant {grant['extends']} now expires at {grant.get('expires_at')}"
    if status == "active":
        return f"call get_kubeconfig with grant_id {grant_id}, then use kubectl. {PROPAGATION_HINT}"
    if status in WAITING:
        return f"still {status} (a human decides): call wait_for_grant with grant_id {grant_id} to keep waiting"
    if status == "denied":
        return "denied: do not ask again for the same thing; status_reason says why"
    return f"the grant is {status}: it gives no access; call request_access again if the task still needs it"


def view(grant: dict[str, Any]) -> dict[str, Any]:
    """A grant as a tool answers it: the API's view without its event log, plus ``next``."""
    shown = {k: v for k, v in grant.items() if k != "events"}
    return {"grant_id": grant["id"], "status": grant["status"], "next": next_for(grant), "grant": shown}


class Tools:
    """The tool functions, each over one :class:`Client` (the credentials the server was started with)."""

    def __init__(self, api: Client, kubeconfig_dir: Path, *, sleep: Callable[[float], Any] = anyio.sleep) -> None:
        self.api = api
        self.kubeconfig_dir = kubeconfig_dir
        self._sleep = sleep

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A blocking client call on a worker thread (the HTTP transport serves other calls meanwhile)."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def _settle(self, grant: dict[str, Any], wait_seconds: int, ctx: Context | None) -> dict[str, Any]:
        """Poll ``grant`` while a human decides, for at most ``wait_seconds`` (capped at MAX_WAIT)."""
        budget = max(0, min(int(wait_seconds), MAX_WAIT))
        started = time.monotonic()
        while grant["status"] in WAITING and (waited := time.monotonic() - started) < budget:
            if ctx is not None:
                await ctx.report_progress(waited, budget, f"grant {grant['id']} is {grant['status']}")
            await self._sleep(min(POLL_INTERVAL, max(budget - waited, 0.0)))
            grant = await self._call(self.api.grant, grant["id"])
        return grant

    async def whoami(self) -> CallToolResult:
        me = await self._call(self.api.whoami)
        return answer(dict(me))

    async def list_requestable(self) -> CallToolResult:
        entries = await self._call(self.api.catalog)
        return answer({"entries": list(entries)})

    async def request_access(
        self,
        cluster: Annotated[str, Field(description="The cluster's name in eks-jit, as list_requestable shows it")],
        scope: Annotated[str, Field(description="The scope to request, e.g. rollout-restart, view, edit")],
        duration: Annotated[
            str, Field(description="How long, as 90s, 15m, 1h or ISO-8601; at most the scope's max_duration")
        ],
        reason: Annotated[
            str, Field(description="Why the task needs it, for the approver and the audit (an alert, a ticket)")
        ],
        namespace: Annotated[str | None, Field(description="The namespace; omit only for a cluster-wide scope")] = None,
        context: Annotated[
            RequestContext | None,
            Field(
                description="Optional: what the access is for, shown to the approver as your words, kept in the audit"
            ),
        ] = None,
        wait_seconds: WaitSeconds = DEFAULT_WAIT,
        dry_run: Annotated[
            bool,
            Field(
                description="true: answer only the decision this request would get (auto, manual or deny, "
                "max_duration, why) and request nothing"
            ),
        ] = False,
        idempotency_key: IdempotencyKey = None,
        session: Annotated[
            str | None,
            Field(
                description="Optional, only where list_requestable says access_mode 'gateway': the STS role session "
                "name your credentials were assumed with (2-64 of A-Z a-z 0-9 _+=,.@-), so only this session (this "
                "task) may use the grant, not every holder of your role",
            ),
        ] = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        if dry_run:
            verdict = await self._call(self.api.dry_run, cluster, namespace, scope, duration, reason, session=session)
            return answer(dict(verdict) | {"next": "nothing was requested: call request_access without dry_run"})
        sent = context.model_dump(exclude_none=True) if context else None
        grant = await self._call(
            self.api.request_grant,
            cluster,
            namespace,
            scope,
            duration,
            reason,
            context=sent,
            idempotency_key=idempotency_key,
            session=session,
        )
        return answer(view(await self._settle(grant, wait_seconds, ctx)))

    async def get_grant(self, grant_id: GrantId) -> CallToolResult:
        return answer(view(await self._call(self.api.grant, grant_id)))

    async def wait_for_grant(
        self, grant_id: GrantId, wait_seconds: WaitSeconds = DEFAULT_WAIT, ctx: Context | None = None
    ) -> CallToolResult:
        grant = await self._call(self.api.grant, grant_id)
        return answer(view(await self._settle(grant, wait_seconds, ctx)))

    async def extend_access(
        self,
        grant_id: GrantId,
        duration: Annotated[str, Field(description="Additional time, added to the current expiry: 90s, 15m, 1h")],
        reason: Annotated[str, Field(description="Why the task needs longer")],
        wait_seconds: WaitSeconds = DEFAULT_WAIT,
        idempotency_key: IdempotencyKey = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        extension = await self._call(self.api.extend, grant_id, duration, reason, idempotency_key=idempotency_key)
        return answer(view(await self._settle(extension, wait_seconds, ctx)))

    async def release_access(
        self,
        grant_id: GrantId,
        reason: Annotated[str, Field(description="Why, for the audit (e.g. 'done: deployment restarted')")] = "",
    ) -> CallToolResult:
        grant = await self._call(self.api.grant, grant_id)
        if grant["status"] in ENDED:
            return answer(view(grant) | {"next": f"nothing to release: the grant is already {grant['status']}"})
        release = self.api.cancel if grant["status"] == "pending_approval" else self.api.revoke
        ended = await self._call(release, grant_id, reason)
        return answer(view(ended) | {"next": f"released: the grant is {ended['status']} and gives no access"})

    async def get_kubeconfig(self, grant_id: GrantId) -> CallToolResult:
        import yaml

        try:
            config = await self._call(self.api.kubeconfig, grant_id)
        except GrantNotActive as exc:
            raise Refused("not_active", str(exc), grant_id=grant_id, status=exc.status) from None
        self.kubeconfig_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = (self.kubeconfig_dir / f"eks-jit-{grant_id[:8]}.yaml").resolve()
        write_private(path, yaml.safe_dump(config, sort_keys=False))
        return answer(
            {
                "grant_id": grant_id,
                "path": str(path),
                "context": config["current-context"],
                "namespace": config["contexts"][0]["context"].get("namespace"),
                "next": f"run kubectl with KUBECONFIG={path} (or --kubeconfig {path}); the file stops working when "
                f"the grant ends. {PROPAGATION_HINT}",
            }
        )


DESCRIPTIONS: dict[str, tuple[str, bool, bool]] = {
    # name: (description, read only, idempotent)
    "whoami": (
        "Who eks-jit takes you to be: your principal (IAM role) and kind (agent, approver, admin, auditor). "
        "Use it first if requests are refused with forbidden or policy_denied, to check the identity in use.",
        True,
        True,
    ),
    "list_requestable": (
        "Everything you could request: one entry per (cluster, namespace, scope) with 'decision' (auto: active "
        "at once; manual: a human approves, 'approvers' and 'approvals_required' say who and how many; deny: "
        "refused, 'reason' says why), 'max_duration' and the scope's 'description'. Call it before request_access "
        "to choose the narrowest scope that does the task.",
        True,
        True,
    ),
    "request_access": (
        "Ask for a time-boxed grant of one scope on one cluster and namespace. Auto-approved requests answer "
        "status 'active' at once; manual ones wait up to wait_seconds for a human, then answer "
        "'pending_approval' with the grant_id: call wait_for_grant with it (do not request again). "
        "When active, call get_kubeconfig. Ask for the narrowest scope and shortest duration the task needs. "
        "dry_run true answers the decision it would get (auto, manual, deny) and requests nothing. "
        "Errors (tool errors with a code): policy_denied (not allowed: do not retry; see list_requestable), "
        "unknown_cluster / unknown_scope / unknown_namespace / namespace_required / namespace_not_allowed "
        "(fix the argument), invalid_duration / duration_exceeds_maximum (use max_duration or less), "
        "reason_too_short (explain the task), invalid_session / session_not_supported (a session only on a "
        "gateway cluster, as an STS session name), unmanaged_access_entry (a human must act), "
        "busy / conflict / aws_unavailable / unreachable (retry in a few seconds).",
        False,
        False,
    ),
    "get_grant": (
        "A grant's current status (pending_approval, approved, active, denied, expired, revoked, cancelled, "
        "failed), its window (activated_at, expires_at), approvers' decisions and status_reason, with 'next': what "
        "to do now. Does not wait. Errors: grant_not_found (check the id), forbidden (not your grant).",
        True,
        True,
    ),
    "wait_for_grant": (
        f"Wait (at most wait_seconds, up to {MAX_WAIT} s per call) until a pending grant is decided: answers as "
        "soon as it is active or ended. If it is still pending_approval when the wait ends, the answer says so "
        "with the grant_id: call wait_for_grant again (a human may take minutes). Errors: grant_not_found, "
        "forbidden.",
        True,
        True,
    ),
    "extend_access": (
        "Ask to lengthen an active grant by 'duration' (same policy as a request, applied to the whole window: "
        "the total may not exceed the scope's max_duration). Answers the extension; if it needs a human it is "
        "pending_approval: call wait_for_grant with the extension's grant_id. Errors: invalid_state (the grant "
        "is not active), extension_not_extendable (extend the original grant), duration_exceeds_maximum, "
        "policy_denied.",
        False,
        False,
    ),
    "release_access": (
        "Give access back as soon as the task is done: revokes an active (or approved) grant, or withdraws a "
        "pending request. The access entry is removed at once. Releasing a grant that has already ended is "
        "not an error. Errors: forbidden (not your grant), extension_not_revocable (release the original grant), "
        "grant_not_found.",
        False,
        True,
    ),
    "get_kubeconfig": (
        "Write a kubeconfig for an active grant to a private file (mode 0600) and answer its 'path' and "
        "'context'. Use kubectl with KUBECONFIG=<path>. Its user runs `aws eks get-token` with the same AWS "
        "identity as this server. EKS takes a few seconds to honour a new grant: retry a 401 Unauthorized "
        "or 403 Forbidden from kubectl for up to 30 s. Errors: not_active (wait_for_grant if pending; request "
        "again if ended), grant_not_found, forbidden.",
        True,
        True,
    ),
}


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with ApiError and Refused turned into MCP tool errors carrying their code."""

    async def tool(*args: Any, **kwargs: Any) -> CallToolResult:
        try:
            return await fn(*args, **kwargs)  # type: ignore[no-any-return]
        except ApiError as exc:
            return refusal(
                exc.code, exc.message, field=exc.field, grant_id=exc.grant_id, http_status=exc.status or None
            )
        except Refused as exc:
            return refusal(exc.code, exc.message, **exc.extra)

    tool.__name__, tool.__doc__ = fn.__name__, fn.__doc__
    tool.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    tool.__annotations__ = fn.__annotations__
    return tool


def build_server(api: Client, kubeconfig_dir: Path) -> MCPServer:
    """The MCP server: one tool per :data:`DESCRIPTIONS` entry, signing with ``api``'s credentials."""
    tools = Tools(api, kubeconfig_dir)
    server: MCPServer = MCPServer("eks-jit", instructions=INSTRUCTIONS, log_level="WARNING")
    for name, (description, read_only, idempotent) in DESCRIPTIONS.items():
        server.add_tool(
            guarded(getattr(tools, name)),
            name=name,
            description=description,
            annotations=ToolAnnotations(
                read_only_hint=read_only, idempotent_hint=idempotent, destructive_hint=False, open_world_hint=False
            ),
        )
    return server


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def serve(
    api: Client, *, transport: Literal["stdio", "http"], host: str, port: int, kubeconfig_dir: Path | None
) -> int:
    """Run until the host closes stdin (stdio) or the process is stopped (HTTP)."""
    where = kubeconfig_dir or Path(os.environ.get("EKS_JIT_KUBECONFIG_DIR") or Path.home() / ".kube" / "eks-jit")
    server = build_server(api, where)
    if transport == "stdio":
        server.run("stdio")
        return 0
    if host not in LOOPBACK:
        print(
            f"eks-jit mcp: warning: listening on {host}: anyone who can reach it acts with this server's AWS "
            "identity (the HTTP transport has no authentication of its own)",
            file=sys.stderr,
        )
    print(f"eks-jit mcp: streamable HTTP on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    server.run("streamable-http", host=host, port=port)
    return 0
