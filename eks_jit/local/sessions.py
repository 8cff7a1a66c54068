"""Local mode's STS role sessions, and verifying an EKS token against local identities offline.

A deployed agent assumes its role with a ``RoleSessionName`` (one per task) and the gateway learns
that name from STS. Local identities are static keys, so local mode derives a session's credentials
from the identity's secret instead of minting them: the secret key is HMAC-SHA256(identity secret,
session name) and the session token says the name (``eks-jit-local-session:<name>``; as a SigV4
``X-Amz-Security-Token`` it is signed). Whoever holds the identity's keys can make any session
(as whoever may assume a role can name any session); whoever holds one session's credentials cannot
make another's, which is what binding a grant to a session relies on. A token signed with the static
keys themselves has no session: a grant bound to a session refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from botocore.credentials import Credentials

from eks_jit.local.sigv4 import AuthError, Identity, verify_presigned
from eks_jit.server.domain.eks_token import CLUSTER_ID_HEADER, PRESIGNED_LIFETIME, TokenRefused, parse_token
from eks_jit.server.domain.kube_rules import Caller

SESSION_TOKEN_PREFIX = "eks-jit-local-session:"  # noqa: S105 - a format prefix, not a secret
SESSION_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")  # STS RoleSessionName


def session_credentials(access_key_id: str, secret_access_key: str, session: str) -> Credentials:
    """The credentials of ``session`` of the identity with these keys."""
    if not SESSION_NAME.match(session):
        raise ValueError(f"'{session}' is not an STS role session name ([A-Za-z0-9_+=,.@-], 2 to 64 characters)")
    derived = hmac.new(secret_access_key.encode(), session.encode(), hashlib.sha256).digest()
    return Credentials(access_key_id, base64.b64encode(derived).decode(), SESSION_TOKEN_PREFIX + session)


class LocalTokenVerifier:
    """Verifies EKS tokens as STS would, against local identities (access key id -> Identity)."""

    def __init__(self, identities: dict[str, Identity], partition: str = "aws") -> None:
        self._identities = identities
        self._partition = partition

    def verify(self, token: str, cluster: str, now: datetime) -> Caller:
        call = parse_token(token, partition=self._partition, now=now)
        security_token = next(
            (v for k, v in parse_qsl(urlsplit(call.url).query) if k.lower() == "x-amz-security-token"), None
        )
        identity = self._identities.get(call.access_key_id)
        if identity is None:
            raise TokenRefused(f"access key {call.access_key_id} belongs to no local identity")
        session = None
        if security_token is not None:
            session = security_token.removeprefix(SESSION_TOKEN_PREFIX)
            if not security_token.startswith(SESSION_TOKEN_PREFIX) or not SESSION_NAME.match(session):
                raise TokenRefused("the security token is not a local session's")
            derived = session_credentials(identity.access_key_id, identity.secret_access_key, session)
            identity = Identity(identity.name, identity.access_key_id, derived.secret_key, identity.principal_arn)
        try:
            verify_presigned(
                "GET",
                call.url,
                {"host": call.host, CLUSTER_ID_HEADER: cluster},
                {identity.access_key_id: identity},
                now,
                service="sts",
                region=call.region,
                lifetime=PRESIGNED_LIFETIME,
            )
        except AuthError as error:
            raise TokenRefused(f"STS would refuse the token: {error.message}") from None
        return Caller(identity.principal_arn, session)
