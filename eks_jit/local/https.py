"""Serving an ASGI app over HTTPS on a thread, with a certificate from a CA made at start (``trustme``):
local mode's emulated Kubernetes API and its data-path gateway both run this way."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GRACE = 3.0  # seconds a stop waits for requests in flight


@dataclass
class HttpsServer:
    url: str
    ca_pem: str
    _server: Any
    _thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Returns once the server's thread is done (forcing it after ``timeout``)."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)


def serve_https(app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str, organization: str) -> HttpsServer:
    """Start ``app`` on ``host:port`` (0: a free port) over TLS 1.2+, with a certificate for 127.0.0.1,
    localhost and ::1 from a new CA (``organization`` names it). OSError if the port is busy."""
    import trustme
    import uvicorn

    ca = trustme.CA(organization_name=organization)
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")

    def ssl_context(_config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        leaf.configure_cert(context)
        return context

    # IPPROTO_TCP named, or asyncio leaves Nagle on for the accepted connections (it sets
    # TCP_NODELAY only on sockets whose proto says TCP): each response's body, written after its
    # headers, would then wait for the client's delayed ACK (about 40 ms a request, measured).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_context_factory=ssl_context,
        http=_protocol(),
        timeout_graceful_shutdown=int(GRACE),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return HttpsServer(f"https://{shown}:{bound}", ca.cert_pem.bytes().decode(), server, thread)


def _protocol() -> type[Any]:
    """uvicorn's h11 protocol, but an idle keep-alive connection is dropped at stop: closed, a TLS
    connection waits for the client's close_notify (asyncio: up to 30 s), which an idle client
    (a gateway's connection pool) never sends, so every stop would take the whole grace period."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DroppingIdle(H11Protocol):  # type: ignore[misc]
        def shutdown(self) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self.transport.abort()
            else:
                super().shutdown()

    return DroppingIdle
