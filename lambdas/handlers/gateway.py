"""The data-path gateway: an ASGI app in front of the Kubernetes API servers of gateway clusters.

kubectl talks to ``<gateway>/clusters/<cluster>/...`` with the standard EKS token. For each request:
the token is verified (the caller's role and STS session), the caller's active grants on the cluster
are read fresh, the request is parsed as the API server's RequestInfo would and authorized by the
grants' scopes (logic/gateway.py, domain/kube_rules.py) at the moment it arrives. A refusal is a
Kubernetes ``Status`` (kubectl prints it). An allowed request is forwarded to the cluster's API server
with the gateway's own credentials, impersonating the covering grant (domain/impersonation.py), to the
path the gateway authorized (re-rendered, never the bytes received). Watches and log streams are cut
when the grant expires or is revoked. Every request of a caller with a grant in force is recorded
under that grant (domain/recording.py).

``create_app(GatewayDeps)`` builds the app; ``app`` (module attribute, built on first use from the
environment) is what uvicorn runs behind the Lambda Web Adapter.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import httpx2
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ..adapters.kube_upstream import Upstreams
from ..domain.catalog import Catalog
from ..domain.eks_token import TokenRefused
from ..domain.errors import TransientAwsError
from ..domain.grant import Grant, GrantStatus
from ..domain.holds import HoldRefused
from ..domain.impersonation import is_caller_impersonation
from ..domain.kube_request import KubeRequest, KubeRequestError, NonResourceRequest, parse_request
from ..domain.kube_rules import Caller
from ..domain.kube_status import status
from ..domain.masking import LogMasker, Masking, Unmaskable, WatchMasker, mask_json_bytes
from ..domain.policy import PolicySet
from ..domain.recording import CommandOutcome, summarize
from ..logic import gateway as logic
from ..logic.ports import Clock, GrantStore, SessionLog
from .upgrades import NOT_UPGRADED, Bridge

log = logging.getLogger("eks_jit.gateway")

PREFIX = "/clusters/"
NO_IMPERSONATION = "requests through eks-jit's gateway may not impersonate: only the gateway does"
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # the API server's own limit on a request body
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a buffered (non-stream) answer; kubectl pages lists at 500 items
FORWARDED_REQUEST_HEADERS = ("accept", "content-type", "user-agent", "kubectl-command", "kubectl-session")
PASSED_ANSWER_HEADERS = ("content-type", "cache-control", "warning")
NO_CACHE = "no-cache, private"  # as the API server sends: kubectl's disk cache must never replay a refusal
SLOW_BODY_SECONDS = 1.0  # a body that took longer to arrive is judged on the caller's grants read again
STREAM_CHECK_SECONDS = 2.0  # an open stream re-reads its grant this often (a revoke ends it within this)


@dataclass
class GatewayDeps:
    catalog: Catalog
    store: GrantStore
    clock: Clock
    verifier: logic.TokenVerifier
    upstreams: Upstreams
    session_log: SessionLog | None = None
    stream_check_seconds: float = STREAM_CHECK_SECONDS
    max_answer_bytes: int = MAX_ANSWER_BYTES
    masking: Masking | None = None
    """None: the defaults and the catalog's ``settings.mask_patterns``."""
    stream_limit_seconds: float | None = None
    """A stream ends this long after it began whatever its grant (deployed: before the Lambda invocation's
    own 15-minute cap, so it ends cleanly and kubectl re-opens the watch); None: no limit."""
    policies: PolicySet | None = None
    """The policy set whose guardrails (action ``kube``) judge each covered request; None: no guardrails."""
    holds: logic.HoldDesk | None = None
    """Where a held request is taken for its approval (the eks-jit API); None: a held request is refused."""


def kube_status(code: int, message: str, *, warn: bool = False, **kw: Any) -> JSONResponse:
    """A refusal kubectl prints. With ``warn``, the message goes in a ``Warning`` header too (code 299,
    as the API server sends deprecation warnings): kubectl prints the warnings of every response, but
    of a 401, or of a refused discovery request, it shows no Status message ("Unauthorized", "unknown")."""
    headers = {"cache-control": NO_CACHE}
    if warn:
        text = message.encode("ascii", "replace").decode().replace("\\", "\\\\").replace('"', '\\"')
        headers["warning"] = f'299 - "{text[:1000]}"'
    return JSONResponse(status(code, message, **kw), code, headers=headers)


@dataclass
class Exchange:
    """One request's way through the gateway: what the record of it needs."""

    request_id: str
    at: datetime
    method: str
    path: str
    query: str
    started: float = field(default_factory=time.perf_counter)
    caller: Caller | None = None
    call: KubeRequest | NonResourceRequest | None = None
    body: bytes = b""
    recorded_body: bytes = b""
    """What the record keeps of the body: masked like an answer (a Secret's create carries its values)."""
    approval: str = ""
    """A held request that passes: the held command's grant that approved it (recorded as ``approved``)."""
    cluster: str = ""
    recorded_under: list[Grant] = field(default_factory=list)
    """The caller's grants in force when the request arrived: a refusal is recorded under each."""

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


class Gateway:
    def __init__(self, deps: GatewayDeps) -> None:
        self.deps = deps
        self.masking = deps.masking or Masking.of(deps.catalog.settings.mask_patterns.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # exec, attach, port-forward (kubectl 1.30 and newer)
            await self.handle_websocket(WebSocket(scope, receive, send))
            return
        if scope["type"] != "http":  # lifespan
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        checked = await self.check(request, request.method, lambda: _read_body(request, MAX_REQUEST_BYTES))
        if isinstance(checked, Response):
            return checked
        ex, grant = checked
        if isinstance(ex.call, KubeRequest) and ex.call.upgrades:
            # allowed, but an upgrade only a websocket carries (SPDY, or a runtime that drops upgrades)
            return await self.refuse(ex, 400, NOT_UPGRADED)
        return await self._forward(request, ex.cluster, grant, ex)

    async def handle_websocket(self, ws: WebSocket) -> None:
        """An upgrade is checked as the same request over HTTP would be (a GET on ``pods/exec`` is an
        exec); refused, the handshake is answered with the Status (kubectl prints it); allowed, the
        frames are passed both ways, recorded, and cut when the grant ends (:class:`Bridge`)."""
        await ws.receive()  # websocket.connect
        checked = await self.check(ws, "GET", _no_body)
        if not isinstance(checked, Response):
            ex, grant = checked
            if isinstance(ex.call, KubeRequest) and ex.call.upgrades:
                await Bridge(self, grant, ex, ws).run()
                return
            checked = await self.refuse(ex, 400, "eks-jit upgrades only exec, attach and port-forward into a pod")
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(checked)
        else:
            await ws.close(1008)

    async def refuse(self, ex: Exchange, code: int, message: str, **kw: Any) -> Response:
        await self.record(ex.recorded_under, ex, CommandOutcome.REFUSED, code, reason=message)
        return kube_status(code, message, warn=not isinstance(ex.call, KubeRequest), **kw)

    async def check(
        self, request: HTTPConnection, method: str, read_body: Callable[[], Awaitable[bytes]]
    ) -> tuple[Exchange, Grant] | Response:
        """Everything a request must pass before it is forwarded: the caller's token, a grant in force
        that covers it (its body judged once whole), the guardrails (a held request asks for, or uses,
        its own approval). The answer to send instead, or the request and its covering grant."""
        deps = self.deps
        raw_path = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1")
        raw_path = raw_path.split("?", 1)[0]
        ex = Exchange(
            request_id=uuid.uuid4().hex,
            at=deps.clock.now(),
            method=method,
            path=raw_path,
            query=request.scope.get("query_string", b"").decode("latin-1"),
        )
        if not raw_path.startswith(PREFIX):
            return kube_status(404, "the gateway serves clusters below /clusters/<name>/")
        name, _, rest = raw_path[len(PREFIX) :].partition("/")
        cluster = deps.catalog.clusters.get(name)
        if cluster is None or not cluster.gateway:
            return kube_status(404, f"cluster {name!r} is not behind this gateway")
        ex.cluster = name
        ex.path = "/" + rest  # what is recorded: below the cluster, as every record's path is
        token = _bearer(request.headers.get("authorization", ""))
        if not token:
            return kube_status(401, "Unauthorized: send the EKS token (eks-jit token --cluster ...)", warn=True)
        try:
            ex.caller = await anyio.to_thread.run_sync(deps.verifier.verify, token, name, ex.at)
        except TokenRefused as error:
            log.info("token refused", extra={"cluster": name, "why": error.message})
            return kube_status(401, f"Unauthorized: {error.message}", warn=True)
        except TransientAwsError as error:
            return kube_status(503, f"the caller cannot be verified now: {error.message}")
        caller = ex.caller
        try:
            held = await anyio.to_thread.run_sync(logic.held_grants, deps.store, caller, name)
        except TransientAwsError as error:
            return kube_status(503, f"the caller's grants cannot be read now: {error.message}")
        ex.recorded_under = logic.grants_in_force(held, caller, name, ex.at)

        if len(request.headers.getlist("content-type")) > 1:  # which one the API server reads is not ours to guess
            return await self.refuse(ex, 400, "eks-jit refuses a request with more than one Content-Type")
        if any(is_caller_impersonation(h) for h in request.headers):
            return await self.refuse(ex, 403, NO_IMPERSONATION)
        try:
            ex.call = parse_request(method, "/" + rest, ex.query)
        except KubeRequestError as error:
            return await self.refuse(ex, 400, f"eks-jit refuses the request: {error.message}")
        try:
            ex.body = await read_body()
            ex.recorded_body = self.mask_body(ex.body)
        except _TooLarge:
            return await self.refuse(ex, 413, f"the request body is larger than {MAX_REQUEST_BYTES} bytes")
        except ClientDisconnect:
            return Response(status_code=499)
        # A body sent slowly must not carry the request past its grant's end or a revoke: the decision
        # is taken now that the body is whole, on grants read again if the upload took a while.
        now = deps.clock.now()
        if (now - ex.at).total_seconds() >= SLOW_BODY_SECONDS:
            try:
                held = await anyio.to_thread.run_sync(logic.held_grants, deps.store, caller, name)
            except TransientAwsError as error:
                return kube_status(503, f"the caller's grants cannot be read now: {error.message}")

        async def stored(grant: Grant) -> Any:
            return await self._stored(name, grant, caller, ex.call)

        verdict = await logic.decide(
            ex.call,
            caller=caller,
            cluster=name,
            held=held,
            catalog=deps.catalog,
            now=now,
            content_type=request.headers.get("content-type", ""),
            body=ex.body,
            stored=stored,
        )
        if verdict.grant is None:
            return await self.refuse(ex, 403, verdict.decision.reason)
        guard = logic.guardrails(deps.policies, caller, name, ex.call, verdict.grant)
        if guard is not None and guard.outcome == "hold" and deps.holds is not None:
            assert isinstance(ex.call, KubeRequest)
            ask = logic.hold_ask(
                ex.call,
                method=ex.method,
                grant=verdict.grant,
                caller=caller,
                cluster=name,
                query=ex.query,
                body=ex.body,
            )
            try:
                on_hold = await anyio.to_thread.run_sync(deps.holds.hold, ask)
            except HoldRefused as refused:
                return await self.refuse(ex, 403, f"eks-jit cannot hold {ex.call.describe()}: {refused.message}")
            except TransientAwsError as error:
                return kube_status(503, f"the held request cannot be put to its approvers now: {error.message}")
            if on_hold.outcome != "pass":
                await self.record(ex.recorded_under, ex, CommandOutcome.HELD, 403, reason=on_hold.message)
                return kube_status(403, on_hold.message)
            ex.approval = on_hold.grant_id
        elif guard is not None and guard.outcome != "pass":
            outcome = CommandOutcome.BLOCKED if guard.outcome == "block" else CommandOutcome.HELD
            message = logic.guard_message(guard, ex.call, name)
            await self.record(ex.recorded_under, ex, outcome, 403, reason=message)
            return kube_status(403, message)
        return ex, verdict.grant

    async def _forward(self, request: Request, cluster: str, grant: Grant, ex: Exchange) -> Response:
        deps = self.deps
        assert ex.caller is not None and ex.call is not None
        upstream = await deps.upstreams.get(cluster)
        headers = [
            (k, json_accept(v) if k == "accept" else v)
            for k, v in request.headers.items()
            if k in FORWARDED_REQUEST_HEADERS
        ]
        headers += [("authorization", await upstream.authorization()), ("accept-encoding", "identity")]
        headers += logic.impersonation(deps.catalog, grant, ex.caller).headers()
        target = upstream.url + ex.call.wire_path + (f"?{ex.query}" if ex.query else "")
        outgoing = upstream.client.build_request(request.method, target, headers=headers, content=ex.body)
        streaming = isinstance(ex.call, KubeRequest) and ex.call.streams
        try:
            answer = await upstream.client.send(outgoing, stream=True)
        except httpx2.HTTPError as error:
            log.warning("upstream unreachable", extra={"cluster": cluster, "error": repr(error)})
            await self.record([grant], ex, CommandOutcome.ALLOWED, 502, reason=f"upstream: {type(error).__name__}")
            return kube_status(502, f"the API server of {cluster} could not be reached ({type(error).__name__})")
        passed = {k: v for k, v in answer.headers.items() if k.lower() in PASSED_ANSWER_HEADERS}
        passed.setdefault("cache-control", NO_CACHE)
        if streaming and answer.status_code < 300:
            is_watch = isinstance(ex.call, KubeRequest) and ex.call.verb == "watch"
            masker = WatchMasker(self.masking) if is_watch else LogMasker(self.masking)
            passed.pop("content-length", None)
            return GuardedStream(self, grant, ex, answer, passed, masker)
        try:
            data = await _read_answer(answer, deps.max_answer_bytes)
        except _TooLarge:
            await self.record([grant], ex, CommandOutcome.ALLOWED, 502, reason="answer too large for the gateway")
            return kube_status(502, f"the answer is larger than the gateway passes ({deps.max_answer_bytes} bytes)")
        except httpx2.HTTPError as error:
            return kube_status(502, f"the API server of {cluster} broke off its answer ({type(error).__name__})")
        try:
            data, masked = self.mask_answer(answer.headers.get("content-type", ""), data)
        except Unmaskable as error:
            await self.record([grant], ex, CommandOutcome.REFUSED, 502, reason=error.message)
            return kube_status(502, f"eks-jit refuses to pass an answer it cannot mask: {error.message}")
        summary = _summary(answer, data) + (f" ({masked} masked)" if masked else "")
        await self.record([grant], ex, CommandOutcome.ALLOWED, answer.status_code, summary=summary)
        return Response(data, answer.status_code, headers=passed)

    def mask_answer(self, content_type: str, data: bytes) -> tuple[bytes, int]:
        """A whole answer, masked: JSON by its structure, text by the patterns; anything else is
        Unmaskable (refused: the Accept header asked for JSON)."""
        if not data:
            return data, 0
        if "json" in content_type:
            return mask_json_bytes(data, self.masking)
        if content_type.startswith("text/"):
            masker = LogMasker(self.masking)
            out = masker.feed(data) + masker.end()
            return out, masker.count
        raise Unmaskable(f"the answer is {content_type or 'of no stated type'}, which the gateway cannot read")

    def mask_body(self, body: bytes) -> bytes:
        if not body:
            return body
        try:
            return mask_json_bytes(body, self.masking)[0]
        except Unmaskable:
            return self.masking.text(body.decode("utf-8", errors="replace"))[0].encode()

    async def _stored(self, cluster: str, grant: Grant, caller: Caller, call: Any) -> Any:
        """The object a PUT would replace, read as the covering grant (its ``get`` must be allowed by RBAC)."""
        from ..domain.kube_rules import UnnarrowableChange

        upstream = await self.deps.upstreams.get(cluster)
        headers = [("authorization", await upstream.authorization()), ("accept", "application/json")]
        headers += logic.impersonation(self.deps.catalog, grant, caller).headers()
        try:
            answer = await upstream.client.get(upstream.url + call.path, headers=headers)
        except httpx2.HTTPError as error:
            raise UnnarrowableChange(f"the stored object could not be read ({type(error).__name__})") from None
        if answer.status_code != 200:
            raise UnnarrowableChange(f"the stored object could not be read (HTTP {answer.status_code})")
        return answer.json()

    async def record(
        self,
        grants: list[Grant],
        ex: Exchange,
        outcome: CommandOutcome,
        code: int,
        summary: str = "",
        *,
        reason: str = "",
    ) -> None:
        """One Command per grant. A store that fails is logged with the whole record (CloudWatch then
        holds it) and does not change the answer: the request already happened (docs/decisions.md)."""
        if ex.caller is None or not grants:
            return
        if ex.approval and outcome is CommandOutcome.ALLOWED:
            outcome = CommandOutcome.APPROVED
            reason = reason or f"held command approved: eks-jit grant {ex.approval} (used)"
        commands = [
            logic.command(
                g,
                at=ex.at,
                request_id=ex.request_id,
                caller=ex.caller,
                request=ex.call,
                method=ex.method,
                path=ex.path,
                query=ex.query,
                body=ex.recorded_body,
                outcome=outcome,
                status=code,
                reason=reason,
                summary=summary,
                duration_ms=ex.elapsed_ms(),
            )
            for g in grants
        ]
        log.info(
            "request",
            extra={"command": commands[0].to_json() | {"grant_ids": [c.grant_id for c in commands], "body": None}},
        )
        if self.deps.session_log is None:
            return
        for one in commands:
            try:
                await anyio.to_thread.run_sync(self.deps.session_log.record, one)
            except Exception:
                log.exception("could not record a command", extra={"command": one.to_json()})

    async def until_ended(self, grant: Grant) -> str:
        """:meth:`grant_ended`, or ``stream limit`` after ``stream_limit_seconds``, whichever first."""
        limit = self.deps.stream_limit_seconds
        if limit is None:
            return await self.grant_ended(grant)
        with anyio.move_on_after(limit):
            return await self.grant_ended(grant)
        return "stream limit"

    async def grant_ended(self, grant: Grant) -> str:
        """Returns when ``grant`` gives no more access: ``expired`` at its ``expires_at`` (by the gateway's
        clock), ``revoked`` (or whatever its status became) when a re-read says so, checked every
        ``stream_check_seconds``. A re-read that fails ends the stream too (fail closed)."""
        deps = self.deps
        expires_at = grant.expires_at
        assert expires_at is not None
        while True:
            left = (expires_at - deps.clock.now()).total_seconds()
            if left <= 0:
                return "expired"
            await anyio.sleep(min(left, deps.stream_check_seconds))
            if deps.clock.now() >= expires_at:
                return "expired"
            try:
                fresh = await anyio.to_thread.run_sync(deps.store.get, grant.id)
            except Exception:
                log.exception("could not re-read a grant with an open stream", extra={"grant_id": grant.id})
                return "unverifiable"
            if fresh.status is not GrantStatus.ACTIVE:
                return str(fresh.status)
            expires_at = fresh.expires_at or expires_at


class GuardedStream(Response):
    """A watch or log stream passed on chunk by chunk, cut when the grant ends or either side leaves."""

    def __init__(
        self,
        gateway: Gateway,
        grant: Grant,
        ex: Exchange,
        answer: httpx2.Response,
        headers: dict[str, str],
        masker: LogMasker | WatchMasker,
    ) -> None:
        self.gateway, self.grant, self.ex, self.answer, self.masker = gateway, grant, ex, answer, masker
        self.status_code = answer.status_code
        self.passed = headers
        self.ended_by = ""
        self.chunks = 0
        self.size = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.passed.items()],
            }
        )
        try:
            async with anyio.create_task_group() as group:

                async def pump() -> None:
                    try:
                        async for chunk in self.answer.aiter_raw():
                            self.chunks += 1
                            self.size += len(chunk)
                            out = self.masker.feed(chunk)  # whole lines only: a match never straddles chunks
                            if out:
                                await send({"type": "http.response.body", "body": out, "more_body": True})
                        rest = self.masker.end()
                        if rest:
                            await send({"type": "http.response.body", "body": rest, "more_body": True})
                        self.ended_by = self.ended_by or "upstream"
                    except Unmaskable as error:  # fail closed: what cannot be masked is not passed
                        self.ended_by = self.ended_by or f"unmaskable ({error.message})"
                    group.cancel_scope.cancel()

                async def guard() -> None:
                    why = await self.gateway.until_ended(self.grant)
                    self.ended_by = self.ended_by or (why if why == "stream limit" else f"grant {why}")
                    group.cancel_scope.cancel()

                async def client_left() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    self.ended_by = self.ended_by or "client"
                    group.cancel_scope.cancel()

                group.start_soon(pump)
                group.start_soon(guard)
                group.start_soon(client_left)
        except (httpx2.HTTPError, OSError) as error:
            self.ended_by = self.ended_by or f"upstream error {type(error).__name__}"
        finally:
            with anyio.CancelScope(shield=True):
                await self.answer.aclose()
                call = self.ex.call
                kind = "watch" if isinstance(call, KubeRequest) and call.verb == "watch" else "stream"
                kind = "log" if isinstance(call, KubeRequest) and call.subresource == "log" else kind
                summary = f"{kind}: {self.size:,} bytes in {self.chunks:,} chunks, ended by {self.ended_by}"
                if self.masker.count:
                    summary += f" ({self.masker.count} masked)"
                # recorded before the client sees the end: whoever reads the session after has it
                await self.gateway.record([self.grant], self.ex, CommandOutcome.ALLOWED, self.status_code, summary)
                if self.ended_by != "client":
                    with contextlib.suppress(OSError):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _TooLarge(Exception):
    pass


async def _no_body() -> bytes:
    return b""


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_answer(answer: httpx2.Response, limit: int) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in answer.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    finally:
        await answer.aclose()
    return b"".join(chunks)


def _summary(answer: httpx2.Response, data: bytes) -> str:
    if "json" not in answer.headers.get("content-type", ""):
        return f"{len(data):,} bytes" if data else ""
    try:
        return summarize(answer.status_code, json.loads(data))
    except ValueError:
        return ""


def json_accept(value: str) -> str:
    """The caller's Accept without protobuf (the gateway must read every answer to mask it)."""
    kept = [part.strip() for part in value.split(",") if "protobuf" not in part.lower() and part.strip()]
    return ", ".join(kept) or "application/json"


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def create_app(deps: GatewayDeps) -> Gateway:
    return Gateway(deps)


def from_environment(environ: dict[str, str]) -> Gateway:
    """The deployed gateway: the grant table, STS and EKS of the function's account, its role's credentials."""
    from ..adapters.aws import LazyClient
    from ..adapters.dynamodb import DynamoGrantStore
    from ..adapters.eks import default_clients
    from ..adapters.kube_upstream import EksUpstreams, eks_describer, own_token_signer
    from ..adapters.session_log import DynamoSessionLog
    from ..adapters.sts_identity import StsIdentity
    from ..config import load_catalog, load_policies, read_environment
    from ..logic.ports import SystemClock

    env = read_environment(environ)
    catalog = load_catalog(env.config_path)
    ddb = LazyClient("dynamodb", env.region, env.endpoint_url)
    eks = default_clients(env.endpoint_url)
    verifiers = {name: StsIdentity(name, c.partition) for name, c in catalog.clusters.items() if c.gateway}
    return create_app(
        GatewayDeps(
            catalog=catalog,
            store=DynamoGrantStore(ddb, env.table_name),
            clock=SystemClock(),
            verifier=logic.CachedVerifier(
                logic.StsVerifier(catalog, verifiers.__getitem__), lambda name: catalog.clusters[name].partition
            ),
            upstreams=EksUpstreams(
                eks_describer(lambda name: eks(name, catalog.clusters[name], "gateway")),
                own_token_signer(lambda name: catalog.clusters[name].region, env.endpoint_url),
            ),
            session_log=DynamoSessionLog(ddb, env.table_name),
            policies=load_policies(env.config_path, catalog),
            stream_limit_seconds=env.gateway_stream_limit_seconds,
            holds=_api_holds(env.api_url, env.region),
        )
    )


def _api_holds(api_url: str, region: str) -> logic.HoldDesk | None:
    """The eks-jit API, asked with the function role's own credentials (refreshed as they rotate)."""
    if not api_url:
        return None
    import boto3

    from ..adapters.holds_api import ApiHolds

    session = boto3.session.Session()

    def credentials() -> Any:
        found = session.get_credentials()
        if found is None:
            raise TransientAwsError("the gateway has no AWS credentials to sign its call to the eks-jit API")
        return found

    return ApiHolds(api_url, region, credentials)


_app: Gateway | None = None


def __getattr__(name: str) -> Any:
    """``app``: what uvicorn runs (``eks_jit.server.handlers.gateway:app``), built on first use."""
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        import os

        _app = from_environment(dict(os.environ))
    return _app
