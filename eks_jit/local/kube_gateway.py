"""Local mode's data-path gateway: the real gateway app (eks_jit.server.handlers.gateway) over HTTPS,
in front of one emulated Kubernetes API per gateway cluster of the catalog.

Each emulated API server accepts only a bearer token made at start that only the gateway holds (as
EKS accepts only the gateway's role, in the group that may impersonate): its URL and token are
never written to local.json, so an agent on the machine has no way around the gateway. Tokens are
verified offline against the local identities (eks_jit/local/sessions.py), sessions included.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from eks_jit.emulation import kube_api
from eks_jit.local.https import HttpsServer, serve_https
from eks_jit.local.sessions import LocalTokenVerifier
from eks_jit.local.sigv4 import Identity
from eks_jit.server.adapters.kube_upstream import StaticUpstreams, Target
from eks_jit.server.domain.catalog import Catalog
from eks_jit.server.domain.policy import PolicySet
from eks_jit.server.handlers.gateway import GatewayDeps, create_app
from eks_jit.server.logic.ports import Clock, GrantStore, SessionLog


@dataclass
class LocalKubeGateway:
    server: HttpsServer
    clusters: dict[str, kube_api.KubeApiServer] = field(default_factory=dict)
    upstream_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    """The bearer each emulated API accepts: the gateway's alone (a bench's direct baseline reads it)."""

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_b64(self) -> str:
        """The CA as the API's ``EKS_JIT_GATEWAY_CA`` and a kubeconfig's ``certificate-authority-data`` hold it."""
        return base64.b64encode(self.server.ca_pem.encode()).decode()

    def stop(self) -> None:
        for api in self.clusters.values():
            api.cluster.close()  # open watches end first, so the gateway's streams end too
        self.server.stop()
        for api in self.clusters.values():
            api.stop()


def start(
    catalog: Catalog,
    store: GrantStore,
    identities: dict[str, Identity],
    clock: Clock,
    *,
    session_log: SessionLog | None = None,
    policies: PolicySet | None = None,
    port: int = 0,
    stream_check_seconds: float = 1.0,
    stream_limit_seconds: float | None = None,
    kube_clock: Any = None,
    holds: Any = None,
) -> LocalKubeGateway:
    """Start an emulated API per gateway cluster, then the gateway in front of them."""
    clusters: dict[str, kube_api.KubeApiServer] = {}
    targets: dict[str, Target] = {}
    try:
        for name, cluster in catalog.clusters.items():
            if cluster.gateway:
                token = secrets.token_urlsafe(32)
                seeded = kube_api.Cluster.seeded(now=kube_clock) if kube_clock else kube_api.Cluster.seeded()
                clusters[name] = kube_api.start(seeded, token=token)
                targets[name] = Target(clusters[name].url, clusters[name].ca_pem, token)
        deps = GatewayDeps(
            catalog=catalog,
            store=store,
            clock=clock,
            verifier=LocalTokenVerifier(identities),
            upstreams=StaticUpstreams(targets),
            session_log=session_log,
            stream_check_seconds=stream_check_seconds,
            stream_limit_seconds=stream_limit_seconds,
            policies=policies,
            holds=holds,
        )
        server = serve_https(
            create_app(deps), port=port, name="kube-gateway", organization="eks-jit local data-path gateway"
        )
    except BaseException:
        for api in clusters.values():
            api.stop()
        raise
    return LocalKubeGateway(server, clusters, {name: t.bearer for name, t in targets.items()})
