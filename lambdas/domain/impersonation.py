"""Who the gateway says a grant's request comes from when it forwards it to the API server.

The gateway's own IAM role has one static access entry on a gateway cluster, in the group
:data:`GATEWAY_GROUP`, whose RBAC (rendered by ``eks-jit rbac render``) lets it impersonate
nothing but what this module produces. Each forwarded request impersonates the grant that covers
it: the one user :data:`GRANT_USER` with the groups that grant would have put on an access entry
(``eks-jit:<scope>:<namespace>`` per namespace, or ``eks-jit:<scope>`` cluster-wide), and as extras
the grant's id, the caller and its session (the EKS audit log records an impersonated user's extras,
so it names the grant). One fixed user, not one per grant: RBAC cannot limit ``impersonate`` on users
to a name prefix, so per-grant names would let the gateway's group impersonate *any* user, such as
``system:kube-controller-manager``; with one name its rule lists exactly that name. The cluster's
RBAC bound to those groups and the rendered ValidatingAdmissionPolicies (which match on the group)
stay a second wall behind the gateway's own check. Only the covering grant's groups are sent, never the union of the
caller's grants: two grants together must not allow what neither allows alone. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from .catalog import GROUP_PREFIX, Level, Scope, kubernetes_group
from .grant import Grant

GATEWAY_GROUP = f"{GROUP_PREFIX}:gateway"
GRANT_USER = f"{GROUP_PREFIX}:grant"
EXTRA_GRANT = "eks-jit.io/grant-id"
EXTRA_PRINCIPAL = "eks-jit.io/principal"
EXTRA_SESSION = "eks-jit.io/session"
EXTRAS = (EXTRA_GRANT, EXTRA_PRINCIPAL, EXTRA_SESSION)
CALLER_HEADERS = ("impersonate-user", "impersonate-group", "impersonate-uid")
"""A caller sending any of these (or an ``Impersonate-Extra-*``) is refused: only the gateway impersonates."""


@dataclass(frozen=True)
class Impersonation:
    user: str
    groups: tuple[str, ...]
    extra: tuple[tuple[str, str], ...]

    def headers(self) -> list[tuple[str, str]]:
        """The HTTP headers, in order (``Impersonate-Group`` once per group; extra keys percent-encoded
        as Kubernetes requires, which decodes keys only: values go as they are)."""
        out = [("Impersonate-User", self.user)]
        out += [("Impersonate-Group", g) for g in self.groups]
        out += [(f"Impersonate-Extra-{quote(k, safe='')}", v) for k, v in self.extra]
        return out


def groups_for(grant: Grant, scope: Scope) -> tuple[str, ...]:
    if scope.level is Level.CLUSTER:
        return (kubernetes_group(grant.scope, None),)
    return tuple(kubernetes_group(grant.scope, ns) for ns in grant.namespaces)


def impersonation_for(grant: Grant, scope: Scope, session: str | None) -> Impersonation:
    extra = [(EXTRA_GRANT, grant.id), (EXTRA_PRINCIPAL, grant.requester)]
    if session:
        extra.append((EXTRA_SESSION, session))
    return Impersonation(GRANT_USER, groups_for(grant, scope), tuple(extra))


def is_caller_impersonation(header_name: str) -> bool:
    name = header_name.lower()
    return name in CALLER_HEADERS or name.startswith("impersonate-extra-")
