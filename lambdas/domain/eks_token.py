"""The EKS token, checked as aws-iam-authenticator checks it before anyone calls STS.

kubectl sends ``k8s-aws-v1.`` + base64url (no padding) of a presigned STS ``GetCallerIdentity``
URL whose signed headers include ``x-k8s-aws-id: <cluster name>`` (``aws eks get-token``,
``eks-jit token``). Whoever holds the URL can ask STS who signed it, so the URL is only as good as
the checks made before it is followed (kubernetes-sigs/aws-iam-authenticator ``pkg/token/token.go``,
``Verify``): :func:`parse_token` refuses anything but ``https://<an STS host of this partition>/``
with exactly the parameters a presigned GetCallerIdentity has, the cluster header signed, a
credential scoped to STS in the host's region, and an ``X-Amz-Date`` less than 15 minutes before
``now`` (STS honours a presigned GetCallerIdentity for 15 minutes whatever ``X-Amz-Expires``
says; ``aws eks get-token`` writes 60). The adapter (``adapters/sts_identity.py``) then sends the
GET with the gateway's own ``x-k8s-aws-id``: a token signed for another cluster no longer matches
its signature, and STS refuses it. :func:`caller_from_sts` reads STS's answer.

Pure: ``now`` is passed in, nothing here reads a clock or the network.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from .errors import DomainError
from .partitions import partition_of

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
STS_VERSION = "2011-06-15"
MAX_TOKEN_CHARS = 4096  # aws-iam-authenticator's maxTokenLenBytes
PRESIGNED_LIFETIME = timedelta(minutes=15)
MAX_EXPIRES_SECONDS = 900
MAX_FUTURE_SKEW = timedelta(minutes=5)
SIGNED_HEADERS = "host;x-k8s-aws-id"
_PARAMETERS = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
_REQUIRED = _PARAMETERS - {"x-amz-security-token"}
# STS hosts per partition: sts.<region>.<domain> and the dual-stack domain (aws-iam-authenticator's
# pkg/endpoints/partitions.go), plus sts-fips.<region>.<domain>; the global sts.amazonaws.com is the
# aws partition's only (it signs as us-east-1).
STS_DOMAINS: dict[str, tuple[str, ...]] = {
    "aws": ("amazonaws.com", "api.aws"),
    "aws-cn": ("amazonaws.com.cn", "api.amazonwebservices.com.cn"),
    "aws-us-gov": ("amazonaws.com", "api.aws"),
    "aws-iso": ("c2s.ic.gov",),
    "aws-iso-b": ("sc2s.sgov.gov",),
    "aws-iso-e": ("cloud.adc-e.uk",),
    "aws-iso-f": ("csp.hci.ic.gov",),
}
GLOBAL_STS_HOST = "sts.amazonaws.com"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
_HOST = re.compile(r"^sts(?P<fips>-fips)?\.(?P<region>[a-z0-9-]+)\.(?P<domain>[a-z0-9.-]+)$")
_CREDENTIAL = re.compile(r"^(?P<key>[A-Z0-9]{16,128})/(?P<date>[0-9]{8})/(?P<region>[a-z0-9-]+)/sts/aws4_request$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<part>aws[a-z-]*):sts::(?P<acct>[0-9]{12}):assumed-role/(?P<role>[\w+=,.@-]+)/(?P<session>[\w+=,.@-]+)$",
    re.ASCII,
)
_IAM_USER = re.compile(r"^arn:(?P<part>aws[a-z-]*):iam::(?P<acct>[0-9]{12}):user/[\w+=,.@/-]+$", re.ASCII)


class TokenRefused(DomainError):
    """The bearer token is not an EKS token eks-jit accepts (the gateway answers 401)."""

    code = "invalid_token"


@dataclass(frozen=True)
class PresignedCall:
    """The STS call a valid-looking token stands for."""

    url: str
    host: str
    region: str  # the region STS signs in for that host (us-east-1 for the global endpoint)
    access_key_id: str
    signed_at: datetime

    @property
    def expires_at(self) -> datetime:
        return self.signed_at + PRESIGNED_LIFETIME


def sts_host_region(host: str, partition: str) -> str:
    """The region of an STS host of ``partition``; raises :class:`TokenRefused` for any other host."""
    if host == GLOBAL_STS_HOST:
        if partition != "aws":
            raise TokenRefused(f"the global STS endpoint is not in partition {partition}")
        return "us-east-1"
    match = _HOST.match(host)
    if not match or not _REGION.match(match["region"]):
        raise TokenRefused(f"'{host}' is not an STS endpoint")
    region = match["region"]
    if partition_of(region) != partition or match["domain"] not in STS_DOMAINS.get(partition, ()):
        raise TokenRefused(f"'{host}' is not an STS endpoint of partition {partition}")
    return region


def parse_token(token: str, *, partition: str, now: datetime) -> PresignedCall:
    """Check an EKS token offline (everything but the signature, which only STS can check)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused("the token is too long")
    if not token.startswith(TOKEN_PREFIX):
        raise TokenRefused(f"the token does not start with '{TOKEN_PREFIX}': it is not an EKS token")
    encoded = token.removeprefix(TOKEN_PREFIX)
    if not _B64URL.match(encoded) or len(encoded) % 4 == 1:
        raise TokenRefused("the token is not base64url without padding")
    try:
        url = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise TokenRefused("the token does not decode to a URL") from None
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise TokenRefused(f"the presigned URL is {parts.scheme or 'not'} https")
    if parts.netloc != parts.hostname or parts.fragment:
        raise TokenRefused("the presigned URL carries a port, user information or a fragment")
    region = sts_host_region(parts.netloc, partition)
    if parts.path != "/":
        raise TokenRefused("the presigned URL's path is not '/'")

    query: dict[str, str] = {}
    for pair in parts.query.split("&") if parts.query else ():
        key, equals, value = pair.partition("=")
        lower = unquote(key).lower()
        if not equals or lower not in _PARAMETERS:
            raise TokenRefused(
                f"the presigned URL has the parameter '{unquote(key)}', which GetCallerIdentity never has"
            )
        if lower in query:
            raise TokenRefused(f"the presigned URL has '{unquote(key)}' twice")
        query[lower] = unquote(value)
    missing = sorted(_REQUIRED - query.keys())
    if missing:
        raise TokenRefused(f"the presigned URL lacks {', '.join(missing)}")
    if query["action"] != "GetCallerIdentity" or query["version"] != STS_VERSION:
        raise TokenRefused("the presigned URL is not sts:GetCallerIdentity (version 2011-06-15)")
    if query["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
        raise TokenRefused("the presigned URL is not signed with AWS4-HMAC-SHA256")
    if query["x-amz-signedheaders"].lower() != SIGNED_HEADERS:
        raise TokenRefused(f"the presigned URL must sign exactly the headers {SIGNED_HEADERS} (the cluster's name)")
    if not re.fullmatch(r"[0-9]{1,3}", query["x-amz-expires"]) or int(query["x-amz-expires"]) > MAX_EXPIRES_SECONDS:
        raise TokenRefused("X-Amz-Expires is not a number of seconds between 0 and 900")
    try:
        signed_at = datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TokenRefused("X-Amz-Date is not a SigV4 timestamp") from None
    credential = _CREDENTIAL.match(query["x-amz-credential"])
    if not credential or credential["date"] != query["x-amz-date"][:8] or credential["region"] != region:
        raise TokenRefused(f"the credential is not scoped to sts in {region} on the day the URL was signed")
    if now >= signed_at + PRESIGNED_LIFETIME:
        raise TokenRefused(f"the token expired at {(signed_at + PRESIGNED_LIFETIME).isoformat()} (15 minutes)")
    if signed_at > now + MAX_FUTURE_SKEW:
        raise TokenRefused("the token is signed in the future")
    return PresignedCall(
        url=url, host=parts.netloc, region=region, access_key_id=credential["key"], signed_at=signed_at
    )


@dataclass(frozen=True)
class StsCaller:
    """Who signed the token, as STS says: an assumed-role session or an IAM user."""

    account: str
    arn: str
    user_id: str
    kind: Literal["assumed-role", "user"]
    role_name: str | None = None
    session: str | None = None


def caller_from_sts(body: bytes, *, partition: str) -> StsCaller:
    """STS's JSON answer to GetCallerIdentity as the caller. Raises :class:`TokenRefused` for an
    answer that is malformed, inconsistent, or names a principal grants cannot name (the account
    root, a federated user, another partition)."""
    try:
        result: Any = json.loads(body)["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        account, arn, user_id = str(result["Account"]), str(result["Arn"]), str(result["UserId"])
    except (ValueError, KeyError, TypeError):
        raise TokenRefused("STS answered something that is not a GetCallerIdentity result") from None
    session = _ASSUMED_ROLE.match(arn)
    user = _IAM_USER.match(arn)
    found = session or user
    if not found:
        raise TokenRefused(f"'{arn}' is neither an assumed-role session nor an IAM user: it cannot hold a grant")
    if found["part"] != partition or found["acct"] != account:
        raise TokenRefused(f"STS's answer names {arn} for account {account}: not consistent with partition {partition}")
    if session:
        # UserId is "<role id>:<session name>" (aws-iam-authenticator splits it the same way)
        role_id, colon, session_name = user_id.partition(":")
        if not colon or not role_id or session_name != session["session"]:
            raise TokenRefused(f"STS's UserId {user_id!r} does not match the session of {arn}")
        return StsCaller(account, arn, role_id, "assumed-role", session["role"], session["session"])
    return StsCaller(account, arn, user_id, "user")
