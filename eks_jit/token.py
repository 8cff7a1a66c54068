"""The EKS token kubectl sends, made as ``aws eks get-token`` makes it, with botocore alone.

A token is ``k8s-aws-v1.`` + base64url (no padding) of an STS ``GetCallerIdentity`` URL presigned
with SigV4 query parameters for 60 seconds (``X-Amz-Expires=60``: STS honours such a URL for 15
minutes after its ``X-Amz-Date`` anyway), whose signed headers are ``host`` and
``x-k8s-aws-id: <cluster name>``, so the token is good for that one cluster. The credentials come
from the ordinary chain (environment, ``--profile``, SSO, instance role: boto3's session), and the
STS endpoint is the region's (``https://sts.eu-west-1.amazonaws.com``, ``...amazonaws.com.cn`` in
China), as botocore resolves it, ``AWS_ENDPOINT_URL_STS`` included.

:func:`exec_credential` wraps a token in the ``client.authentication.k8s.io/v1beta1``
ExecCredential kubectl's exec plugin protocol reads, with an ``expirationTimestamp`` 14 minutes
after signing, so kubectl asks for a new token before STS stops honouring the old one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.credentials import Credentials

from eks_jit.server.adapters.eks_signer import PRESIGN_SECONDS, encode_token, presigned_url

__all__ = ["PRESIGN_SECONDS", "NoCredentials", "encode_token", "exec_credential", "presigned_url", "token_for"]
TOKEN_LIFETIME = timedelta(minutes=14)
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def exec_credential(token: str, now: datetime) -> dict[str, Any]:
    return {
        "kind": "ExecCredential",
        "apiVersion": EXEC_API_VERSION,
        "spec": {},
        "status": {"expirationTimestamp": (now + TOKEN_LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token},
    }


class NoCredentials(RuntimeError):
    """The credential chain found nothing to sign with."""


def token_for(
    cluster: str,
    now: datetime,
    *,
    profile: str | None = None,
    region: str | None = None,
    credentials: Credentials | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(token, ExecCredential)`` for ``cluster`` from the credential chain of ``profile`` (or the
    default), or signed with ``credentials`` (local mode's identities). Raises :class:`NoCredentials`,
    and botocore's ``ProfileNotFound`` for an unknown profile."""
    import boto3
    import botocore.session

    # With keys given, no profile at all: not even the one $AWS_PROFILE names (it may not exist here)
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    session = boto3.Session(botocore_session=no_profile) if credentials else boto3.Session(profile_name=profile)
    found = credentials or session.get_credentials()
    if found is None:
        raise NoCredentials("no AWS credentials found (environment, profile, SSO or instance role)")
    region = region or session.region_name or "us-east-1"
    # the STS endpoint as botocore resolves it for the region (AWS_ENDPOINT_URL_STS included); the
    # client is never called, so it is made with the signing keys only to resolve the URL
    frozen = found.get_frozen_credentials()
    sts = session.client(
        "sts",
        region_name=region,
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    )
    token = encode_token(presigned_url(frozen, cluster, region, sts.meta.endpoint_url, now))
    return token, exec_credential(token, now)
