"""The gateway's decisions, without HTTP: who is calling, what they may do, what to record.

The ASGI edge (handlers/gateway.py) calls these in order for each request: :func:`identify` (the EKS
token, verified as STS would, matched to a registered principal), :func:`held_grants` (the caller's
active grants on the cluster, read fresh from the store on every request: a revoke is seen by the
next request), :func:`decide` (kube_rules.authorize over them, with the body's changes when a scope
narrows writes), then :func:`impersonation` for what it forwards and :func:`command` for the record.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..domain.catalog import Catalog
from ..domain.eks_token import StsCaller, TokenRefused, parse_token
from ..domain.grant import Grant
from ..domain.holds import HoldAsk, HoldVerdict, body_sha256
from ..domain.identity import NotAPrincipal, normalise_principal, registry_key
from ..domain.impersonation import Impersonation, impersonation_for
from ..domain.kube_request import KubeRequest, NonResourceRequest
from ..domain.kube_rules import (
    Caller,
    Changes,
    Decision,
    HeldGrant,
    Outcome,
    UnnarrowableChange,
    authorize,
    in_force,
    patch_changes,
    strict_json,
    update_changes,
)
from ..domain.policy import Guard, KubeQuestion, PolicySet
from ..domain.recording import MAX_REASON_CHARS, Command, CommandOutcome, bounded_body
from .ports import GrantStore

KubeCall = KubeRequest | NonResourceRequest


class HoldDesk(Protocol):
    def hold(self, ask: HoldAsk) -> HoldVerdict:
        """The API's answer to a held request (adapters/holds_api.py): HoldRefused (4xx) or
        TransientAwsError (unreachable)."""


class TokenVerifier(Protocol):
    def verify(self, token: str, cluster: str, now: datetime) -> Caller:
        """The caller a token signed for ``cluster`` stands for; TokenRefused (401) or
        TransientAwsError (503)."""


class StsVerifier:
    """Deployed: STS answers who signed the token (adapters/sts_identity.py, one per cluster), and the
    answer is matched to a registered principal as aws-iam-authenticator matches its role mappings
    (partition, account and role name; the role's path is not in a session ARN)."""

    def __init__(self, catalog: Catalog, sts_for: Callable[[str], object]) -> None:
        self._sts_for = sts_for
        self._known = {registry_key(p.arn): p.arn for p in catalog.principals}

    def verify(self, token: str, cluster: str, now: datetime) -> Caller:
        found: StsCaller = self._sts_for(cluster).verify(token, now)  # type: ignore[attr-defined]
        try:
            principal = normalise_principal(found.arn, self._known)
        except NotAPrincipal as error:
            raise TokenRefused(str(error)) from None
        return Caller(principal, found.session)


class CachedVerifier:
    """Remembers who a token stands for, so STS is asked once per token, not once per request
    (kubectl reuses one token for 14 minutes; STS's own rate limit would otherwise bound the
    gateway). A remembered token is still checked offline on every use (``parse_token``: its 15
    minutes, the cluster it was presigned for), so a cached answer never outlives the token.
    Keyed by the token's SHA-256 and the cluster; at most ``size`` tokens, the oldest dropped."""

    def __init__(self, inner: TokenVerifier, partition_of: Callable[[str], str], size: int = 4096) -> None:
        self._inner, self._partition_of, self._size = inner, partition_of, size
        self._known: dict[tuple[str, str], Caller] = {}
        self._lock = threading.Lock()

    def verify(self, token: str, cluster: str, now: datetime) -> Caller:
        parse_token(token, partition=self._partition_of(cluster), now=now)  # expired: refused, cached or not
        key = (hashlib.sha256(token.encode()).hexdigest(), cluster)
        with self._lock:
            found = self._known.get(key)
        if found is not None:
            return found
        caller = self._inner.verify(token, cluster, now)
        with self._lock:
            if len(self._known) >= self._size:
                self._known.pop(next(iter(self._known)))
            self._known[key] = caller
        return caller


def held_grants(store: GrantStore, caller: Caller, cluster: str) -> list[HeldGrant]:
    """The caller's grants on the cluster. A held command's grant (domain/holds.py) is not among them: it
    covers nothing by itself, only the one request the API lets through once (logic/holds.py)."""
    return [HeldGrant(g, g.session) for g in store.active_for(caller.principal, cluster) if g.command is None]


def grants_in_force(held: list[HeldGrant], caller: Caller, cluster: str, now: datetime) -> list[Grant]:
    """The grants a refusal is recorded under (a caller with none in force is only logged)."""
    return [h.grant for h in held if in_force(h, caller, cluster, now)]


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    grant: Grant | None = None
    """The grant that covers the request (allowed only)."""


async def decide(
    request: KubeCall,
    *,
    caller: Caller,
    cluster: str,
    held: list[HeldGrant],
    catalog: Catalog,
    now: datetime,
    content_type: str,
    body: bytes,
    stored: Callable[[Grant], object],
) -> Verdict:
    """Whether ``request`` passes. A write a scope narrows (``only_changes``) is judged by what its body
    changes: a PATCH by the patch itself, a PUT against the stored object (``stored(grant)``: an
    awaitable the edge gives, reading it upstream as that grant)."""
    decision = authorize(request, caller=caller, cluster=cluster, grants=held, scopes=catalog.scopes, now=now)
    if decision.outcome is Outcome.NEEDS_CHANGES and isinstance(request, KubeRequest):
        try:
            changes = await _changes(request, decision, held, content_type, body, stored)
        except UnnarrowableChange as error:
            return Verdict(Decision(Outcome.DENIED, f"{decision.reason}: {error.message}"))
        decision = authorize(
            request, caller=caller, cluster=cluster, grants=held, scopes=catalog.scopes, now=now, changes=changes
        )
    if decision.outcome is Outcome.NEEDS_CHANGES:  # a narrowed rule on a verb whose changes cannot be known
        return Verdict(Decision(Outcome.DENIED, decision.reason, considered=decision.considered))
    if not decision.allowed:
        return Verdict(decision)
    grant = next(h.grant for h in held if h.grant.id == decision.grant_id)
    return Verdict(decision, grant)


async def _changes(
    request: KubeRequest,
    decision: Decision,
    held: list[HeldGrant],
    content_type: str,
    body: bytes,
    stored: Callable[[Grant], object],
) -> Changes:
    if request.verb == "patch":
        return patch_changes(content_type, body)
    if request.verb == "update":
        after = strict_json(body)  # the duplicate keys Python and Go read differently are refused here too
        grant = next(h.grant for h in held if h.grant.id == decision.grant_id)
        before = await stored(grant)  # type: ignore[misc]
        if _resource_version(after) != _resource_version(before) or not _resource_version(before):
            # judged against the object read just now: without its resourceVersion the API server would
            # apply the PUT unconditionally, undoing whatever changed in between (outside the rule's fields)
            raise UnnarrowableChange("the update must carry the stored object's metadata.resourceVersion")
        return update_changes(before, after)
    raise UnnarrowableChange(f"a {request.verb} cannot be narrowed to named fields")


def guardrails(
    policies: PolicySet | None, caller: Caller, cluster: str, request: KubeCall, grant: Grant
) -> Guard | None:
    """What the policy set's guardrails say of a request ``grant`` covers (None: discovery, or none)."""
    if policies is None or not isinstance(request, KubeRequest):
        return None
    return policies.guard(
        KubeQuestion(
            principal=caller.principal,
            cluster=cluster,
            verb=request.verb,
            api_group=request.api_group,
            resource=request.resource,
            subresource=request.subresource,
            namespace=request.namespace,
            name=request.name,
            scope=grant.scope,
            session=caller.session or "",
        )
    )


def guard_message(guard: Guard, request: KubeCall, cluster: str) -> str:
    what = request.describe()
    if guard.outcome == "block":
        return f"eks-jit guardrail {', '.join(guard.policy_ids)} blocks {what} on cluster {cluster}: {guard.reason}"
    return (
        f"eks-jit guardrail {guard.policy_ids[0]} holds {what} on cluster {cluster}: it needs "
        f"{guard.approvals_required} approval(s) of {', '.join(guard.approvers)}, and this gateway cannot ask "
        "for one (it is run without the eks-jit API's URL, EKS_JIT_API_URL), so it is refused"
    )


def hold_ask(
    request: KubeRequest, *, method: str, grant: Grant, caller: Caller, cluster: str, query: str, body: bytes
) -> HoldAsk:
    """What the gateway tells the API it holds: the request as it would forward it."""
    return HoldAsk(
        grant_id=grant.id,
        principal=caller.principal,
        session=caller.session,
        cluster=cluster,
        method=method.upper(),
        path=request.wire_path,
        query=query,
        body_sha256=body_sha256(body),
    )


def _resource_version(obj: object) -> object:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata.get("resourceVersion") if isinstance(metadata, dict) else None


def impersonation(catalog: Catalog, grant: Grant, caller: Caller) -> Impersonation:
    return impersonation_for(grant, catalog.scopes[grant.scope], caller.session)


def command(
    grant: Grant,
    *,
    at: datetime,
    request_id: str,
    caller: Caller,
    request: KubeCall | None,
    method: str,
    path: str,
    query: str,
    body: bytes,
    outcome: CommandOutcome,
    status: int,
    reason: str = "",
    summary: str = "",
    duration_ms: int = 0,
) -> Command:
    """The record of one request under ``grant``: a write's body (bounded), never a read's."""
    verb = request.verb if request is not None else method.lower()
    # a write's body; of an exec, attach or port-forward, what its session carried (its "body")
    kept = method not in ("GET", "HEAD") or (isinstance(request, KubeRequest) and request.upgrades)
    recorded, truncated = bounded_body(body) if body and kept else (None, False)
    shown_path = request.path if request is not None else path  # below the cluster, as authorized
    return Command(
        grant_id=grant.id,
        at=at,
        request_id=request_id,
        principal=caller.principal,
        session=caller.session,
        verb=verb,
        path=shown_path,
        query=query,
        outcome=outcome,
        status=status,
        reason=reason[:MAX_REASON_CHARS],
        body=recorded,
        body_truncated=truncated,
        summary=summary,
        duration_ms=duration_ms,
    )
