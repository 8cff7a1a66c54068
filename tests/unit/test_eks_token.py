"""The EKS token: made as `aws eks get-token` makes it, checked as aws-iam-authenticator checks it.

The token eks-jit makes is compared with the one botocore's own presigner makes for the same
credentials, cluster and instant (what awscli's get-token does); then every part a forger could
change is changed, and each change must be refused before STS is ever called.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import boto3
import pytest
from botocore.credentials import ReadOnlyCredentials

from eks_jit.server.domain.eks_token import (
    PRESIGNED_LIFETIME,
    TokenRefused,
    caller_from_sts,
    parse_token,
    sts_host_region,
)
from eks_jit.token import encode_token, exec_credential, presigned_url
from tests.support import FakeClock

CREDS = ReadOnlyCredentials("AKIALOCALONCALL00001", "secret-key-for-tests", None)
CLUSTER = "demo-gateway"
ENDPOINT = "https://sts.eu-west-1.amazonaws.com"
clock = FakeClock()
NOW = clock.now()


def token(now: datetime = NOW, endpoint: str = ENDPOINT, region: str = "eu-west-1") -> str:
    return encode_token(presigned_url(CREDS, CLUSTER, region, endpoint, now))


def url_of(tok: str) -> str:
    body = tok.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def forged(url: str) -> str:
    return encode_token(url)


def with_query(url: str, change: dict[str, str | None], extra: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    parts = urlsplit(url)
    pairs = [(k, change.get(k, v)) for k, v in parse_qsl(parts.query) if change.get(k, v) is not None]
    return parts._replace(query=urlencode([*pairs, *extra], quote_via=quote)).geturl()


def test_the_token_is_what_botocore_presigns_for_get_caller_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    # awscli's get-token: an sts client's generate_presigned_url('get_caller_identity', ExpiresIn=60)
    # with the x-k8s-aws-id header injected before signing. Same credentials, same instant.
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    sts = boto3.Session(aws_access_key_id=CREDS.access_key, aws_secret_access_key=CREDS.secret_key).client(
        "sts", region_name="eu-west-1"
    )
    sts.meta.events.register(
        "before-sign.sts.GetCallerIdentity", lambda request, **_: request.headers.__setitem__("x-k8s-aws-id", CLUSTER)
    )
    theirs = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    ours = url_of(token())
    assert urlsplit(ours)[:3] == urlsplit(theirs)[:3] == ("https", "sts.eu-west-1.amazonaws.com", "/")
    assert dict(parse_qsl(urlsplit(ours).query)) == dict(parse_qsl(urlsplit(theirs).query))
    assert dict(parse_qsl(urlsplit(ours).query))["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"


def test_a_fresh_token_parses_into_the_call_to_make() -> None:
    call = parse_token(token(), partition="aws", now=NOW + timedelta(seconds=30))
    assert (call.host, call.region, call.access_key_id, call.signed_at) == (
        "sts.eu-west-1.amazonaws.com",
        "eu-west-1",
        CREDS.access_key,
        NOW.replace(microsecond=0),
    )
    assert call.expires_at == call.signed_at + PRESIGNED_LIFETIME
    assert "=" not in token().removeprefix("k8s-aws-v1.")


def test_the_exec_credential_is_what_kubectl_reads() -> None:
    credential = exec_credential("k8s-aws-v1.abc", NOW)
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1beta1" and credential["kind"] == "ExecCredential"
    expires = datetime.strptime(credential["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expires == (NOW + timedelta(minutes=14)).replace(microsecond=0)
    assert credential["status"]["token"] == "k8s-aws-v1.abc"


def test_the_window_is_fifteen_minutes_after_signing_whatever_x_amz_expires_says() -> None:
    signed = NOW.replace(microsecond=0)
    assert parse_token(token(), partition="aws", now=signed + PRESIGNED_LIFETIME - timedelta(seconds=1))
    with pytest.raises(TokenRefused, match="expired"):
        parse_token(token(), partition="aws", now=signed + PRESIGNED_LIFETIME)
    with pytest.raises(TokenRefused, match="future"):
        parse_token(token(), partition="aws", now=signed - timedelta(minutes=6))


GOOD = url_of(token())
FORGERIES = {
    "no prefix": url_of(token()),
    "another prefix": "k8s-aws-v2." + token().removeprefix("k8s-aws-v1."),
    "padding": token() + "==",
    "standard base64": "k8s-aws-v1." + base64.b64encode(b"https://sts.eu-west-1.amazonaws.com/?a=b~~~").decode(),
    "garbage": "k8s-aws-v1.!!!!",
    "too long": "k8s-aws-v1." + "A" * 5000,
    "http": forged(GOOD.replace("https://", "http://")),
    "another host": forged(GOOD.replace("sts.eu-west-1.amazonaws.com", "evil.example.com")),
    "a host that ends like STS": forged(GOOD.replace("amazonaws.com/", "amazonaws.com.evil.example/")),
    "a host that starts like STS": forged(
        GOOD.replace("sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com.evil")
    ),
    "user information": forged(GOOD.replace("https://", "https://sts.eu-west-1.amazonaws.com@")),
    "a port": forged(GOOD.replace("amazonaws.com/", "amazonaws.com:8443/")),
    "a fragment": forged(GOOD + "#x"),
    "a path": forged(GOOD.replace("amazonaws.com/", "amazonaws.com/x/")),
    "another action": forged(with_query(GOOD, {"Action": "AssumeRole"})),
    "another version": forged(with_query(GOOD, {"Version": "2011-06-16"})),
    "no cluster header signed": forged(with_query(GOOD, {"X-Amz-SignedHeaders": "host"})),
    "more headers signed": forged(with_query(GOOD, {"X-Amz-SignedHeaders": "host;x-amz-foo;x-k8s-aws-id"})),
    "an extra parameter": forged(with_query(GOOD, {}, [("RoleArn", "arn:aws:iam::1:role/x")])),
    "a parameter twice": forged(with_query(GOOD, {}, [("action", "GetCallerIdentity")])),
    "expires too long": forged(with_query(GOOD, {"X-Amz-Expires": "901"})),
    "expires not a number": forged(with_query(GOOD, {"X-Amz-Expires": "-1"})),
    "no date": forged(with_query(GOOD, {"X-Amz-Date": None})),
    "a credential for another region": forged(
        with_query(GOOD, {"X-Amz-Credential": f"{CREDS.access_key}/{NOW:%Y%m%d}/us-east-1/sts/aws4_request"})
    ),
    "a credential for another service": forged(
        with_query(GOOD, {"X-Amz-Credential": f"{CREDS.access_key}/{NOW:%Y%m%d}/eu-west-1/iam/aws4_request"})
    ),
    "a credential of another day": forged(
        with_query(GOOD, {"X-Amz-Credential": f"{CREDS.access_key}/19990101/eu-west-1/sts/aws4_request"})
    ),
    "another algorithm": forged(with_query(GOOD, {"X-Amz-Algorithm": "AWS4-HMAC-SHA512"})),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_token_is_refused_before_sts_is_called(forgery: str) -> None:
    with pytest.raises(TokenRefused) as refused:
        parse_token(FORGERIES[forgery], partition="aws", now=NOW)
    assert refused.value.code == "invalid_token"


@pytest.mark.parametrize(
    ("host", "partition", "region"),
    [
        ("sts.amazonaws.com", "aws", "us-east-1"),
        ("sts.eu-west-1.amazonaws.com", "aws", "eu-west-1"),
        ("sts.eu-west-1.api.aws", "aws", "eu-west-1"),
        ("sts-fips.us-east-2.amazonaws.com", "aws", "us-east-2"),
        ("sts.cn-north-1.amazonaws.com.cn", "aws-cn", "cn-north-1"),
        ("sts.us-gov-west-1.amazonaws.com", "aws-us-gov", "us-gov-west-1"),
    ],
)
def test_sts_hosts_of_the_partition(host: str, partition: str, region: str) -> None:
    assert sts_host_region(host, partition) == region


@pytest.mark.parametrize(
    ("host", "partition"),
    [
        ("sts.amazonaws.com", "aws-cn"),  # the global endpoint is the aws partition's
        ("sts.cn-north-1.amazonaws.com.cn", "aws"),
        ("sts.eu-west-1.amazonaws.com", "aws-cn"),
        ("sts.cn-north-1.amazonaws.com", "aws-cn"),  # a China region on the commercial domain
        ("sts.not-a-region.amazonaws.com", "aws"),
        ("sts.us-gov-west-1.amazonaws.com", "aws"),
        ("iam.amazonaws.com", "aws"),
    ],
)
def test_any_other_host_is_refused(host: str, partition: str) -> None:
    with pytest.raises(TokenRefused):
        sts_host_region(host, partition)


def sts_answer(arn: str, user_id: str, account: str = "123456789012") -> bytes:
    return json.dumps(
        {
            "GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {"Account": account, "Arn": arn, "UserId": user_id},
                "ResponseMetadata": {"RequestId": "r-1"},
            }
        }
    ).encode()


def test_sts_answers_an_assumed_role_session_with_its_session_name() -> None:
    caller = caller_from_sts(
        sts_answer("arn:aws:sts::123456789012:assumed-role/oncall-agent/incident-4711", "AROAEXAMPLE:incident-4711"),
        partition="aws",
    )
    assert (caller.kind, caller.role_name, caller.session, caller.user_id, caller.account) == (
        "assumed-role",
        "oncall-agent",
        "incident-4711",
        "AROAEXAMPLE",
        "123456789012",
    )
    user = caller_from_sts(sts_answer("arn:aws:iam::123456789012:user/alice", "AIDAEXAMPLE"), partition="aws")
    assert (user.kind, user.session, user.user_id) == ("user", None, "AIDAEXAMPLE")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (sts_answer("arn:aws:iam::123456789012:root", "123456789012"), "cannot hold a grant"),
        (sts_answer("arn:aws:sts::123456789012:federated-user/bob", "123456789012:bob"), "cannot hold a grant"),
        (sts_answer("arn:aws:sts::123456789012:assumed-role/r/s1", "AROA:s2"), "does not match"),
        (sts_answer("arn:aws:sts::123456789012:assumed-role/r/s1", "AROA"), "does not match"),
        (sts_answer("arn:aws:sts::123456789012:assumed-role/r/s1", "AROA:s1", account="999999999999"), "consistent"),
        (sts_answer("arn:aws-cn:sts::123456789012:assumed-role/r/s1", "AROA:s1"), "consistent"),
        (b"<xml/>", "not a GetCallerIdentity"),
        (b'{"GetCallerIdentityResponse": {}}', "not a GetCallerIdentity"),
    ],
)
def test_answers_that_name_no_grantable_principal_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(TokenRefused, match=why):
        caller_from_sts(body, partition="aws")
