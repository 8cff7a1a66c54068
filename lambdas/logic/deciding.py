"""What policy says about a request, derived the same way every time it is asked.

``decide`` validates a request against the catalog (cluster, scope, namespace, duration
bounds) and evaluates the Cedar policy for it. It runs when a request arrives and again before
any activation (``lambdas/logic/justification.py``): nothing is activated on the strength of a
stored decision alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..domain.catalog import DNS_LABEL, Level
from ..domain.durations import format_duration
from ..domain.errors import InvalidRequest
from ..domain.grant import Decision, RequestContext, why_reason_is_short
from ..domain.holds import HeldCommand
from ..domain.question import AccessQuestion
from .ports import Deps


@dataclass(frozen=True)
class AccessRequest:
    requester: str
    cluster: str
    namespace: str | None
    scope: str
    duration: timedelta
    reason: str
    context: RequestContext | None = None  # shown to approvers, kept for the audit; policy does not read it
    session: str | None = None  # the STS role session the grant is bound to (gateway clusters only)
    command: HeldCommand | None = None  # a held command's grant (logic/holds.py): the one request it covers


def namespaces_for(deps: Deps, cluster_name: str, namespace: str | None, scope_name: str) -> tuple[str, ...]:
    """The namespaces a request for (cluster, namespace, scope) covers, or the InvalidRequest that
    names what is wrong with them: checked first, as the error that helps most."""
    return _namespaces(deps, AccessRequest("", cluster_name, namespace, scope_name, timedelta(0), ""))


def _namespaces(deps: Deps, req: AccessRequest) -> tuple[str, ...]:
    cluster = deps.catalog.clusters.get(req.cluster)
    if cluster is None:
        raise InvalidRequest(f"unknown cluster '{req.cluster}'", code="unknown_cluster", field="cluster")
    scope = deps.catalog.scopes.get(req.scope)
    if scope is None:
        known = ", ".join(sorted(deps.catalog.scopes))
        raise InvalidRequest(f"unknown scope '{req.scope}' (known: {known})", code="unknown_scope", field="scope")
    if scope.level is Level.CLUSTER:
        if req.namespace:
            raise InvalidRequest(
                f"scope '{req.scope}' is cluster-wide: give no namespace",
                code="namespace_not_allowed",
                field="namespace",
            )
        return ()
    if not req.namespace:
        raise InvalidRequest(f"scope '{req.scope}' needs a namespace", code="namespace_required", field="namespace")
    if not DNS_LABEL.match(req.namespace):
        raise InvalidRequest(
            "a namespace is a DNS label: lowercase letters, digits and '-', at most 63",
            code="invalid_namespace",
            field="namespace",
        )
    if req.namespace not in cluster.namespaces:
        raise InvalidRequest(
            f"namespace '{req.namespace}' is not registered for cluster '{req.cluster}'",
            code="unknown_namespace",
            field="namespace",
        )
    return (req.namespace,)


def _check_duration(deps: Deps, duration: timedelta) -> None:
    bounds = deps.catalog.settings
    if duration <= timedelta(0):
        raise InvalidRequest("duration must be positive", code="invalid_duration", field="duration")
    if duration < bounds.min_duration:
        raise InvalidRequest(
            f"duration must be at least {format_duration(bounds.min_duration)}",
            code="duration_too_short",
            field="duration",
        )
    if duration > bounds.max_duration:
        raise InvalidRequest(
            f"duration exceeds the maximum of {format_duration(bounds.max_duration)}",
            code="duration_exceeds_maximum",
            field="duration",
        )


def _check_session(deps: Deps, req: AccessRequest) -> None:
    """Only the gateway can tell one STS session of a role from another: an access entry names the
    role, so on an entry-mode cluster a session-bound grant would give every session the access."""
    if req.session is not None and not deps.catalog.clusters[req.cluster].gateway:
        raise InvalidRequest(
            f"cluster '{req.cluster}' gives access with an EKS access entry, which binds the role and every "
            "one of its sessions: a grant there cannot be bound to one session. Omit 'session' (or ask on "
            "a cluster whose access_mode is gateway)",
            code="session_not_supported",
            field="session",
        )


def decide(deps: Deps, req: AccessRequest) -> tuple[tuple[str, ...], Decision]:
    """Validate ``req`` and ask policy; raises InvalidRequest for bad input (nothing written)."""
    namespaces = _namespaces(deps, req)
    _check_duration(deps, req.duration)
    _check_session(deps, req)
    questions = [
        AccessQuestion(req.requester, req.cluster, req.scope, ns, req.duration) for ns in (namespaces or ("",))
    ]
    assert deps.policies is not None, "a function that decides requests is built with its policies"
    decision = deps.policies.decide_all(questions)
    if decision.outcome == "too_long":
        raise InvalidRequest(decision.reason, code="duration_exceeds_maximum", field="duration")
    return namespaces, decision


def check_reason(reason: str) -> None:
    """After the cluster, scope, namespace and duration (the most useful error wins), before
    anything is written; a policy denial with a one-letter reason is still bad input first."""
    short = why_reason_is_short(reason)
    if short:
        raise InvalidRequest(short, code="reason_too_short", field="reason")
