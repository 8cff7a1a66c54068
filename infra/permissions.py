"""Least privilege, in one file: the IAM statements of each function role.

Everything here is derived from the code it authorises, so the two cannot drift: the item key
prefixes and index names from ``lambdas/adapters/table.py``, schedule names from
``lambdas/adapters/scheduler.py``, the managed tag and group prefix from
``lambdas/domain/catalog.py``, and the clusters, namespaces, access policies and principals from
the validated configuration. What each function may do is a :class:`Needs`, read from its code
paths in ``lambdas/logic`` (the comment above each one says which).

Condition keys used (Service Authorization Reference, Amazon EKS and Amazon DynamoDB):
``eks:accessEntryType``, ``eks:principalArn``, ``eks:kubernetesGroups``, ``eks:username``
(CreateAccessEntry only: UpdateAccessEntry has no condition key, so no role may call it),
``eks:policyArn``, ``eks:accessScope``, ``eks:namespaces`` (AssociateAccessPolicy),
``aws:ResourceTag`` on access entries, ``aws:RequestTag`` and ``aws:TagKeys`` (CreateAccessEntry,
TagResource); ``dynamodb:LeadingKeys`` and ``dynamodb:EnclosingOperation`` (DynamoDB item actions,
also inside TransactWriteItems; Query on the table). ``tests/infra/test_iam_reference.py`` checks
every statement against the Service Authorization Reference data shipped in parliament.
Resource types: ``states:StartExecution`` takes the state machine (its dependent action
``states:DescribeExecution`` an execution of it); ``states:SendTaskSuccess`` lists no resource
type, so it can only be granted on ``*`` (the task token is the capability).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from eks_jit.server.adapters.scheduler import schedule_name
from eks_jit.server.adapters.table import (
    ACCESS_PREFIX,
    COMMAND_PREFIX,
    GRANT_PREFIX,
    GSI1,
    GSI2,
    IDEMPOTENCY_PREFIX,
    LEASE_PREFIX,
    SIDE_PREFIX,
)
from eks_jit.server.domain.catalog import GROUP_PREFIX, MANAGED_TAG, Catalog, Cluster, Level, access_policy_arn
from eks_jit.server.domain.identity import entry_identity

GRANT_ITEMS = GRANT_PREFIX + "*"  # grants and their append-only events: only inside transactions
ACCESS_ITEMS = ACCESS_PREFIX + "*"  # each principal's active-grant index: only inside transactions
LEASE_ITEMS = LEASE_PREFIX + "*"  # reconcile leases: conditional update to take, conditional put by owner to release
SIDE_ITEMS = SIDE_PREFIX + "*"  # the workflow's private records: put and read, never deleted
IDEMPOTENCY_ITEMS = IDEMPOTENCY_PREFIX + "*"  # first answers to Idempotency-Keys: the api function's only
COMMAND_ITEMS = COMMAND_PREFIX + "*"  # the gateway's session log: put once by the gateway, read by the api
SCHEDULES = schedule_name("") + "*"
Conditions = dict[str, dict[str, Any]]
MANAGED_ENTRY = {f"aws:ResourceTag/{MANAGED_TAG}": "true"}
MANAGED_TAG_ONLY: Conditions = {
    "StringEquals": {f"aws:RequestTag/{MANAGED_TAG}": "true"},
    "ForAllValues:StringEquals": {"aws:TagKeys": [MANAGED_TAG]},
}
EKS_JIT_GROUPS: Conditions = {"ForAllValues:StringLike": {"eks:kubernetesGroups": [f"{GROUP_PREFIX}:*"]}}
# dynamodb:EnclosingOperation is single-valued (String): a plain operator, not a set operator.
IN_TRANSACTION: Conditions = {"StringEquals": {"dynamodb:EnclosingOperation": "TransactWriteItems"}}


def only_items(*patterns: str) -> Conditions:
    """Every item key of the request matches one of ``patterns``. ``ForAllValues`` alone is also
    true for a request with no key at all, hence the ``Null`` guard."""
    return {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }


class Topic(StrEnum):
    """The SNS topics functions publish to (``lambdas/adapters/sns.py``)."""

    APPROVALS = "Approvals"  # ask(): one message per approver, carrying their own signed link
    OUTCOMES = "Outcomes"  # outcome(): every status change, for other tools


@dataclass(frozen=True)
class EncryptedTopic:
    topic_arn: str
    key_arn: str  # the topic's own KMS key: publishers need it too


@dataclass(frozen=True)
class Needs:
    """What one function does, read from its code paths in ``lambdas/logic``."""

    # activate / end / reconcile: the active-grant index, reconcile leases, access entries,
    # revocation schedules (lifecycle.activate, lifecycle.end, reconciler.reconcile)
    reconciles: bool = False
    writes_grants: bool = True  # GRANT# items (grant + event), in transactions: every state change or note
    query_table: bool = False  # a grant's events (GET /v1/grants/{id})
    query_indexes: tuple[str, ...] = ()  # by status (gsi1) / by requester (gsi2)
    cancel_schedules: bool = False  # end() of a revoke or a failed activation deletes the schedule
    list_access_entries: bool = False  # the sweeper looks for managed entries it has no record of
    writes_side_records: bool = False  # SIDE#: the task token, the chat message ref, used link nonces
    reads_side_records: bool = False  # SIDE#: the task token (conclude), used link nonces (open_link)
    starts_workflow: bool = False  # approvals.start: one execution per pending grant
    resumes_workflow: bool = False  # approvals.conclude: SendTaskSuccess with the stored task token
    publishes: tuple[Topic, ...] = ()  # lifecycle.commit -> outcomes; approvals.notify -> approvals
    uses_link_key: bool = False  # approvals.link_for (sign) / open_link (verify)
    # Slack, when enabled: the secret (bot token, signing secret) and the chat message ref (SIDE#)
    chats: bool = False
    # activity reports (logic/activity.py): DescribeCluster (is audit logging on?) and the cluster's
    # control-plane log group; the reports are SIDE# records
    reads_audit_log: bool = False
    # Idempotency-Key records (lambdas/adapters/idempotency.py, powertools): a conditional put when a
    # keyed request starts, a get when the put's condition fails, an update with the answer, a delete
    # when the request failed (nothing kept, the key is free again)
    keeps_idempotency_records: bool = False
    # the session log (lambdas/adapters/session_log.py): GET /v1/grants/{id}/session reads a grant's
    # COMMAND# partition, the audit counts it (Query with Select=COUNT); never writes one
    reads_session_log: bool = False


# api: request and extend (create, activate; their Idempotency-Key records), list, get (events), early
# revoke (cancel schedule); decisions from the API, links and Slack (commit, conclude: task token and
# chat message, resume, activate); approval links (link key, used-nonce records); Slack signatures;
# start the workflow; read a grant's session log and count it for the audit (COMMAND#, Query only).
API = Needs(
    reconciles=True,
    keeps_idempotency_records=True,
    reads_session_log=True,
    query_table=True,
    query_indexes=(GSI1, GSI2),
    cancel_schedules=True,
    writes_side_records=True,
    reads_side_records=True,
    reads_audit_log=True,
    starts_workflow=True,
    resumes_workflow=True,
    publishes=(Topic.OUTCOMES,),
    uses_link_key=True,
    chats=True,
)
# revoke: on_schedule -> get, maybe reschedule, expire (schedule deleted by Scheduler itself), end the
# grant's extensions (a get of each id in extended_by), reconcile
REVOKE = Needs(reconciles=True, publishes=(Topic.OUTCOMES,))
# sweeper: by_status and managed_principals (gsi1), expire/fail/activate, reconcile everything, write
# the activity reports of grants closed a while ago (audit log read, SIDE# records)
SWEEPER = Needs(
    reconciles=True,
    query_indexes=(GSI1,),
    cancel_schedules=True,
    list_access_entries=True,
    publishes=(Topic.OUTCOMES,),
    writes_side_records=True,
    reads_side_records=True,
    reads_audit_log=True,
)
# notify (NotifyApprovers step): read the grant, sign each approver's link, publish one ask per
# approver, post to Slack (the chat message ref is a SIDE# record). It writes no grant item: the
# next step (workflow, WaitForDecision) records who was told, so notify's role cannot forge a
# grant. Never EKS, never Scheduler, never resumes an execution.
NOTIFY = Needs(
    writes_grants=False,
    writes_side_records=True,
    publishes=(Topic.APPROVALS,),
    uses_link_key=True,
    chats=True,
)
# workflow steps await / activate / expire_request / fail: keep the task token (SIDE#) and record who
# was notified; a request decided before the token was stored is resumed here (conclude, the
# execution's own token); activate (or apply an extension), expire (conclude without resuming:
# chat update only), end as failed (cancel schedule).
WORKFLOW = Needs(
    reconciles=True,
    cancel_schedules=True,
    writes_side_records=True,
    reads_side_records=True,
    resumes_workflow=True,
    publishes=(Topic.OUTCOMES,),
    chats=True,
)
BY_FUNCTION = {"api": API, "revoke": REVOKE, "sweeper": SWEEPER, "notify": NOTIFY, "workflow": WORKFLOW}


def table_statements(table_arn: str, needs: Needs, *, slack: bool) -> list[iam.PolicyStatement]:
    read = [GRANT_ITEMS, ACCESS_ITEMS] if needs.reconciles else [GRANT_ITEMS]
    statements = [
        # get (GRANT#), active_for (ACCESS# index item, then BatchGetItem of its grants)
        iam.PolicyStatement(
            sid="ReadGrants",
            actions=["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            resources=[table_arn],
            conditions=only_items(*read),
        ),
    ]
    if needs.writes_grants:
        # Grants and events are only ever written inside TransactWriteItems (version-conditioned
        # put of the grant + put-if-absent of the event): no bare PutItem on them.
        statements.append(
            iam.PolicyStatement(
                sid="WriteGrantsInTransactions",
                actions=["dynamodb:PutItem"],
                resources=[table_arn],
                conditions={**IN_TRANSACTION, **only_items(GRANT_ITEMS)},
            )
        )
    if needs.reconciles:
        statements += [
            iam.PolicyStatement(
                sid="IndexActiveGrantsInTransactions",
                actions=["dynamodb:UpdateItem"],
                resources=[table_arn],
                conditions={**IN_TRANSACTION, **only_items(ACCESS_ITEMS)},
            ),
            # Reconcile leases: taken by a conditional update (which keeps the generation the last
            # release recorded), released by a conditional put recording the generation it
            # applied (lambdas/logic/reconciler.py); nothing deletes a lease, the table's TTL reaps it.
            iam.PolicyStatement(
                sid="ReconcileLeases",
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[table_arn],
                conditions=only_items(LEASE_ITEMS),
            ),
        ]
    if needs.writes_side_records:
        # Side records are put (the link nonce put-if-absent) and never deleted: used nonces stay.
        statements.append(
            iam.PolicyStatement(
                sid="WriteSideRecords",
                actions=["dynamodb:PutItem"],
                resources=[table_arn],
                conditions=only_items(SIDE_ITEMS),
            )
        )
    if needs.reads_side_records or (needs.chats and slack):
        statements.append(
            iam.PolicyStatement(
                sid="ReadSideRecords",
                actions=["dynamodb:GetItem"],
                resources=[table_arn],
                conditions=only_items(SIDE_ITEMS),
            )
        )
    if needs.keeps_idempotency_records:
        # Their own partitions only: a record is never a grant, an event, an index or a side record, so
        # these four actions cannot touch what the grant table records (GRANT# stays transaction-only).
        statements.append(
            iam.PolicyStatement(
                sid="IdempotencyRecords",
                actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[table_arn],
                conditions=only_items(IDEMPOTENCY_ITEMS),
            )
        )
    if needs.query_table:  # a grant's events: GRANT# partitions only, never SIDE# (task tokens, link nonces)
        statements.append(
            iam.PolicyStatement(
                sid="QueryGrantEvents",
                actions=["dynamodb:Query"],
                resources=[table_arn],
                conditions=only_items(GRANT_ITEMS),
            )
        )
    if needs.reads_session_log:  # a grant's commands: COMMAND# partitions only, and only Query
        statements.append(
            iam.PolicyStatement(
                sid="QuerySessionLogs",
                actions=["dynamodb:Query"],
                resources=[table_arn],
                conditions=only_items(COMMAND_ITEMS),
            )
        )
    if needs.query_indexes:
        # Side records, leases, events and commands carry no index key, so the indexes hold only grants (and,
        # in gsi1, the access index items): a Query there cannot reach a SIDE# item.
        statements.append(
            iam.PolicyStatement(
                sid="QueryGrantIndexes",
                actions=["dynamodb:Query"],
                resources=[f"{table_arn}/index/{i}" for i in needs.query_indexes],
            )
        )
    return statements


# How cdk-nag renders the pseudo parameters in the resource of a finding.
NAG_PARTITION, NAG_REGION, NAG_ACCOUNT = "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"


def schedule_arn_pattern(
    group: str, partition: str = Aws.PARTITION, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID
) -> str:
    return f"arn:{partition}:scheduler:{region}:{account}:schedule/{group}/{SCHEDULES}"


def scheduling_statements(group: str, scheduler_role_arn: str, needs: Needs) -> list[iam.PolicyStatement]:
    if not needs.reconciles:
        return []
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


def access_entry_arns(name: str, cluster: Cluster, principal: str, partition: str = Aws.PARTITION) -> str:
    """The access-entry ARNs of ``principal`` on a cluster (Service Authorization Reference:
    ``access-entry/${ClusterName}/${IamIdentityType}/${IamIdentityAccountID}/${IamIdentityName}/${UUID}``);
    only the UUID, assigned by EKS at creation, is a wildcard."""
    kind, account, identity = entry_identity(principal)
    return f"arn:{partition}:eks:{cluster.region}:{cluster.account}:access-entry/{name}/{kind}/{account}/{identity}/*"


def registered_entry_arns(catalog: Catalog, name: str, cluster: Cluster, partition: str = Aws.PARTITION) -> list[str]:
    return sorted({access_entry_arns(name, cluster, p.arn, partition) for p in catalog.principals})


def _policies(catalog: Catalog, level: Level) -> list[str]:
    """The access policies the catalog grants at ``level``, in the deployment's partition (IAM compares
    ``eks:policyArn`` with the ARN EKS is sent: the cluster's partition, which is the stack's)."""
    names = {arn for scope in catalog.scopes.values() if scope.level is level for arn in scope.access_policies}
    return [access_policy_arn(arn, Aws.PARTITION) for arn in sorted(names)]


def eks_statements(catalog: Catalog, clusters: Mapping[str, Cluster], needs: Needs) -> list[iam.PolicyStatement]:
    """Access-entry management on exactly ``clusters``, for eks-jit's own entries of registered
    principals only.

    Every entry action names the entry ARNs of the registered principals, never another entry
    of the cluster (the creator's, a node role's, anyone's): reads too, so the sweeper looks only
    at registered principals. Every change needs the entry to carry the managed tag; creation must
    set it, with eks-jit's groups and no username (EKS's default). Groups and usernames are only
    ever set by CreateAccessEntry: it is the one action whose condition keys cover them, so no
    role may call UpdateAccessEntry (the reconciler deletes and re-creates an entry instead). An
    access policy can only be associated if the catalog grants it, at the level the catalog grants
    it, in namespaces registered for that cluster.
    """
    if not clusters:
        return []
    clusters = dict(sorted(clusters.items()))
    cluster_arns = [cluster_arn(n, c) for n, c in clusters.items()]
    statements = []
    if needs.list_access_entries:
        statements.append(
            iam.PolicyStatement(sid="ListAccessEntries", actions=["eks:ListAccessEntries"], resources=cluster_arns)
        )
    principals = sorted(p.arn for p in catalog.principals)
    if not principals:  # no registered principal: nobody can be given an entry
        return statements
    entry_arns = [arn for n, c in clusters.items() for arn in registered_entry_arns(catalog, n, c)]
    statements += [
        iam.PolicyStatement(
            sid="ReadAccessEntries",
            actions=["eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies"],
            resources=entry_arns,
        ),
        iam.PolicyStatement(
            sid="CreateManagedAccessEntries",
            actions=["eks:CreateAccessEntry"],
            resources=cluster_arns,
            conditions={
                "StringEquals": {"eks:accessEntryType": "STANDARD", **MANAGED_TAG_ONLY["StringEquals"]},
                "ForAllValues:StringEquals": MANAGED_TAG_ONLY["ForAllValues:StringEquals"],
                "ForAllValues:StringLike": EKS_JIT_GROUPS["ForAllValues:StringLike"],
                "ArnEquals": {"eks:principalArn": principals},
                # no username in the request: EKS's default, which no RoleBinding of someone else names
                "Null": {"eks:username": "true"},
            },
        ),
        # CreateAccessEntry with tags may also be authorised as TagResource (the reference does not
        # say on which resource): the managed tag, nothing else, on the registered principals'
        # entries, or the cluster (a cluster tag is not a condition of anything here).
        iam.PolicyStatement(
            sid="TagManagedAccessEntries",
            actions=["eks:TagResource"],
            resources=[*cluster_arns, *entry_arns],
            conditions=MANAGED_TAG_ONLY,
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
        by_namespaces[tuple(sorted(cluster.namespaces))] += registered_entry_arns(catalog, name, cluster)
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


def audit_log_statements(clusters: Mapping[str, Cluster], needs: Needs) -> list[iam.PolicyStatement]:
    """Activity reports: whether audit logging is on, and the cluster's control-plane log group."""
    if not (needs.reads_audit_log and clusters):
        return []
    clusters = dict(sorted(clusters.items()))
    return [
        iam.PolicyStatement(
            sid="DescribeClusterLogging",
            actions=["eks:DescribeCluster"],
            resources=[cluster_arn(n, c) for n, c in clusters.items()],
        ),
        iam.PolicyStatement(
            sid="ReadAuditLogs",
            actions=["logs:FilterLogEvents"],
            resources=[audit_log_group_arn(n, c, Aws.PARTITION) for n, c in clusters.items()],
        ),
    ]


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


def state_machine_arn(
    name: str, partition: str = Aws.PARTITION, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID
) -> str:
    return f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"


def execution_arn_pattern(
    state_machine: str, partition: str = Aws.PARTITION, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID
) -> str:
    """Executions are named after their grant (``lambdas/adapters/stepfunctions.py``)."""
    return f"arn:{partition}:states:{region}:{account}:execution:{state_machine}:*"


def workflow_statements(state_machine: str, needs: Needs) -> list[iam.PolicyStatement]:
    statements = []
    if needs.starts_workflow:
        statements += [
            iam.PolicyStatement(
                sid="StartApprovalWorkflow",
                actions=["states:StartExecution"],
                resources=[state_machine_arn(state_machine)],
            ),
            # StartExecution's dependent action (Service Authorization Reference): a retried start
            # with the same name and input answers the running execution.
            iam.PolicyStatement(
                sid="DescribeApprovalExecutions",
                actions=["states:DescribeExecution"],
                resources=[execution_arn_pattern(state_machine)],
            ),
        ]
    if needs.resumes_workflow:
        statements.append(
            iam.PolicyStatement(sid="ResumeApprovalWorkflow", actions=["states:SendTaskSuccess"], resources=["*"])
        )
    return statements


def publish_statements(needs: Needs, topics: Mapping[Topic, EncryptedTopic]) -> list[iam.PolicyStatement]:
    statements = []
    for topic in needs.publishes:
        target = topics[topic]
        statements += [
            iam.PolicyStatement(sid=f"Publish{topic.value}", actions=["sns:Publish"], resources=[target.topic_arn]),
            # SSE topics: SNS asks KMS for a data key as the publisher (Amazon SNS key management).
            iam.PolicyStatement(
                sid=f"Encrypt{topic.value}",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[target.key_arn],
            ),
        ]
    return statements


def secret_statements(needs: Needs, link_key: str, slack: str | None) -> list[iam.PolicyStatement]:
    secrets = ([link_key] if needs.uses_link_key else []) + ([slack] if needs.chats and slack else [])
    if not secrets:
        return []
    return [iam.PolicyStatement(sid="ReadSecrets", actions=["secretsmanager:GetSecretValue"], resources=secrets)]


def invoke_statements(function_arns: list[str]) -> list[iam.PolicyStatement]:
    """The approval workflow's own role: its Lambda steps, nothing else."""
    return [iam.PolicyStatement(sid="InvokeWorkflowSteps", actions=["lambda:InvokeFunction"], resources=function_arns)]


@dataclass(frozen=True)
class Targets:
    """What the statements of a function name: the resources of this deployment."""

    table_arn: str
    schedule_group: str
    scheduler_role_arn: str
    state_machine: str  # its name; the ARN is derived (no dependency on the state machine itself)
    topics: Mapping[Topic, EncryptedTopic]
    link_key_secret: str
    slack_secret: str | None  # None when Slack is off


def statements_for(needs: Needs, targets: Targets, catalog: Catalog) -> list[iam.PolicyStatement]:
    """Every statement of one function role."""
    reconciles = needs.reconciles
    return [
        *table_statements(targets.table_arn, needs, slack=targets.slack_secret is not None),
        *scheduling_statements(targets.schedule_group, targets.scheduler_role_arn, needs),
        *(eks_statements(catalog, local_clusters(catalog), needs) if reconciles else []),
        *(assume_role_statements(catalog) if reconciles else []),
        *audit_log_statements(local_clusters(catalog), needs),
        *workflow_statements(targets.state_machine, needs),
        *publish_statements(needs, targets.topics),
        *secret_statements(needs, targets.link_key_secret, targets.slack_secret),
    ]


def gateway_clusters(catalog: Catalog) -> dict[str, Cluster]:
    """The clusters whose grants the data-path gateway enforces (``access_mode: gateway``)."""
    return {name: c for name, c in sorted(catalog.clusters.items()) if c.gateway}


def gateway_statements(table_arn: str, catalog: Catalog) -> list[iam.PolicyStatement]:
    """The data-path gateway's role (``eks_jit.server.handlers.gateway``), read from what it does per
    request: the caller's active grants on the cluster (the ``ACCESS#<cluster>#<principal>`` index item
    with a consistent GetItem, then a BatchGetItem of its ``GRANT#`` items, as
    ``DynamoGrantStore.active_with_generation`` reads them; a GetItem of one ``GRANT#`` to re-check an
    open stream), its recording (a put-if-absent ``COMMAND#<grant id>`` item per request), and each
    gateway cluster's endpoint and CA (DescribeCluster). It reaches the API server with an EKS token it
    presigns itself (GetCallerIdentity needs no permission) and a static access entry. Nothing else: no
    access entry API (its own entry is created by CloudFormation), no UpdateItem, DeleteItem or
    transaction, no event or index write, no Query."""
    clusters = gateway_clusters(catalog)
    if not clusters:
        return []
    index_items = [f"{ACCESS_PREFIX}{name}#*" for name in clusters]  # only the gateway clusters' indexes
    return [
        iam.PolicyStatement(
            sid="ReadActiveGrants",
            actions=["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            resources=[table_arn],
            conditions=only_items(GRANT_ITEMS, *index_items),
        ),
        # IAM cannot require the condition expression: "never overwrites" rests on the adapter's
        # attribute_not_exists, as for events (docs/threat-model.md, F8). The prefix keeps the role
        # away from every grant, event, index, lease, side and idempotency record.
        iam.PolicyStatement(
            sid="RecordCommands",
            actions=["dynamodb:PutItem"],
            resources=[table_arn],
            conditions=only_items(COMMAND_PREFIX + "*"),
        ),
        iam.PolicyStatement(
            sid="DescribeGatewayClusters",
            actions=["eks:DescribeCluster"],
            resources=[cluster_arn(n, c) for n, c in clusters.items()],
        ),
    ]


def hold_statements(hold_route_arn: str) -> list[iam.PolicyStatement]:
    """The gateway's one call to the eks-jit API: ``POST /v1/holds`` on this stage, nothing else (it
    cannot request, approve or revoke a grant; the API refuses that route to every other caller)."""
    return [iam.PolicyStatement(sid="AskForHeldCommands", actions=["execute-api:Invoke"], resources=[hold_route_arn])]


def audit_log_group_arn(name: str, cluster: Cluster, partition: str) -> str:
    """The cluster's control-plane log group as IAM authorises FilterLogEvents on it: with the
    trailing ``:*`` (botocore's logs model, LogGroup.arn); without it every read is AccessDenied."""
    return f"arn:{partition}:logs:{cluster.region}:{cluster.account}:log-group:/aws/eks/{name}/cluster:*"


def accepted_wildcards(
    catalog: Catalog,
    clusters: Mapping[str, Cluster],
    group: str | None,
    needs: Needs,
    state_machine: str | None = None,
) -> dict[str, str]:
    """The wildcard resources of the statements above for ``needs``, as cdk-nag names them, with the
    reason each is as narrow as IAM allows. Only these are acknowledged; any other wildcard fails synth."""
    reasons: dict[str, str] = {}
    if needs.reconciles:
        reasons |= {
            arn: (
                f"Access-entry ARNs end in a UUID that EKS assigns at creation, so they cannot be listed "
                f"in advance. The wildcard covers only the entry of one registered principal on cluster "
                f"{name}, and every change is further conditioned on the eks-jit managed tag, the "
                "catalog's access policies and the cluster's registered namespaces."
            )
            for name, cluster in clusters.items()
            for arn in registered_entry_arns(catalog, name, cluster, NAG_PARTITION)
        }
        if group is not None:
            reasons[schedule_arn_pattern(group, NAG_PARTITION, NAG_REGION, NAG_ACCOUNT)] = (
                f"One-time revocation schedules are created at run time, one per grant "
                f"({SCHEDULES[:-1]}<grant id>); the wildcard covers only those names in eks-jit's own "
                f"schedule group '{group}'."
            )
    if needs.reads_audit_log:
        reasons |= {
            audit_log_group_arn(name, cluster, NAG_PARTITION): (
                f"The ':*' is how IAM names the log group itself for logs:FilterLogEvents (the ARN without it "
                f"never matches); it covers cluster {name}'s control-plane log group and nothing else."
            )
            for name, cluster in clusters.items()
        }
    if needs.starts_workflow and state_machine is not None:
        reasons[execution_arn_pattern(state_machine, NAG_PARTITION, NAG_REGION, NAG_ACCOUNT)] = (
            f"Executions are named after the grant they approve, so their ARNs are only known at run time; "
            f"the wildcard covers only executions of eks-jit's own state machine '{state_machine}', for "
            "DescribeExecution, the dependent action of StartExecution, and nothing else."
        )
    if needs.resumes_workflow:
        reasons["*"] = (
            "states:SendTaskSuccess is the only action on '*' here: the Service Authorization Reference lists "
            "no resource type for it, so no ARN can narrow it. The task token is the capability: it exists "
            "only in eks-jit's private SIDE# records, which only eks-jit's own function roles may read, and "
            "never in logs (the workflow log excludes execution data); resuming an execution only hands it "
            "the decision that the grant table already records."
        )
    return reasons
