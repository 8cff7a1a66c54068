"""Least privilege, in one file: the IAM statements of each function role.

Everything here is derived from the code it authorises, so the two cannot drift:
the item key prefixes from ``lambdas/adapters/dynamodb.py``, index names from
``lambdas/adapters/table.py``, schedule names from ``lambdas/adapters/scheduler.py``, the
managed tag and group prefix from ``lambdas/domain/catalog.py``, and the clusters, namespaces,
access policies and principals from the validated configuration.

Condition keys used (Service Authorization Reference, Amazon EKS and Amazon DynamoDB):
``eks:accessEntryType``, ``eks:principalArn``, ``eks:kubernetesGroups`` (CreateAccessEntry,
UpdateAccessEntry), ``eks:policyArn``, ``eks:accessScope``, ``eks:namespaces``
(AssociateAccessPolicy), ``aws:ResourceTag`` on access entries, ``aws:RequestTag`` and
``aws:TagKeys`` (CreateAccessEntry, TagResource); ``dynamodb:LeadingKeys`` and
``dynamodb:EnclosingOperation`` (DynamoDB item actions, also inside TransactWriteItems).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from lambdas.adapters.dynamodb import access_key, grant_key
from lambdas.adapters.scheduler import schedule_name
from lambdas.adapters.table import GSI1, GSI2, PK
from lambdas.domain.catalog import GROUP_PREFIX, MANAGED_TAG, Catalog, Cluster, Level


def _partition_prefix(key: dict[str, dict[str, str]]) -> str:
    return key[PK]["S"].split("#", 1)[0] + "#"


GRANT_ITEMS = _partition_prefix(grant_key("")) + "*"  # grants and their append-only events
ACCESS_ITEMS = _partition_prefix(access_key("", "")) + "*"  # active-grant index and reconcile leases
SCHEDULES = schedule_name("") + "*"
Conditions = dict[str, dict[str, Any]]
MANAGED_ENTRY = {f"aws:ResourceTag/{MANAGED_TAG}": "true"}
MANAGED_TAG_ONLY: Conditions = {
    "StringEquals": {f"aws:RequestTag/{MANAGED_TAG}": "true"},
    "ForAllValues:StringEquals": {"aws:TagKeys": [MANAGED_TAG]},
}
EKS_JIT_GROUPS: Conditions = {"ForAllValues:StringLike": {"eks:kubernetesGroups": [f"{GROUP_PREFIX}:*"]}}
IN_TRANSACTION: Conditions = {"ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": ["TransactWriteItems"]}}


@dataclass(frozen=True)
class Needs:
    """What one function does, read from its code paths in ``lambdas/logic``."""

    query_table: bool = False  # a grant's events (GET /v1/grants/{id})
    query_indexes: tuple[str, ...] = ()  # by status (gsi1) / by requester (gsi2)
    cancel_schedules: bool = False  # end() of a revoke or a failed activation deletes the schedule
    list_access_entries: bool = False  # the sweeper looks for managed entries it has no record of


# api: request (create, activate), list, get (events), early revoke (cancel schedule)
API = Needs(query_table=True, query_indexes=(GSI1, GSI2), cancel_schedules=True)
# revoke: on_schedule -> get, maybe reschedule, expire (schedule deleted by Scheduler itself), reconcile
REVOKE = Needs()
# sweeper: by_status and managed_principals (gsi1), expire/fail/activate, reconcile everything
SWEEPER = Needs(query_indexes=(GSI1,), cancel_schedules=True, list_access_entries=True)


def table_statements(table_arn: str, needs: Needs) -> list[iam.PolicyStatement]:
    statements = [
        iam.PolicyStatement(
            sid="ReadGrants",
            actions=["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            resources=[table_arn],
        ),
        # Grants and events are only ever written inside TransactWriteItems (version-conditioned
        # put of the grant + put-if-absent of the event): no bare PutItem on them.
        iam.PolicyStatement(
            sid="WriteGrantsInTransactions",
            actions=["dynamodb:PutItem"],
            resources=[table_arn],
            conditions={**IN_TRANSACTION, "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [GRANT_ITEMS]}},
        ),
        iam.PolicyStatement(
            sid="IndexActiveGrantsInTransactions",
            actions=["dynamodb:UpdateItem"],
            resources=[table_arn],
            conditions={**IN_TRANSACTION, "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [ACCESS_ITEMS]}},
        ),
        # Reconcile leases: the only direct writes and the only deletes, never on GRANT# items.
        iam.PolicyStatement(
            sid="ReconcileLeases",
            actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
            resources=[table_arn],
            conditions={
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [ACCESS_ITEMS]},
                "Null": {"dynamodb:LeadingKeys": "false"},
            },
        ),
    ]
    queried = ([table_arn] if needs.query_table else []) + [f"{table_arn}/index/{i}" for i in needs.query_indexes]
    if queried:
        statements.append(iam.PolicyStatement(sid="QueryGrants", actions=["dynamodb:Query"], resources=queried))
    return statements


# How cdk-nag renders the pseudo parameters in the resource of a finding.
NAG_PARTITION, NAG_REGION, NAG_ACCOUNT = "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"


def schedule_arn_pattern(
    group: str, partition: str = Aws.PARTITION, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID
) -> str:
    return f"arn:{partition}:scheduler:{region}:{account}:schedule/{group}/{SCHEDULES}"


def scheduling_statements(group: str, scheduler_role_arn: str, needs: Needs) -> list[iam.PolicyStatement]:
    actions = ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"]
    if needs.cancel_schedules:
        actions.append("scheduler:DeleteSchedule")
    return [
        iam.PolicyStatement(sid="RevocationSchedules", actions=actions, resources=[schedule_arn_pattern(group)]),
        iam.PolicyStatement(
            sid="PassSchedulerRole",
            actions=["iam:PassRole"],
            resources=[scheduler_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        ),
    ]


def cluster_arn(name: str, cluster: Cluster, partition: str = Aws.PARTITION) -> str:
    return f"arn:{partition}:eks:{cluster.region}:{cluster.account}:cluster/{name}"


def access_entry_arns(name: str, cluster: Cluster, partition: str = Aws.PARTITION) -> str:
    """Access-entry ARNs end in ``<identity type>/<account>/<name>/<uuid>``, the UUID assigned by EKS."""
    return f"arn:{partition}:eks:{cluster.region}:{cluster.account}:access-entry/{name}/*"


def _policies(catalog: Catalog, level: Level) -> list[str]:
    return sorted({arn for scope in catalog.scopes.values() if scope.level is level for arn in scope.access_policies})


def eks_statements(catalog: Catalog, clusters: Mapping[str, Cluster], needs: Needs) -> list[iam.PolicyStatement]:
    """Access-entry management on exactly ``clusters``, for eks-jit's own entries only.

    Reads are open on the cluster's entries (the reconciler must see an unmanaged entry to
    leave it alone); every change needs the entry to carry the managed tag, creation must set
    it, groups are eks-jit's own, and an access policy can only be associated if the catalog
    grants it, at the level the catalog grants it, in namespaces registered for that cluster.
    """
    if not clusters:
        return []
    clusters = dict(sorted(clusters.items()))
    cluster_arns = [cluster_arn(n, c) for n, c in clusters.items()]
    entry_arns = [access_entry_arns(n, c) for n, c in clusters.items()]
    statements = [
        iam.PolicyStatement(
            sid="ReadAccessEntries",
            actions=["eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies"],
            resources=entry_arns,
        ),
    ]
    if needs.list_access_entries:
        statements.append(
            iam.PolicyStatement(sid="ListAccessEntries", actions=["eks:ListAccessEntries"], resources=cluster_arns)
        )
    principals = sorted(p.arn for p in catalog.principals)
    if principals:  # no registered principal: nobody can be given an entry
        statements.append(
            iam.PolicyStatement(
                sid="CreateManagedAccessEntries",
                actions=["eks:CreateAccessEntry"],
                resources=cluster_arns,
                conditions={
                    "StringEquals": {"eks:accessEntryType": "STANDARD", **MANAGED_TAG_ONLY["StringEquals"]},
                    "ForAllValues:StringEquals": MANAGED_TAG_ONLY["ForAllValues:StringEquals"],
                    "ForAllValues:StringLike": EKS_JIT_GROUPS["ForAllValues:StringLike"],
                    "ArnEquals": {"eks:principalArn": principals},
                },
            )
        )
    statements += [
        # CreateAccessEntry with tags is also authorised as TagResource: the managed tag, nothing else.
        iam.PolicyStatement(
            sid="TagManagedAccessEntries",
            actions=["eks:TagResource"],
            resources=[*cluster_arns, *entry_arns],
            conditions=MANAGED_TAG_ONLY,
        ),
        iam.PolicyStatement(
            sid="SetGroupsOfManagedEntries",
            actions=["eks:UpdateAccessEntry"],
            resources=entry_arns,
            conditions={"StringEquals": MANAGED_ENTRY, **EKS_JIT_GROUPS},
        ),
        iam.PolicyStatement(
            sid="RemoveManagedAccess",
            actions=["eks:DeleteAccessEntry", "eks:DisassociateAccessPolicy"],
            resources=entry_arns,
            conditions={"StringEquals": MANAGED_ENTRY},
        ),
    ]
    namespaced = _policies(catalog, Level.NAMESPACE)
    by_namespaces: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name, cluster in clusters.items():
        by_namespaces[tuple(sorted(cluster.namespaces))].append(access_entry_arns(name, cluster))
    for index, (namespaces, arns) in enumerate(sorted(by_namespaces.items())):
        if namespaced:
            statements.append(
                iam.PolicyStatement(
                    sid=f"AssociateNamespacedPolicies{index}",
                    actions=["eks:AssociateAccessPolicy"],
                    resources=arns,
                    conditions={
                        "StringEquals": {**MANAGED_ENTRY, "eks:accessScope": "namespace"},
                        "ArnEquals": {"eks:policyArn": namespaced},
                        "ForAllValues:StringEquals": {"eks:namespaces": list(namespaces)},
                    },
                )
            )
    cluster_wide = _policies(catalog, Level.CLUSTER)
    if cluster_wide:
        statements.append(
            iam.PolicyStatement(
                sid="AssociateClusterPolicies",
                actions=["eks:AssociateAccessPolicy"],
                resources=entry_arns,
                conditions={
                    "StringEquals": {**MANAGED_ENTRY, "eks:accessScope": "cluster"},
                    "ArnEquals": {"eks:policyArn": cluster_wide},
                },
            )
        )
    return statements


def local_clusters(catalog: Catalog) -> dict[str, Cluster]:
    """Clusters the functions reach with their own role (no role_arn)."""
    return {name: c for name, c in catalog.clusters.items() if c.role_arn is None}


def assume_role_statements(catalog: Catalog) -> list[iam.PolicyStatement]:
    """Clusters in other accounts are reached only through their EksJitClusterAccessStack role."""
    roles = sorted({c.role_arn for c in catalog.clusters.values() if c.role_arn})
    if not roles:
        return []
    return [iam.PolicyStatement(sid="AssumeClusterAccessRoles", actions=["sts:AssumeRole"], resources=roles)]


def grant(role: iam.IRole, statements: list[iam.PolicyStatement]) -> None:
    for statement in statements:
        role.add_to_principal_policy(statement)


def accepted_wildcards(clusters: Mapping[str, Cluster], group: str | None) -> dict[str, str]:
    """The wildcard resources of the statements above, as cdk-nag names them, with the reason each
    is as narrow as IAM allows. Only these are acknowledged; any other wildcard fails synth."""
    reasons = {
        access_entry_arns(name, cluster, NAG_PARTITION): (
            f"Access-entry ARNs end in a principal id and a UUID that EKS assigns at creation, so they "
            f"cannot be listed in advance. The wildcard covers only the entries of cluster {name}, and "
            "every change is further conditioned on the eks-jit managed tag, eks-jit groups, the "
            "catalog's access policies and the cluster's registered namespaces."
        )
        for name, cluster in clusters.items()
    }
    if group is not None:
        reasons[schedule_arn_pattern(group, NAG_PARTITION, NAG_REGION, NAG_ACCOUNT)] = (
            f"One-time revocation schedules are created at run time, one per grant ({SCHEDULES[:-1]}<grant id>); "
            f"the wildcard covers only those names in eks-jit's own schedule group '{group}'."
        )
    return reasons
