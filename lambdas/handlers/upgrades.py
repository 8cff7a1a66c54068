"""exec, attach and port-forward through the gateway: a websocket from kubectl, checked as any request
is (handlers/gateway.py, ``Gateway.check``), then bridged to a websocket to the API server opened with
the gateway's credentials and the covering grant's impersonation.

Frames pass both ways as they come. What the session carried is recorded with the request, masked and
bounded like a body (``stdin``: what was typed; ``stdout``/``stderr``: what the pod answered), with the
bytes each way and what ended it. When the grant expires or is revoked the bridge ends the session: on
the Kubernetes channel protocols (``v4``/``v5.channel.k8s.io``) it first sends a ``Failure`` Status on
the error channel, which kubectl prints, then closes both sides.

SPDY (kubectl before 1.30, or its fallback when a websocket fails) is never bridged: the gateway refuses
it with :data:`NOT_UPGRADED` after the same checks, so a blocked exec still says why it is blocked.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..adapters.kube_upstream import UpgradeRefused, open_websocket
from ..domain.grant import Grant
from ..domain.kube_request import KubeRequest
from ..domain.kube_status import status
from ..domain.recording import MAX_BODY_CHARS, CommandOutcome, summarize
from ..logic import gateway as logic

if TYPE_CHECKING:
    from .gateway import Exchange, Gateway

log = logging.getLogger("eks_jit.gateway")

NOT_UPGRADED = (
    "eks-jit's gateway carries exec, attach and port-forward over a websocket only (kubectl 1.30 or newer; "
    "not SPDY), and only where its runtime passes websockets through (local mode; not a Lambda function URL)"
)
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
"""Binary channel protocols whose channel 3 carries a Status kubectl reads (remotecommand's error stream)."""
PASSED_HEADERS = ("user-agent", "kubectl-command", "kubectl-session")
CHANNELS = {0: "stdin", 1: "stdout", 2: "stderr", 3: "status"}


class Bridge:
    """One upgraded session: kubectl's websocket ``ws`` and the API server's, under ``grant``."""

    def __init__(self, gateway: Gateway, grant: Grant, ex: Exchange, ws: WebSocket) -> None:
        self.gateway, self.grant, self.ex, self.ws = gateway, grant, ex, ws
        self.sent = self.received = 0  # bytes to the pod, from it
        self.ended_by = ""
        self.capture: list[str] = []
        self.captured = 0
        self.partial: dict[str, str] = {}  # each channel's line so far: a terminal sends one keystroke a frame
        self.remote_command = isinstance(ex.call, KubeRequest) and ex.call.subresource in ("exec", "attach")

    async def run(self) -> None:
        gateway, ex = self.gateway, self.ex
        assert isinstance(ex.call, KubeRequest) and ex.caller is not None
        upstream = await gateway.deps.upstreams.get(ex.cluster)
        headers = [("authorization", await upstream.authorization())]
        headers += logic.impersonation(gateway.deps.catalog, self.grant, ex.caller).headers()
        headers += [(k, v) for k, v in self.ws.headers.items() if k in PASSED_HEADERS]
        target = upstream.url + ex.call.wire_path + (f"?{ex.query}" if ex.query else "")
        offered = list(self.ws.scope.get("subprotocols") or [])
        try:
            pod = await open_websocket(upstream, target, headers, offered)
        except UpgradeRefused as refused:  # the API server's own answer (its RBAC, a missing pod): passed on
            await gateway.record([self.grant], ex, CommandOutcome.ALLOWED, refused.status, summary=_status_of(refused))
            answer = Response(refused.body, refused.status, media_type=refused.content_type or "application/json")
            await self._deny(answer)
            return
        except Exception as error:  # OSError, a handshake the websockets client cannot read
            log.warning("upstream websocket failed", extra={"cluster": ex.cluster, "error": repr(error)})
            why = type(error).__name__
            await gateway.record([self.grant], ex, CommandOutcome.ALLOWED, 502, reason=f"upstream: {why}")
            await self._deny(gateway_status(502, f"the API server of {ex.cluster} could not be reached ({why})"))
            return
        await self.ws.accept(subprotocol=pod.subprotocol)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._to_pod, pod, group.cancel_scope)
                group.start_soon(self._from_pod, pod, group.cancel_scope)
                group.start_soon(self._guard, group.cancel_scope)
        finally:
            with anyio.CancelScope(shield=True):
                await self._end(pod)

    async def _to_pod(self, pod: Any, scope: anyio.CancelScope) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                payload: bytes | str = data if data is not None else message.get("text") or ""
                self.sent += len(payload)
                self._keep(payload, towards_pod=True)
                await pod.send(payload)
            self.ended_by = self.ended_by or "client"
        except (WebSocketDisconnect, OSError):
            self.ended_by = self.ended_by or "client"
        except Exception as error:  # the pod's side closed while a frame was on its way
            self.ended_by = self.ended_by or f"upstream ({type(error).__name__})"
        scope.cancel()

    async def _from_pod(self, pod: Any, scope: anyio.CancelScope) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for payload in pod:
                self.received += len(payload)
                self._keep(payload, towards_pod=False)
                if isinstance(payload, bytes):
                    await self.ws.send_bytes(payload)
                else:
                    await self.ws.send_text(payload)
            self.ended_by = self.ended_by or "upstream"
        except ConnectionClosed:
            self.ended_by = self.ended_by or "upstream"
        except (WebSocketDisconnect, OSError, RuntimeError):  # kubectl left mid-send
            self.ended_by = self.ended_by or "client"
        scope.cancel()

    async def _guard(self, scope: anyio.CancelScope) -> None:
        why = await self.gateway.until_ended(self.grant)
        self.ended_by = self.ended_by or (why if why == "stream limit" else f"grant {why}")
        scope.cancel()

    async def _end(self, pod: Any) -> None:
        """Say why (a grant's end, on a channel protocol), close the pod's side, record, then close
        kubectl's: whoever reads the session after kubectl has exited finds the record."""
        cut = self.ended_by.startswith("grant") or self.ended_by == "stream limit"
        with contextlib.suppress(Exception):
            if cut and pod.subprotocol in CHANNEL_PROTOCOLS:
                message = f"eks-jit ended the session: {self.ended_by} ({self.grant.id})"
                failure = {"metadata": {}, "status": "Failure", "message": message, "reason": "Forbidden", "code": 403}
                await self.ws.send_bytes(b"\x03" + json.dumps(failure).encode())
        with contextlib.suppress(Exception):
            await pod.close()
        self._flush()
        self.ex.recorded_body = self.gateway.masking.text("".join(self.capture))[0].encode()
        kind = self.ex.call.subresource if isinstance(self.ex.call, KubeRequest) else "stream"
        summary = f"{kind}: {self.sent:,} bytes in, {self.received:,} bytes out, ended by {self.ended_by}"
        await self.gateway.record([self.grant], self.ex, CommandOutcome.ALLOWED, 101, summary)
        with contextlib.suppress(Exception):
            code = pod.close_code if self.ended_by == "upstream" and pod.close_code else 1000
            await self.ws.close(code)

    def _keep(self, payload: bytes | str, *, towards_pod: bool) -> None:
        """What the session carried, as text a person reads: one line per line of each channel, however
        the frames cut it (a key typed one keystroke per frame is masked whole), bounded."""
        if self.captured >= MAX_BODY_CHARS:
            return
        data = payload.encode() if isinstance(payload, str) else payload
        if not data or (self.remote_command and data[0] in (4, 255)):  # resize, close a stream: nothing said
            return
        names = CHANNELS if self.remote_command else {}
        label = f"{names.get(data[0], f'channel {data[0]}')}{' >' if towards_pod else ':'}"
        *done, rest = (self.partial.get(label, "") + data[1:].decode("utf-8", errors="replace")).split("\n")
        for line in done:
            self._line(label, line)
        self.partial[label] = rest
        if len(rest) >= MAX_BODY_CHARS:  # no newline for that long: keep what there is
            self._line(label, self.partial.pop(label))

    def _line(self, label: str, text: str) -> None:
        line = f"{label} {text}\n"
        self.capture.append(line)
        self.captured += len(line)

    def _flush(self) -> None:
        """The lines each channel left unfinished when the session ended."""
        for label, rest in self.partial.items():
            if rest:
                self._line(label, rest)
        self.partial.clear()

    async def _deny(self, answer: Response) -> None:
        if "websocket.http.response" in self.ws.scope.get("extensions", {}):
            await self.ws.send_denial_response(answer)
        else:
            await self.ws.close(1008)


def gateway_status(code: int, message: str) -> Response:
    return JSONResponse(status(code, message), code, headers={"cache-control": "no-cache, private"})


def _status_of(refused: UpgradeRefused) -> str:
    """The API server's refusal of the upgrade, summarized as every record's answer is."""
    with contextlib.suppress(ValueError):
        return summarize(refused.status, json.loads(refused.body)) or f"HTTP {refused.status}"
    return f"HTTP {refused.status}"
