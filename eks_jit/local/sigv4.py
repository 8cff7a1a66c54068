"""SigV4 verification for the local API, as API Gateway's AWS_IAM authoriser does it.

The signature is recomputed with botocore's own signer (``SigV4Auth``) from the request as
received: same method, path, query, signed headers, body and ``X-Amz-Date``, with the secret
key of the access key id the request names (local identities). A request that is unsigned,
names an unknown key, is signed with another secret, or is older than 5 minutes is refused.

As API Gateway does, the credential scope must be service ``execute-api`` in the gateway's
own region (never whatever the request says it was signed for), and the payload hash is the
SHA-256 of the body received: an ``X-Amz-Content-SHA256`` header must equal it
(``UNSIGNED-PAYLOAD`` is refused), so a signature made for one body never covers another.

:func:`verify_presigned` checks a presigned URL (SigV4 in the query string) the same way: the
STS GetCallerIdentity URL inside an EKS token, checked offline against local identities.

Local mode is not a trust boundary (README, "Local mode"): this check makes the local API
behave like the deployed one, it does not make the machine's other users untrusted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW = timedelta(minutes=5)
SERVICE = "execute-api"


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    name: str
    access_key_id: str
    secret_access_key: str
    principal_arn: str


def verify(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    identities: dict[str, Identity],
    now: datetime,
    *,
    region: str,
) -> Identity:
    lower = {k.lower(): v for k, v in headers.items()}
    match = AUTH.match(lower.get("authorization", "").strip())
    if not match:
        raise AuthError("missing_signature", "the request is not signed with AWS SigV4")
    if (match["service"], match["region"]) != (SERVICE, region):
        raise AuthError(
            "invalid_credential_scope",
            f"the credential is scoped to {match['service']} in {match['region']}: sign for {SERVICE} in {region}",
        )
    body_hash = hashlib.sha256(body).hexdigest()
    if lower.get("x-amz-content-sha256", body_hash) != body_hash:
        raise AuthError("payload_mismatch", "X-Amz-Content-SHA256 is not the SHA-256 of the body sent")
    identity = identities.get(match["key"])
    if identity is None:
        raise AuthError("unknown_access_key", f"access key {match['key']} belongs to no known principal")
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AuthError("invalid_signature", "X-Amz-Date is missing or malformed") from None
    if abs(now - signed_at) > MAX_SKEW or not amz_date.startswith(match["date"]):
        raise AuthError("expired_signature", "the signature is too old or from the future (5 minutes)")
    signed = match["signed"].split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={h: lower.get(h, "") for h in signed})
    request.context["timestamp"] = amz_date
    request.context["payload_signing_enabled"] = True  # the body's own hash, also over https
    signer = SigV4Auth(
        Credentials(identity.access_key_id, identity.secret_access_key, lower.get("x-amz-security-token")),
        SERVICE,
        region,
    )
    if signer.signed_headers(signer.headers_to_sign(request)) != match["signed"]:
        raise AuthError("invalid_signature", "the signed headers do not match the request")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise AuthError("invalid_signature", "the signature does not match: wrong secret key or altered request")
    return identity


PRESIGNED = re.compile(r"^(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$")


def verify_presigned(
    method: str,
    url: str,
    headers: dict[str, str],
    identities: dict[str, Identity],
    now: datetime,
    *,
    service: str,
    region: str,
    lifetime: timedelta | None = None,
) -> Identity:
    """The identity that presigned ``url`` (query-string SigV4), as the service would check it.

    ``headers`` are the headers the request arrived with (``host`` and every signed one must be
    there: a header signed with another value, such as an EKS token's ``x-k8s-aws-id`` for
    another cluster, fails the signature). ``lifetime``: how long after ``X-Amz-Date`` the service
    honours the URL (STS: 15 minutes for GetCallerIdentity whatever ``X-Amz-Expires`` says);
    ``None`` honours ``X-Amz-Expires``."""
    lower = {k.lower(): v for k, v in headers.items()}
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs) or "X-Amz-Signature" not in params:
        raise AuthError("missing_signature", "the URL is not presigned (or repeats a parameter)")
    signature = params.pop("X-Amz-Signature")
    credential = PRESIGNED.match(params.get("X-Amz-Credential", ""))
    if not credential or params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise AuthError("invalid_signature", "X-Amz-Credential or X-Amz-Algorithm is missing or malformed")
    if (credential["service"], credential["region"]) != (service, region):
        raise AuthError(
            "invalid_credential_scope",
            f"the credential is scoped to {credential['service']} in {credential['region']}: "
            f"sign for {service} in {region}",
        )
    identity = identities.get(credential["key"])
    if identity is None:
        raise AuthError("unknown_access_key", f"access key {credential['key']} belongs to no known principal")
    amz_date = params.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        honoured = lifetime or timedelta(seconds=int(params.get("X-Amz-Expires", "")))
    except ValueError:
        raise AuthError("invalid_signature", "X-Amz-Date or X-Amz-Expires is missing or malformed") from None
    if not amz_date.startswith(credential["date"]) or now >= signed_at + honoured or signed_at > now + MAX_SKEW:
        raise AuthError("expired_signature", "the presigned URL has expired (or is signed in the future)")
    signed = params.get("X-Amz-SignedHeaders", "").split(";")
    if "host" not in signed or any(h not in lower for h in signed):
        raise AuthError("invalid_signature", "a signed header is missing from the request")
    host = lower["host"]
    request = AWSRequest(
        method=method,
        url=f"https://{host}{parts.path or '/'}",
        params=list(params.items()),
        headers={h: lower[h] for h in signed},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4QueryAuth(
        Credentials(identity.access_key_id, identity.secret_access_key, params.get("X-Amz-Security-Token")),
        service,
        region,
    )
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        raise AuthError("invalid_signature", "the signature does not match: wrong secret key or altered request")
    return identity
