"""Where the gateway forwards to: each gateway cluster's Kubernetes API server, and the gateway's own
credentials there.

:class:`EksUpstreams` (deployed): the endpoint and CA from ``eks:DescribeCluster``, and an EKS token the
gateway presigns with its own role's credentials (adapters/eks_signer.py), renewed before STS stops
honouring it; the gateway's role has one static access entry on the cluster (its group may only
impersonate). :class:`StaticUpstreams` (local mode, tests): given URLs, CAs and bearer tokens.
One ``httpx2.AsyncClient`` per cluster, made on first use inside the server's event loop.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import anyio.to_thread
import httpx2

STREAM_TIMEOUT = httpx2.Timeout(connect=5.0, read=None, write=30.0, pool=10.0)
TOKEN_REUSE_SECONDS = 10 * 60  # STS honours a presigned GetCallerIdentity for 15 minutes
MAX_FRAME_BYTES = 16 * 1024 * 1024  # one websocket frame; kubectl and the pod write far smaller ones


@dataclass
class Upstream:
    """Where a cluster's API server is and how the gateway authenticates to it."""

    url: str
    client: httpx2.AsyncClient
    authorization: Callable[[], Awaitable[str]]
    """The gateway's own ``Authorization`` header value (``Bearer <token>``), made fresh when needed."""
    tls: ssl.SSLContext
    """What ``client`` verifies the API server with (a websocket to it is opened with the same)."""


class Upstreams(Protocol):
    async def get(self, cluster: str) -> Upstream: ...


def ssl_context(ca_pem: str | None) -> ssl.SSLContext:
    """TLS to an upstream that presents a certificate from ``ca_pem`` (None: the system's roots)."""
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _client(context: ssl.SSLContext) -> httpx2.AsyncClient:
    # no timeout on reads: a watch waits for events as long as its grant lasts (the gateway cuts it)
    return httpx2.AsyncClient(verify=context, timeout=STREAM_TIMEOUT, follow_redirects=False, trust_env=False)


@dataclass(frozen=True)
class Target:
    url: str
    ca_pem: str | None
    bearer: str


class StaticUpstreams:
    def __init__(self, targets: dict[str, Target]) -> None:
        self._targets = targets
        self._made: dict[str, Upstream] = {}

    async def get(self, cluster: str) -> Upstream:
        if cluster not in self._made:
            target = self._targets[cluster]

            async def authorization() -> str:
                return f"Bearer {target.bearer}"

            tls = ssl_context(target.ca_pem)
            self._made[cluster] = Upstream(target.url.rstrip("/"), _client(tls), authorization, tls)
        return self._made[cluster]


class EksUpstreams:
    """``describe(cluster) -> (endpoint, ca_pem)`` and ``sign(cluster, now) -> token`` are blocking
    (boto3); they run in worker threads."""

    def __init__(
        self,
        describe: Callable[[str], tuple[str, str]],
        sign: Callable[[str, datetime], str],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._describe, self._sign, self._monotonic = describe, sign, monotonic
        self._made: dict[str, Upstream] = {}
        self._tokens: dict[str, tuple[float, str]] = {}
        self._lock = anyio.Lock()

    async def get(self, cluster: str) -> Upstream:
        async with self._lock:
            if cluster not in self._made:
                endpoint, ca_pem = await anyio.to_thread.run_sync(self._describe, cluster)

                async def authorization() -> str:
                    return f"Bearer {await self._token(cluster)}"

                tls = ssl_context(ca_pem)
                self._made[cluster] = Upstream(endpoint.rstrip("/"), _client(tls), authorization, tls)
        return self._made[cluster]

    async def _token(self, cluster: str) -> str:
        made = self._tokens.get(cluster)
        if made is None or self._monotonic() - made[0] > TOKEN_REUSE_SECONDS:
            token = await anyio.to_thread.run_sync(self._sign, cluster, datetime.now(UTC))
            made = self._tokens[cluster] = (self._monotonic(), token)
        return made[1]


def eks_describer(clients: Callable[[str], Any]) -> Callable[[str], tuple[str, str]]:
    """DescribeCluster's endpoint and CA (base64 PEM in the answer) for ``clients(cluster)``'s EKS client."""
    import base64

    def describe(cluster: str) -> tuple[str, str]:
        found = clients(cluster).describe_cluster(name=cluster)["cluster"]
        return found["endpoint"], base64.b64decode(found["certificateAuthority"]["data"]).decode()

    return describe


def own_token_signer(
    region_of: Callable[[str], str], endpoint_url: str | None = None
) -> Callable[[str, datetime], str]:
    """Signs the gateway's own EKS token for a cluster with the function role's credentials (refreshed
    by boto3 as the role's session rotates), for the cluster's region's STS endpoint."""
    from .aws import client, session
    from .eks_signer import encode_token, presigned_url

    def sign(cluster: str, now: datetime) -> str:
        region = region_of(cluster)
        credentials = session().get_credentials()
        if credentials is None:
            raise RuntimeError("the gateway function has no AWS credentials")
        endpoint = client("sts", region, endpoint_url).meta.endpoint_url
        return encode_token(presigned_url(credentials.get_frozen_credentials(), cluster, region, endpoint, now))

    return sign


class UpgradeRefused(Exception):
    """The API server answered a websocket handshake with something other than ``101``."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.content_type, self.body = status, content_type, body


async def open_websocket(upstream: Upstream, url: str, headers: list[tuple[str, str]], subprotocols: list[str]) -> Any:
    """A websocket to the API server (``url`` is ``https://…``, as ``upstream.url``), offering the
    client's subprotocols (``v5.channel.k8s.io``, …): a ``websockets`` client connection whose
    ``subprotocol`` is the one the server chose. UpgradeRefused for a non-101 answer (its Status);
    OSError or a websockets error when it cannot be reached."""
    from websockets.asyncio.client import connect
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.typing import Subprotocol

    try:
        return await connect(
            "wss://" + url.removeprefix("https://"),
            additional_headers=Headers(headers),
            subprotocols=[Subprotocol(p) for p in subprotocols],
            ssl=upstream.tls,
            proxy=None,  # never the environment's proxy: the gateway speaks to the API server only
            compression=None,
            open_timeout=STREAM_TIMEOUT.connect,
            max_size=MAX_FRAME_BYTES,
            user_agent_header=None,
            ping_interval=None,  # the API server pings; the gateway passes frames, it does not add its own
        )
    except InvalidStatus as refused:
        answer = refused.response
        content_type = answer.headers.get("content-type", "")
        raise UpgradeRefused(answer.status_code, content_type, bytes(answer.body or b"")) from None
