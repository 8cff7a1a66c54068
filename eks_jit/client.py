"""The eks-jit API client for agents and the CLI: SigV4-signed JSON over HTTPS.

    from eks_jit.client import Client

    client = Client("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")  # usual AWS credentials
    grant = client.request_grant("prod-eks", "payments", "rollout-restart", "15m", "readiness probe failing")
    if grant["status"] != "active":
        grant = client.wait(grant["id"])

Credentials and region resolve as boto3's do (environment, profile, instance role...), or are
passed in. Errors raise :class:`ApiError` with the API's stable ``code``.

``request_grant`` and ``extend`` are safe to retry: each call sends an ``Idempotency-Key`` (a new
UUID, or the ``idempotency_key=`` you pass) and retries transient failures itself with the same
key (connection errors, timeouts, HTTP 5xx and 429, 409 ``idempotency_key_in_progress``), a few
times with a short backoff; a retry gets the first attempt's answer, never a second grant. To
retry a whole call later (a script that restarts), pass the same key again: for 24 hours it
answers the same grant. An :class:`ApiError` says which key was sent (``idempotency_key``).

``active`` means EKS accepted the access entry and its policies. EKS applies such changes
eventually ("may take several seconds to be effective after the initial API call returns
successfully", EKS User Guide), so the first Kubernetes calls of a grant can still answer
401 Unauthorized or 403 Forbidden. Ride that out with :func:`retry_while_propagating`:

    from eks_jit.client import retry_while_propagating
    retry_while_propagating(lambda: subprocess.run(["kubectl", ...], check=True, capture_output=True))

Against local mode (``eks-jit local up``), :func:`local_client` signs as one of its identities
and :func:`local_aws` is a boto3 client for its emulated AWS (to look at what EKS holds):

    from eks_jit.client import local_client
    agent = local_client("agent-oncall")  # reads .eks-jit/local.json
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ProfileNotFound

from eks_jit.kubeconfig import LocalIdentity, kubeconfig

LOCAL_STATE_DIR = ".eks-jit"
"""Where ``eks-jit local up`` writes ``local.json`` (endpoints, identities and their keys)."""
SETTLED = frozenset({"active", "denied", "expired", "revoked", "cancelled", "failed"})
PROPAGATION_GRACE = 30.0
"""Seconds to go on retrying a 401/403 from the cluster after a grant became active. EKS
publishes no bound for its propagation ("several seconds"); 30 s is several times that and
still well inside the minute an MCP tool call may take."""
PROPAGATION_HINT = (
    "EKS may take several seconds to honour a new grant: retry a 401 Unauthorized or 403 Forbidden "
    f"from kubectl for up to {PROPAGATION_GRACE:.0f}s"
)
T = TypeVar("T")


RETRIED_CODES = frozenset({"idempotency_key_in_progress", "unreachable"})
"""Error codes a keyed call retries (with 429 and every 5xx): the first attempt is still being
answered, or the API could not be reached (connection refused or reset, timeout)."""


class ApiError(Exception):
    """The API refused or failed a call: HTTP ``status``, stable ``code``, human ``message``;
    ``idempotency_key`` is the key the call sent (retry it with that key to get its answer), and
    ``retry_after`` the seconds the API asked to wait, if it did."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        grant_id: str | None = None,
        idempotency_key: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.field, self.grant_id = status, code, message, field, grant_id
        self.idempotency_key, self.retry_after = idempotency_key, retry_after

    @property
    def transient(self) -> bool:
        """Whether retrying the same call (with the same key) may succeed."""
        return self.status >= 500 or self.status == 429 or self.code in RETRIED_CODES


def is_denied(error: BaseException) -> bool:
    """Whether ``error`` is the cluster answering 401 or 403, as the usual clients raise it: an
    HTTP status on the error or its response (kubernetes' ApiException, urllib, requests), or
    kubectl's own words on stderr (it exits 1 for every error). eks-jit's own 403 (a policy
    denial, :class:`ApiError`) is a decision, not propagation: never retried."""
    if isinstance(error, ApiError):
        return False
    for holder in (error, getattr(error, "response", None)):
        for attr in ("status", "status_code", "code"):
            value = getattr(holder, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and value in (401, 403):
                return True
    if isinstance(error, subprocess.CalledProcessError):
        said = error.stderr or error.output or ""
        text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
        return "(Unauthorized)" in text or "(Forbidden)" in text
    return False


def retry_while_propagating(
    call: Callable[[], T],
    *,
    within: float = PROPAGATION_GRACE,
    interval: float = 1.0,
    denied: Callable[[BaseException], bool] = is_denied,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """``call()``, tried again every ``interval`` s while it fails with a 401/403 (``denied``),
    for at most ``within`` s; then the last denial is raised. Use it for the first calls after a
    grant becomes active: EKS may take several seconds to apply the access entry. A denial that
    outlasts ``within`` is real (wrong scope, namespace, or the grant has ended)."""
    deadline = monotonic() + within
    while True:
        try:
            return call()
        except Exception as error:
            if not denied(error) or monotonic() + interval > deadline:
                raise
        sleep(interval)


class Client:
    def __init__(
        self,
        endpoint: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``retries``: how many more times a keyed call (``request_grant``, ``extend``) is sent after
        a transient failure, waiting about ``backoff`` s, doubled each time (at most 2 s, jittered;
        an API's ``Retry-After`` up to 5 s is honoured)."""
        if not endpoint.startswith(("https://", "http://")):
            raise ApiError(0, "bad_endpoint", f"the endpoint must be an http(s) URL, not '{endpoint}'")
        session: boto3.session.Session | None = None
        try:
            session = boto3.session.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            # keys passed in (local mode) need no profile, not even the one $AWS_PROFILE names
            if credentials is None or profile:
                named = profile or os.environ.get("AWS_PROFILE")
                raise ApiError(
                    0, "profile_not_found", f"no AWS profile '{named}' (aws configure list-profiles)"
                ) from None
        # the stage URL; one copied with a route on it (".../v1/grants") means the same API
        self.endpoint = endpoint.rstrip("/").removesuffix("/v1/grants")
        self.region = region or (session.region_name if session else None) or "us-east-1"
        resolved = credentials or (session.get_credentials() if session else None)
        if resolved is None:
            raise ApiError(0, "no_credentials", "no AWS credentials found (environment, profile or role)")
        self._credentials = resolved
        self._timeout = timeout
        self._retries, self._backoff, self._sleep = max(0, retries), backoff, sleep
        # the profile the calls are signed with, for the kubeconfig's `aws eks get-token`
        self.profile = None if credentials else profile or os.environ.get("AWS_PROFILE")
        # local mode: the identity and state dir the calls are signed from, for `eks-jit token --as`
        self.local: LocalIdentity | None = None

    # -- the API ----------------------------------------------------------------------------------

    def request_grant(
        self,
        cluster: str,
        namespace: str | None,
        scope: str,
        duration: str,
        reason: str,
        context: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        session: str | None = None,
    ) -> dict[str, Any]:
        """``context``: what the access is for, shown to approvers and kept for the audit, e.g.
        ``{"incident_url": "https://…", "alert": "…", "task_id": "…", "commands": ["kubectl …"]}``
        (README, "Request context"); the API refuses a bad one with 400 ``invalid_context``.
        ``session``: on a gateway cluster, bind the grant to this STS role session name (one agent
        task, not every holder of the role); 400 ``session_not_supported`` on an entry-mode cluster.
        Safe to retry: see the module's notes on ``idempotency_key``."""
        body = _grant_body(cluster, namespace, scope, duration, reason, session)
        if context:
            body["context"] = context
        return self._idempotent("POST", "/v1/grants", body, idempotency_key)

    def catalog(self) -> list[dict[str, Any]]:
        """Everything this caller could request: one entry per (cluster, namespace, scope) with the
        ``decision`` a request would get (``auto``, ``manual`` with ``approvers``, ``deny`` with the
        ``reason``) and its ``max_duration``; ``longer`` when a longer window is decided otherwise."""
        return list(self._call("GET", "/v1/catalog")["entries"])

    def dry_run(
        self, cluster: str, namespace: str | None, scope: str, duration: str, reason: str, *, session: str | None = None
    ) -> dict[str, Any]:
        """The decision ``request_grant`` with these arguments would get, writing nothing: bad input
        raises the same ApiError; a denial is an answer (``decision: deny``), not an error."""
        body = _grant_body(cluster, namespace, scope, duration, reason, session)
        return dict(self._call("POST", "/v1/grants", {**body, "dry_run": True}))

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

    def extend(
        self,
        grant_id: str,
        duration: str,
        reason: str,
        context: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``context``: the extension's own (what the extra time is for), as for :meth:`request_grant`.
        Safe to retry, like :meth:`request_grant`."""
        body: dict[str, Any] = {"duration": duration, "reason": reason}
        if context:
            body["context"] = context
        return self._idempotent("POST", f"/v1/grants/{grant_id}/extend", body, idempotency_key)

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

    def session(self, grant_id: str, *, page_size: int | None = None) -> dict[str, Any]:
        """The grant's whole session log (the Kubernetes requests the gateway recorded under it), following
        the API's pages: ``{"grant_id", "commands": [...], "next": None}``, commands oldest first."""
        commands: list[dict[str, Any]] = []
        for _, page in self.session_pages(grant_id, page_size=page_size):
            commands += page["commands"]
        return {**page, "commands": commands, "next": None}

    def session_pages(
        self, grant_id: str, *, after: str | None = None, page_size: int | None = None
    ) -> Iterator[tuple[str | None, dict[str, Any]]]:
        """The pages of the grant's session log from after ``after`` (a ``next`` an earlier page gave;
        None: from the first), each with the ``after`` it was read from, to the last page (whose
        ``next`` is null). To read on later, read again from the last page's ``after``: its commands
        come again, then any recorded since (``eks-jit session --follow`` drops those it has shown)."""
        query = {"limit": str(page_size)} if page_size else {}
        while True:
            page = self._call(
                "GET", f"/v1/grants/{grant_id}/session", query=query | ({"after": after} if after else {})
            )
            yield after, page
            if not page.get("next"):
                return
            after = page["next"]

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/v1/whoami")

    def kubeconfig(self, grant_id: str) -> dict[str, Any]:
        """The kubeconfig (a dict; ``yaml.safe_dump`` or ``json.dumps`` it) for an active grant,
        the same as ``eks-jit kubeconfig``: its user runs ``aws eks get-token`` (entry mode) or
        ``eks-jit token`` (gateway mode) with this client's profile, or in local mode as its local
        identity. Raises :class:`eks_jit.kubeconfig.GrantNotActive` unless the grant is active."""
        return kubeconfig(self.grant(grant_id), self.profile, local=self.local)

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

    def _idempotent(self, method: str, path: str, body: Any, key: str | None) -> Any:
        """One logical call under one Idempotency-Key, sent again after a transient failure."""
        key = key if key is not None else str(uuid.uuid4())
        headers = {"Idempotency-Key": key}
        for attempt in range(self._retries + 1):
            try:
                return self._call(method, path, body, headers=headers)
            except ApiError as exc:
                exc.idempotency_key = key
                if not exc.transient or attempt == self._retries:
                    raise
                self._sleep(self._delay(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _delay(self, attempt: int, error: ApiError) -> float:
        wait = min(2.0, self._backoff * 2**attempt) * random.uniform(0.5, 1.0)
        return max(wait, min(5.0, error.retry_after)) if error.retry_after is not None else wait

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.endpoint + path + (f"?{urlencode(sorted(query.items()))}" if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(
            method=method, url=url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
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
                retry_after=_seconds(exc.headers.get("Retry-After") if exc.headers else None),
            ) from None
        except urllib.error.URLError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.endpoint}: {exc.reason}") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:  # sent, but no whole answer
            raise ApiError(0, "unreachable", f"no answer from {self.endpoint}: {exc!r}") from None


def _grant_body(
    cluster: str, namespace: str | None, scope: str, duration: str, reason: str, session: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"cluster": cluster, "scope": scope, "duration": duration, "reason": reason}
    if namespace:
        body["namespace"] = namespace
    if session:
        body["session"] = session
    return body


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` given in seconds (the HTTP-date form is not used by API Gateway)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# -- local mode ---------------------------------------------------------------------------------------


def local_state(state_dir: str | Path = LOCAL_STATE_DIR) -> dict[str, Any]:
    """What ``eks-jit local up`` wrote to ``<state_dir>/local.json``; ApiError ``not_local_mode``
    when local mode is not running there."""
    path = Path(state_dir) / "local.json"
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ApiError(0, "not_local_mode", f"{path} not found: is `eks-jit local up` running?") from None


def local_credentials(state: dict[str, Any], name: str) -> Credentials:
    """The keys of local identity ``name``; ApiError ``unknown_identity`` naming the known ones."""
    found = next((i for i in state["identities"] if i["name"] == name), None)
    if not found:
        names = ", ".join(i["name"] for i in state["identities"])
        raise ApiError(0, "unknown_identity", f"no local identity '{name}' (known: {names})")
    return Credentials(found["access_key_id"], found["secret_access_key"])


def local_client(name: str, state_dir: str | Path = LOCAL_STATE_DIR, *, timeout: float = 30.0) -> Client:
    """A client for local mode's API, signing as local identity ``name`` (``agent-oncall``,
    ``approver-alice``, ``admin-carol``...), the same as ``eks-jit --as NAME``."""
    state = local_state(state_dir)
    credentials = local_credentials(state, name)
    client = Client(state["api_endpoint"], region=state["region"], credentials=credentials, timeout=timeout)
    client.local = LocalIdentity(name, str(Path(state_dir).resolve()))
    return client


def local_aws(service: str, state_dir: str | Path = LOCAL_STATE_DIR) -> Any:
    """A boto3 client for local mode's emulated AWS (moto): ``local_aws("eks").list_access_entries(
    clusterName="demo")`` shows what EKS itself holds. moto takes any credentials; these are dummies."""
    state = local_state(state_dir)
    return boto3.client(
        service,
        endpoint_url=state["aws_endpoint"],
        region_name=state["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto takes any key; not a secret
    )
