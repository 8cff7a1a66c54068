"""The gateway's one call to the eks-jit API: ``POST /v1/holds`` (logic/holds.py decides it).

Signed with SigV4 (service ``execute-api``) by the gateway's own credentials, the way every API caller
signs; sent with botocore's HTTP session (as adapters/sts_identity.py: no dependency added, no retries,
no redirects, a short timeout, kubectl waits on it). A 4xx is :class:`HoldRefused` with the API's code
and message (the gateway refuses the request with it); a timeout, a connection failure or a 5xx is
:class:`TransientAwsError` (the gateway answers 503 and kubectl may retry).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import HTTPClientError
from botocore.httpsession import URLLib3Session

from ..domain.errors import TransientAwsError
from ..domain.holds import HoldAsk, HoldRefused, HoldVerdict

DEFAULT_TIMEOUT = 10.0  # seconds: the API may start an approval workflow before it answers


class ApiHolds:
    """``api_url`` is the API's base URL (a callable: local mode knows its port only once it listens);
    ``credentials`` gives the gateway's current credentials (a Lambda role's are refreshed)."""

    def __init__(
        self,
        api_url: str | Callable[[], str],
        region: str,
        credentials: Callable[[], Credentials],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: str | bool = True,
    ) -> None:
        self._url = api_url if callable(api_url) else (lambda: api_url)
        self._region, self._credentials = region, credentials
        self._http = URLLib3Session(timeout=(timeout, timeout), verify=verify)

    def hold(self, ask: HoldAsk) -> HoldVerdict:
        url = self._url().rstrip("/") + "/v1/holds"
        body = json.dumps({k: v for k, v in asdict(ask).items() if v is not None}).encode()
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(self._credentials().get_frozen_credentials(), "execute-api", self._region).add_auth(request)
        try:
            answer = self._http.send(request.prepare())
        except (HTTPClientError, BotocoreConnectionError) as error:
            raise TransientAwsError(f"the eks-jit API could not be reached ({type(error).__name__})") from None
        try:
            data = json.loads(answer.content or b"{}")
        except ValueError:
            data = {}
        if answer.status_code in (200, 201) and isinstance(data, dict):
            try:
                return HoldVerdict(data["outcome"], data["grant"]["id"], str(data["message"]))
            except (KeyError, TypeError):
                raise TransientAwsError("the eks-jit API answered the hold in an unknown shape") from None
        code = str(data.get("code", "http_error")) if isinstance(data, dict) else "http_error"
        message = str(data.get("message", "")) if isinstance(data, dict) else ""
        if 400 <= answer.status_code < 500 and answer.status_code != 429:
            raise HoldRefused(code, message or f"the eks-jit API refused the hold ({answer.status_code})")
        raise TransientAwsError(f"the eks-jit API answered the hold with {answer.status_code} {code}: try again")
