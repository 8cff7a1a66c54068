"""The eks-jit API client for agents and the CLI: SigV4-signed JSON over HTTPS.

    from eks_jit.client import Client

    client = Client("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")  # usual AWS credentials
    grant = client.request_grant("prod-eks", "payments", "rollout-restart", "15m", "readiness probe failing")
    if grant["status"] != "active":
        grant = client.wait(grant["id"])

Credentials and region resolve as boto3's do (environment, profile, instance role...), or are
passed in. Errors raise :class:`ApiError` with the API's stable ``code``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ProfileNotFound

SETTLED = frozenset({"active", "denied", "expired", "revoked", "cancelled", "failed"})


class ApiError(Exception):
    """The API refused or failed a call: HTTP ``status``, stable ``code``, human ``message``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, grant_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.field, self.grant_id = status, code, message, field, grant_id


class Client:
    def __init__(
        self,
        endpoint: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not endpoint.startswith(("https://", "http://")):
            raise ApiError(0, "bad_endpoint", f"the endpoint must be an http(s) URL, not '{endpoint}'")
        try:
            session = boto3.session.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise ApiError(
                0, "profile_not_found", f"no AWS profile '{profile}' (aws configure list-profiles)"
            ) from None
        # the stage URL; one copied with a route on it (".../v1/grants") means the same API
        self.endpoint = endpoint.rstrip("/").removesuffix("/v1/grants")
        self.region = region or session.region_name or "us-east-1"
        resolved = credentials or session.get_credentials()
        if resolved is None:
            raise ApiError(0, "no_credentials", "no AWS credentials found (environment, profile or role)")
        self._credentials = resolved
        self._timeout = timeout

    # -- the API ----------------------------------------------------------------------------------

    def request_grant(
        self, cluster: str, namespace: str | None, scope: str, duration: str, reason: str
    ) -> dict[str, Any]:
        body = {"cluster": cluster, "scope": scope, "duration": duration, "reason": reason}
        if namespace:
            body["namespace"] = namespace
        return self._call("POST", "/v1/grants", body)

    def grant(self, grant_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/grants/{grant_id}")

    def grants(self, status: str | None = None, mine: bool = True, limit: int = 200) -> list[dict[str, Any]]:
        query = {"mine": "true" if mine else "false", "limit": str(limit), **({"status": status} if status else {})}
        return list(self._call("GET", "/v1/grants", query=query)["grants"])

    def approvals(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/approvals")["grants"])

    def approve(self, grant_id: str, comment: str = "") -> dict[str, Any]:
        return self._call("POST", f"/v1/grants/{grant_id}/approve", {"comment": comment})

    def deny(self, grant_id: str, comment: str = "") -> dict[str, Any]:
        return self._call("POST", f"/v1/grants/{grant_id}/deny", {"comment": comment})

    def revoke(self, grant_id: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/v1/grants/{grant_id}/revoke", {"reason": reason})

    def cancel(self, grant_id: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/v1/grants/{grant_id}/cancel", {"reason": reason})

    def extend(self, grant_id: str, duration: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/grants/{grant_id}/extend", {"duration": duration, "reason": reason})

    def activity(self, grant_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/grants/{grant_id}/activity")

    def audit(self, since: str, until: str, *, page_size: int | None = None) -> list[dict[str, Any]]:
        """Every row of [since, until), following the API's pages (``next``) to the last."""
        query = {"since": since, "until": until} | ({"limit": str(page_size)} if page_size else {})
        rows: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", "/v1/audit", query=query)
            rows += page["rows"]
            if not page.get("next"):
                return rows
            query = query | {"next": page["next"]}

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/v1/whoami")

    def wait(
        self,
        grant_id: str,
        *,
        until: frozenset[str] = SETTLED,
        timeout: float = 3600.0,
        interval: float = 1.0,
        progress: Callable[[dict[str, Any], float], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the grant's status is in ``until``; raises TimeoutError after ``timeout`` s."""
        started = time.monotonic()
        while True:
            grant = self.grant(grant_id)
            if grant["status"] in until:
                return grant
            waited = time.monotonic() - started
            if waited > timeout:
                raise TimeoutError(f"grant {grant_id} still {grant['status']} after {timeout:.0f}s")
            if progress:
                progress(grant, waited)
            time.sleep(interval)

    # -- transport ----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = self.endpoint + path + (f"?{urlencode(sorted(query.items()))}" if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=url, data=data, headers={"Content-Type": "application/json"})
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        prepared = urllib.request.Request(  # noqa: S310 - the endpoint is checked to be http(s) in __init__
            url, data=data if method != "GET" else None, method=method, headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared, timeout=self._timeout) as response:  # noqa: S310 - http(s) only
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                error = json.loads(raw)
            except ValueError:
                error = {"code": "http_error", "message": raw.decode(errors="replace")[:200] or exc.reason}
            raise ApiError(
                exc.code,
                str(error.get("code", "http_error")),
                str(error.get("message", "")),
                error.get("field"),
                error.get("grant_id"),
            ) from None
        except urllib.error.URLError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.endpoint}: {exc.reason}") from None
