"""Signing an EKS token: ``k8s-aws-v1.`` + base64url of an STS ``GetCallerIdentity`` URL presigned with
SigV4 query parameters, signed headers ``host`` and ``x-k8s-aws-id: <cluster>`` (what ``aws eks get-token``
makes). Used by ``eks-jit token`` (eks_jit/token.py) and by the gateway to authenticate as its own role to
the clusters it forwards to. botocore only."""

from __future__ import annotations

import base64
from datetime import datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from ..domain.eks_token import CLUSTER_ID_HEADER, STS_VERSION, TOKEN_PREFIX

PRESIGN_SECONDS = 60


class _SignedAt(SigV4QueryAuth):
    """botocore's presigner, signing at a given time rather than the process clock's."""

    def __init__(self, credentials: ReadOnlyCredentials, region: str, at: datetime) -> None:
        super().__init__(credentials, "sts", region, expires=PRESIGN_SECONDS)
        self._at = at

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        signature = self.signature(self.string_to_sign(request, self.canonical_request(request)), request)
        self._inject_signature_to_request(request, signature)


def presigned_url(credentials: ReadOnlyCredentials, cluster: str, region: str, endpoint: str, now: datetime) -> str:
    """The GetCallerIdentity URL, presigned at ``now`` for ``cluster`` (``endpoint``: the STS base URL)."""
    request = AWSRequest(
        method="GET",
        url=f"{endpoint.rstrip('/')}/",
        params={"Action": "GetCallerIdentity", "Version": STS_VERSION},
        headers={CLUSTER_ID_HEADER: cluster},
    )
    _SignedAt(credentials, region, now).add_auth(request)
    return str(request.url)


def encode_token(url: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
