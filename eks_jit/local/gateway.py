"""The local API Gateway: HTTP on localhost in front of the real API handler.

Like the deployed REST API: every /v1 route needs a valid SigV4 signature (service
``execute-api``, the local region, the body's own payload hash) except the approval-link and
Slack routes, which verify their own signatures in the handler. The signer's identity becomes
``requestContext.identity`` of an API Gateway proxy event, exactly what AWS_IAM authorisation
hands the Lambda.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eks_jit.local.sigv4 import AuthError, Identity, verify

PUBLIC_PREFIXES = ("/v1/approval-links/", "/v1/slack/interactions")
ApiHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def proxy_event(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes, caller: Identity | None
) -> dict[str, Any]:
    params = parse_qs(query, keep_blank_values=True)
    identity: dict[str, Any] = {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")}
    if caller:
        account = caller.principal_arn.split(":")[4]
        identity |= {
            "accountId": account,
            "accessKey": caller.access_key_id,
            "userArn": caller.principal_arn,
            "user": caller.name,
        }
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in params.items()} or None,
        "multiValueQueryStringParameters": params or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "identity": identity,
        },
        **_body(body),
    }


def _body(body: bytes) -> dict[str, Any]:
    """As API Gateway passes it: text, or base64 when the bytes are not UTF-8."""
    if not body:
        return {"body": None, "isBase64Encoded": False}
    try:
        return {"body": body.decode(), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: an alert storm (50 agents connecting at once) had
    # connections reset before a thread could accept them. API Gateway has no such queue.
    request_queue_size = 128


class Gateway:
    def __init__(
        self,
        port: int,
        handler: ApiHandler,
        identities: dict[str, Identity],
        context_factory: Callable[[], Any],
        *,
        region: str,
    ) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __getattr__(self, name: str) -> Any:
                # Every method (GET, POST, and whatever a client tries) reaches the handler, which
                # answers a route it does not have with a JSON 4xx, as API Gateway does; http.server
                # would answer an unknown method with a 501 HTML page.
                if name.startswith("do_"):
                    return lambda: gateway._serve(self)
                raise AttributeError(name)

            def log_message(self, *args: Any) -> None:
                pass

        self._handler = handler
        self._identities = identities
        self._region = region
        self._context = context_factory
        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="eks-jit-gateway", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        parts = urlsplit(request.path)
        headers = {k: v for k, v in request.headers.items()}
        if not parts.path.startswith("/v1/"):
            return self._reply(
                request,
                404,
                {"Content-Type": ["application/json"]},
                json.dumps({"code": "route_not_found", "message": "no such route"}),
            )
        caller = None
        if not parts.path.startswith(PUBLIC_PREFIXES):
            try:
                url = f"http://{headers.get('Host', f'127.0.0.1:{self.port}')}{request.path}"
                caller = verify(
                    request.command, url, headers, body, self._identities, datetime.now(UTC), region=self._region
                )
            except AuthError as exc:
                return self._reply(
                    request,
                    403,
                    {"Content-Type": ["application/json"]},
                    json.dumps({"code": exc.code, "message": exc.message}),
                )
        event = proxy_event(request.command, parts.path, parts.query, headers, body, caller)
        response = self._handler(event, self._context())
        self._reply(
            request, response["statusCode"], response.get("multiValueHeaders") or {}, response.get("body") or ""
        )

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, list[str]], body: str) -> None:
        data = body.encode()
        request.send_response(status)
        for name, values in headers.items():
            for value in values:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
