"""The STS adapter against a local stand-in for STS that checks SigV4 for real.

The stand-in verifies the presigned GetCallerIdentity URL with local mode's own verifier
(eks_jit/local/sigv4.py, botocore's signer) over the headers it receives, as STS does: so a token
made for another cluster fails there, because the gateway sends its own ``x-k8s-aws-id``.
It answers as STS answers (JSON with ``Accept: application/json``; 403 with an error document),
and can be made slow or throttled.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials

from eks_jit.local.sigv4 import AuthError, Identity, verify_presigned
from eks_jit.server.adapters.sts_identity import StsIdentity
from eks_jit.server.domain.eks_token import PRESIGNED_LIFETIME, TokenRefused
from eks_jit.server.domain.errors import TransientAwsError
from eks_jit.token import encode_token, presigned_url
from tests.support import FakeClock

HOST = "sts.eu-west-1.amazonaws.com"
ONCALL = Identity(
    "agent-oncall", "AKIALOCALONCALL00001", "oncall-secret", "arn:aws:iam::123456789012:role/agents/oncall-agent"
)
SESSIONS = {ONCALL.access_key_id: "incident-4711"}


@dataclass
class StandIn:
    clock: FakeClock
    url: str = ""
    delay: float = 0.0
    throttle: bool = False
    seen: list[dict[str, str]] = field(default_factory=list)


def _handler(sts: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            headers = dict(self.headers.items())
            sts.seen.append(headers)
            if sts.delay:
                time.sleep(sts.delay)
            if sts.throttle:
                return self._send(400, {"Error": {"Code": "Throttling", "Message": "Rate exceeded", "Type": "Sender"}})
            try:
                who = verify_presigned(
                    "GET",
                    f"https://{headers.get('Host', '')}{self.path}",
                    headers,
                    {ONCALL.access_key_id: ONCALL},
                    sts.clock.now(),
                    service="sts",
                    region="eu-west-1",
                    lifetime=PRESIGNED_LIFETIME,
                )
            except AuthError as error:
                code = "SignatureDoesNotMatch" if error.code == "invalid_signature" else error.code
                return self._send(403, {"Error": {"Code": code, "Message": error.message, "Type": "Sender"}})
            role = who.principal_arn.rsplit("/", 1)[-1]
            session = SESSIONS[who.access_key_id]
            result = {
                "Account": "123456789012",
                "Arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session}",
                "UserId": f"AROALOCALONCALL:{session}",
            }
            self._send(200, {"GetCallerIdentityResponse": {"GetCallerIdentityResult": result}})

    return Handler


@pytest.fixture
def sts() -> Iterator[StandIn]:
    stand_in = StandIn(FakeClock())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()


def token_for(cluster: str, now: datetime, secret: str = ONCALL.secret_access_key) -> str:
    credentials = ReadOnlyCredentials(ONCALL.access_key_id, secret, None)
    return encode_token(presigned_url(credentials, cluster, "eu-west-1", f"https://{HOST}", now))


def verifier(sts: StandIn, cluster: str = "demo-gateway", timeout: float = 5.0) -> StsIdentity:
    return StsIdentity(cluster, "aws", connect_to=sts.url, timeout=timeout)


def test_a_token_for_this_cluster_names_the_role_and_its_session(sts: StandIn) -> None:
    now = sts.clock.now()
    caller = verifier(sts).verify(token_for("demo-gateway", now), now)
    assert (caller.role_name, caller.session, caller.account) == ("oncall-agent", "incident-4711", "123456789012")
    (seen,) = sts.seen
    assert seen["Host"] == HOST and seen["x-k8s-aws-id"] == "demo-gateway" and seen["Accept"] == "application/json"


def test_a_token_made_for_another_cluster_fails_stss_signature_check(sts: StandIn) -> None:
    now = sts.clock.now()
    with pytest.raises(TokenRefused, match=r"STS refused the token \(403\): SignatureDoesNotMatch"):
        verifier(sts, cluster="demo-gateway").verify(token_for("demo", now), now)
    assert sts.seen[0]["x-k8s-aws-id"] == "demo-gateway"  # the gateway's name, not the token's


def test_a_token_signed_with_another_secret_is_refused_by_sts(sts: StandIn) -> None:
    now = sts.clock.now()
    with pytest.raises(TokenRefused, match="SignatureDoesNotMatch"):
        verifier(sts).verify(token_for("demo-gateway", now, secret="guessed"), now)


def test_a_token_sts_no_longer_honours_is_refused_without_asking_sts(sts: StandIn) -> None:
    signed = sts.clock.now()
    sts.clock.advance(PRESIGNED_LIFETIME)
    with pytest.raises(TokenRefused, match="expired"):
        verifier(sts).verify(token_for("demo-gateway", signed), sts.clock.now())
    assert sts.seen == []


@pytest.mark.thread_timeout
def test_a_slow_sts_is_unavailable_not_a_refusal(sts: StandIn) -> None:
    sts.delay = 1.0
    now = sts.clock.now()
    started = time.monotonic()
    with pytest.raises(TransientAwsError) as unavailable:
        verifier(sts, timeout=0.2).verify(token_for("demo-gateway", now), now)
    assert unavailable.value.code == "aws_unavailable"
    assert time.monotonic() - started < 0.9


def test_throttling_is_unavailable_not_a_refusal(sts: StandIn) -> None:
    sts.throttle = True
    now = sts.clock.now()
    with pytest.raises(TransientAwsError):
        verifier(sts).verify(token_for("demo-gateway", now), now)


def test_sts_unreachable_is_unavailable() -> None:
    now = FakeClock().now()
    closed = StsIdentity("demo-gateway", "aws", connect_to="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(TransientAwsError):
        closed.verify(token_for("demo-gateway", now), now)
