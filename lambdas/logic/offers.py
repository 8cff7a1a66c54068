"""What a principal may ask for: the catalog an agent reads before it requests, and the dry run
that answers for one exact request. Both ask the policy set the same way a request does
(``PolicySet.offer`` and ``deciding.decide``): there is no second reading of policy here."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.catalog import AccessMode, Level
from ..domain.grant import Decision
from ..domain.question import AccessQuestion
from .deciding import AccessRequest, check_reason, decide
from .ports import Deps


@dataclass(frozen=True)
class Offer:
    """One (cluster, namespace, scope) and what policy says about it for one principal."""

    cluster: str
    namespace: str | None  # None for a cluster-wide scope
    scope: str
    description: str
    level: Level
    decision: Decision  # at the catalog's shortest window
    longer: Decision | None  # when a longer window is decided otherwise (approvers beyond the auto limit)
    access_mode: AccessMode = AccessMode.ENTRY  # how the cluster gives it: an access entry or the gateway


def offers(deps: Deps, principal: str) -> list[Offer]:
    """Every (cluster, namespace, scope) of the catalog with its decision for ``principal``: denied
    ones too (with the reason), so an agent learns why, not only what. An unregistered principal
    is offered nothing and learns nothing about the registry."""
    catalog = deps.catalog
    if catalog.principal(principal) is None:
        return []
    assert deps.policies is not None, "a function that decides requests is built with its policies"
    shortest = catalog.settings.min_duration
    found = []
    for cluster_name, cluster in sorted(catalog.clusters.items()):
        for scope_name, scope in sorted(catalog.scopes.items()):
            targets = [None] if scope.level is Level.CLUSTER else sorted(cluster.namespaces)
            for namespace in targets:
                question = AccessQuestion(principal, cluster_name, scope_name, namespace or "", shortest)
                first, longer = deps.policies.offer(question)
                found.append(
                    Offer(
                        cluster_name,
                        namespace,
                        scope_name,
                        scope.description,
                        scope.level,
                        first,
                        longer,
                        cluster.access_mode,
                    )
                )
    return found


def dry_run(deps: Deps, req: AccessRequest) -> tuple[tuple[str, ...], Decision]:
    """What ``request_grant`` would decide for ``req``, writing nothing: the same validation in the
    same order (bad input is the same 400), then the decision, a denial included (not raised)."""
    namespaces, decision = decide(deps, req)
    check_reason(req.reason)
    return namespaces, decision
