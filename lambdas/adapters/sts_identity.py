"""STS: who signed an EKS token, asked the way aws-iam-authenticator asks.

The token is checked offline first (``domain/eks_token.py``: host, action, parameters, the signed
cluster header, the 15-minute window); only then is its presigned URL followed, with botocore's own
HTTP session (``URLLib3Session``, what boto3's clients send with: no dependency is added, proxy and
CA-bundle settings hold as for any AWS call): a GET carrying the gateway's
``x-k8s-aws-id: <cluster>`` (a token made for another cluster then fails STS's signature check)
and ``Accept: application/json``, no redirects, no retries, a short timeout. STS's answers become
domain errors: 403/400 (a bad or expired signature, an unknown key) are :class:`TokenRefused`; a
timeout, a connection failure, throttling or a 5xx is :class:`TransientAwsError` (the gateway
answers 503 and kubectl retries), never a refusal that looks like the caller's fault.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from botocore.awsrequest import AWSRequest
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import HTTPClientError
from botocore.httpsession import URLLib3Session

from ..domain.eks_token import CLUSTER_ID_HEADER, StsCaller, TokenRefused, caller_from_sts, parse_token
from ..domain.errors import TransientAwsError

DEFAULT_TIMEOUT = 5.0  # seconds, connect and read each: kubectl's own request waits on this
MAX_ANSWER_BYTES = 64 * 1024


class StsIdentity:
    """Verifies EKS tokens for one cluster (``cluster`` is the name the tokens must be signed for).

    ``connect_to`` sends the GET to another base URL (a local stand-in for STS) while keeping the
    token's own host in the ``Host`` header it was signed with; production leaves it ``None``."""

    def __init__(
        self,
        cluster: str,
        partition: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_to: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.partition = partition
        self._http = URLLib3Session(timeout=(timeout, timeout))  # never retries, never follows a redirect
        self._connect_to = connect_to.rstrip("/") if connect_to else None

    def verify(self, token: str, now: datetime) -> StsCaller:
        call = parse_token(token, partition=self.partition, now=now)
        url = call.url if self._connect_to is None else self._connect_to + call.url[len(f"https://{call.host}") :]
        headers = {CLUSTER_ID_HEADER: self.cluster, "Accept": "application/json", "Host": call.host}
        try:
            response = self._http.send(AWSRequest(method="GET", url=url, headers=headers).prepare())
        except (HTTPClientError, BotocoreConnectionError) as error:
            raise TransientAwsError(
                f"STS could not be reached or did not answer in time ({type(error).__name__}) at {call.host}"
            ) from None
        body = response.content
        if response.status_code == 200:
            if len(body) > MAX_ANSWER_BYTES:
                raise TokenRefused("STS's answer is too large to be a GetCallerIdentity result")
            return caller_from_sts(body, partition=self.partition)
        text = body[:512].decode("utf-8", "replace")
        if response.status_code in (429, 500, 502, 503, 504) or "Throttling" in text:
            raise TransientAwsError(f"STS at {call.host} answered {response.status_code}: try again")
        raise TokenRefused(f"STS refused the token ({response.status_code}): {_sts_error(text)}")


def _sts_error(text: str) -> str:
    """The code and message of an STS error answer, JSON or XML, for the refusal's reason."""
    try:
        error = json.loads(text)["Error"]
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    except (ValueError, KeyError, TypeError):
        code = re.search(r"<Code>([^<]{1,100})</Code>", text)
        return code.group(1) if code else "no error code"
