"""EKS access entries: read one principal's entry, apply changes, list principals.

Only entries tagged ``eks-jit:managed=true`` are reported as managed; the reconciler never
changes any other. For a cluster in another account, the adapter assumes the cluster's
role with a session name that carries the grant id, so CloudTrail in that account shows
which grant caused each change.

It never calls UpdateAccessEntry: groups change by delete + create (the reconciler's
``recreate``), because IAM checks ``eks:kubernetesGroups`` on CreateAccessEntry only. Should it
ever call it, it must send both ``kubernetesGroups`` and ``username``: EKS resets a field the
request omits (terraform-provider-aws#36484; the emulation does the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..domain.access import Access, Entry, PolicyScope
from ..domain.catalog import MANAGED_TAG, Cluster, access_policy_arn, canonical_access_policy, gateway_server
from ..domain.errors import AccessApplyError, PrincipalRefused, UnmanagedAccessEntry
from ..domain.identity import default_username
from .aws import error_code, transient_errors

PATH_RULE = (
    "EKS takes only an IAM role or user that exists at exactly this ARN, path included: register the ARN "
    "that `aws iam get-role` (or get-user) shows. IAM Identity Center roles live under "
    "/aws-reserved/sso.amazonaws.com/ (often followed by a region), a path their session ARNs do not show"
)

ClientFactory = Callable[[str, Cluster, str], Any]
"""(cluster name, cluster, session) -> a boto3 client for that cluster's account and region."""


def session_name(session: str) -> str:
    """A valid STS role session name (``[\\w+=,.@-]``, at most 64) carrying ``session``."""
    return re.sub(r"[^\w+=,.@-]", "-", f"eks-jit-{session}")[:64]


def default_clients(endpoint_url: str | None = None, service: str = "eks") -> ClientFactory:
    """Clients of ``service`` for a cluster: in its own region, and for a cluster in another
    account through its role, with a session name that carries ``session`` (a grant id)."""
    from .aws import client, client_with

    def make(name: str, cluster: Cluster, session: str) -> Any:
        if cluster.role_arn is None:
            return client(service, cluster.region, endpoint_url)
        with transient_errors(f"assume role for {name}"):
            creds = client("sts", cluster.region, endpoint_url).assume_role(
                RoleArn=cluster.role_arn, RoleSessionName=session_name(session)
            )["Credentials"]
        return client_with(service, cluster.region, endpoint_url, creds)

    return make


class EksAccessEntries:
    def __init__(self, clusters: Mapping[str, Cluster], clients: ClientFactory) -> None:
        self._clusters = clusters
        self._clients = clients

    def cluster(self, name: str, *, session: str) -> ClusterEntries:
        cluster = self._clusters[name]
        return ClusterEntries(name, self._clients(name, cluster, session), partition=cluster.partition)


class ClusterEntries:
    """One cluster's entries. Access policies cross this boundary translated: EKS names them in the
    cluster's partition (``arn:aws-cn:eks::aws:cluster-access-policy/...``), the reconciler in the
    catalog's one spelling, so its desired and actual states compare whatever the partition."""

    def __init__(self, name: str, eks: Any, *, partition: str = "aws") -> None:
        self._name = name
        self._eks = eks
        self._partition = partition

    def _call(self, what: str, principal: str, op: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        try:
            with transient_errors(f"{op} on {self._name}"):
                return getattr(self._eks, op)(clusterName=self._name, **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if missing_ok and code == "ResourceNotFoundException":
                return None
            if code == "ResourceInUseException" and op == "create_access_entry":
                raise UnmanagedAccessEntry(f"an access entry for {principal} appeared on {self._name}") from exc
            if code == "InvalidParameterException" and op == "create_access_entry":
                # eks-jit sets every other parameter (type STANDARD, catalog-made groups, its tag):
                # the principal is the one that comes from outside.
                message = exc.response.get("Error", {}).get("Message", "")
                raise PrincipalRefused(
                    f"EKS refused principal {principal} on {self._name} ({code}: {message}). {PATH_RULE}"
                ) from exc
            raise AccessApplyError(f"{what} for {principal} on {self._name}: {code}: {exc}") from exc

    def read(self, principal: str, *, with_policies: bool = True) -> Entry | None:
        try:
            with transient_errors(f"describe_access_entry on {self._name}"):
                entry = self._eks.describe_access_entry(clusterName=self._name, principalArn=principal)["accessEntry"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise AccessApplyError(
                f"reading the access entry of {principal} on {self._name}: {error_code(exc)}"
            ) from exc
        managed = entry.get("tags", {}).get(MANAGED_TAG) == "true"
        policies: dict[str, PolicyScope] = {}
        if managed and with_policies:
            pages = self._eks.get_paginator("list_associated_access_policies").paginate(
                clusterName=self._name, principalArn=principal
            )
            with transient_errors(f"list_associated_access_policies on {self._name}"):
                for page in pages:
                    for assoc in page["associatedAccessPolicies"]:
                        scope = assoc["accessScope"]
                        policies[canonical_access_policy(assoc["policyArn"])] = (
                            PolicyScope.cluster()
                            if scope["type"] == "cluster"
                            else PolicyScope.of(scope.get("namespaces", []))
                        )
        return Entry(
            managed=managed,
            access=Access(frozenset(entry.get("kubernetesGroups", [])), policies),
            username_is_default=entry.get("username", default_username(principal)) == default_username(principal),
        )

    def create(self, principal: str, groups: frozenset[str]) -> None:
        self._call(
            "creating the access entry",
            principal,
            "create_access_entry",
            principalArn=principal,
            kubernetesGroups=sorted(groups),
            tags={MANAGED_TAG: "true"},
            type="STANDARD",
        )

    def associate(self, principal: str, policy_arn: str, scope: PolicyScope) -> None:
        access_scope: dict[str, Any] = {"type": scope.type}
        if scope.type == "namespace":
            access_scope["namespaces"] = sorted(scope.namespaces)
        self._call(
            "associating an access policy",
            principal,
            "associate_access_policy",
            principalArn=principal,
            policyArn=access_policy_arn(policy_arn, self._partition),
            accessScope=access_scope,
        )

    def disassociate(self, principal: str, policy_arn: str) -> None:
        self._call(
            "disassociating an access policy",
            principal,
            "disassociate_access_policy",
            missing_ok=True,
            principalArn=principal,
            policyArn=access_policy_arn(policy_arn, self._partition),
        )

    def delete(self, principal: str) -> None:
        self._call(
            "deleting the access entry", principal, "delete_access_entry", missing_ok=True, principalArn=principal
        )

    def principals(self) -> list[str]:
        found: list[str] = []
        with transient_errors(f"list_access_entries on {self._name}"):
            for page in self._eks.get_paginator("list_access_entries").paginate(clusterName=self._name):
                found += page["accessEntries"]  # principal ARNs
        return found


class ClusterConnections:
    """How to reach a cluster's API (endpoint, CA data), from DescribeCluster, cached per
    container: an agent gets it with its grant and needs no ``eks:*`` permission of its own.

    A gateway cluster is reached through eks-jit's gateway, never directly: its endpoint is the
    deployment's gateway (``gateway_endpoint``, below the cluster's path: :func:`gateway_server`)
    with the gateway's CA (``gateway_ca``, base64 PEM; empty when its certificate is publicly
    trusted), and EKS is not asked. Without a ``gateway_endpoint`` there is no way to reach it:
    :class:`AccessApplyError` (the grant stands; only its connection is missing)."""

    def __init__(
        self,
        clusters: Mapping[str, Cluster],
        clients: ClientFactory,
        *,
        gateway_endpoint: str = "",
        gateway_ca: str = "",
    ) -> None:
        self._clusters = clusters
        self._clients = clients
        self._gateway_endpoint, self._gateway_ca = gateway_endpoint, gateway_ca
        self._cache: dict[str, dict[str, str]] = {}

    def connection(self, name: str) -> dict[str, str]:
        cluster = self._clusters[name]
        if cluster.gateway:
            if not self._gateway_endpoint:
                raise AccessApplyError(f"cluster {name} is reached through the gateway, and no gateway_endpoint is set")
            return {
                "cluster": name,
                "region": cluster.region,
                "endpoint": gateway_server(self._gateway_endpoint, name),
                "certificate_authority": self._gateway_ca,
                "access_mode": cluster.access_mode.value,
            }
        if name not in self._cache:
            try:
                with transient_errors(f"describe cluster {name}"):
                    described = self._clients(name, cluster, "connection").describe_cluster(name=name)["cluster"]
            except ClientError as exc:
                raise AccessApplyError(f"describing cluster {name}: {error_code(exc)}") from exc
            self._cache[name] = {
                "cluster": name,
                "region": cluster.region,
                "endpoint": str(described.get("endpoint", "")),
                "certificate_authority": str((described.get("certificateAuthority") or {}).get("data", "")),
                "access_mode": cluster.access_mode.value,
            }
        return self._cache[name]
