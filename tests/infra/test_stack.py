"""What the synthesized templates promise: signed routes, a durable table shaped like the code's,
one least-privilege role per function, revocation plumbing and alarms."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from infra.constructs.api import ROUTES
from lambdas.adapters.scheduler import schedule_name
from lambdas.adapters.table import INDEXES, TTL_ATTRIBUTE, create_table_kwargs
from lambdas.domain.catalog import ACCESS_POLICY_PREFIX, MANAGED_TAG, Level
from tests.infra.conftest import ACCOUNT, ORG, OTHER_ACCOUNT, SHARED_ROLE, Synth, listed, resolve

pytestmark = pytest.mark.infra
STACK = "EksJit"
CLUSTER_STACK = "EksJitClusterAccess-shared-eks"
HANDLERS = {
    "api": "lambdas.handlers.api.handler",
    "revoke": "lambdas.handlers.revoke.handler",
    "sweeper": "lambdas.handlers.sweeper.handler",
}


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    """Function properties by short name (api, revoke, sweeper)."""
    return {
        props["Properties"]["FunctionName"].removeprefix("eks-jit-"): props["Properties"]
        for props in synth.resources(STACK, "AWS::Lambda::Function").values()
    }


def _statements_by_role(synth: Synth, stack: str = STACK) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for policy in synth.resources(stack, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            found[role["Ref"]] += resolve(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _function_statements(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    by_role = _statements_by_role(synth)
    return {name: by_role[props["Role"]["Fn::GetAtt"][0]] for name, props in _functions(synth).items()}


def _logical(synth: Synth, prefix: str, kind: str) -> str:
    (found,) = [k for k in synth.resources(STACK, kind) if k.startswith(prefix)]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    return listed(statement["Action"])


def _allowed(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if s["Effect"] == "Allow" and action in _actions(s)]


def test_every_route_is_signed_with_sigv4(synth: Synth) -> None:
    resources = synth.resources(STACK, "AWS::ApiGateway::Resource")

    def path_of(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the API root
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    methods = synth.resources(STACK, "AWS::ApiGateway::Method").values()
    routes = {(m["Properties"]["HttpMethod"], path_of(m["Properties"]["ResourceId"])) for m in methods}
    assert routes == {(r.method, r.path) for r in ROUTES}
    assert {m["Properties"]["AuthorizationType"] for m in methods} == {"AWS_IAM"}
    assert all("RequestValidatorId" in m["Properties"] for m in methods)

    stage = next(iter(synth.resources(STACK, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["AccessLogSetting"]["Format"].startswith("{")  # JSON access log
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] > 0

    policy = next(iter(synth.resources(STACK, "AWS::ApiGateway::RestApi").values()))["Properties"]["Policy"]
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow and all(s["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG for s in allow)


def test_table_is_durable_and_shaped_like_the_code(synth: Synth) -> None:
    (table,) = synth.resources(STACK, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}

    expected = create_table_kwargs("same-for-moto")
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in props["GlobalSecondaryIndexes"]} == {
        i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in expected["GlobalSecondaryIndexes"]
    }
    assert {i["IndexName"] for i in props["GlobalSecondaryIndexes"]} == set(INDEXES)

    for log_group in synth.resources(STACK, "AWS::Logs::LogGroup").values():
        assert log_group["DeletionPolicy"] == "Retain"
        assert log_group["Properties"]["RetentionInDays"] >= 365


def test_functions_run_the_handlers_with_their_environment(synth: Synth) -> None:
    functions = _functions(synth)
    assert {name: f["Handler"] for name, f in functions.items()} == HANDLERS
    roles = {f["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(roles) == 3  # one role per function
    for name, props in functions.items():
        assert props["Runtime"] == "python3.11" and props["Architectures"] == ["arm64"]
        env = props["Environment"]["Variables"]
        assert env["EKS_JIT_CONFIG"] == "/var/task/eks-jit-config/eks-jit.yaml"
        assert env["EKS_JIT_SCHEDULE_GROUP"] == "eks-jit"
        assert resolve(env["EKS_JIT_REVOKE_TARGET_ARN"]).endswith(":function:eks-jit-revoke")
        assert {"EKS_JIT_TABLE", "EKS_JIT_SCHEDULER_ROLE_ARN", "EKS_JIT_REVOKE_DLQ_ARN"} <= env.keys()
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "EksJit" and env["POWERTOOLS_SERVICE_NAME"] == "eks-jit"
        assert len(props["Layers"]) == 1, name
    assert functions["revoke"]["Timeout"] >= 180  # it may wait ~150 s for expires_at


def test_no_wildcard_resource_on_eks_or_dynamodb_and_deletes_only_leases(synth: Synth) -> None:
    for name, statements in _function_statements(synth).items():
        for statement in statements:
            services = {a.split(":")[0] for a in _actions(statement)}
            if services & {"eks", "dynamodb"}:
                assert "*" not in listed(statement["Resource"]), (name, statement)
                assert all(not a.endswith("*") for a in _actions(statement)), (name, statement)
        deletes = _allowed(statements, "dynamodb:DeleteItem")
        assert deletes, name
        for statement in deletes:
            assert statement["Condition"]["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["ACCESS#*"]}
            assert statement["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}
        for statement in _allowed(statements, "dynamodb:PutItem"):
            keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            in_transaction = statement["Condition"].get("ForAnyValue:StringEquals", {})
            # grants and events (GRANT#) only inside TransactWriteItems; bare puts only on leases
            assert keys == ["ACCESS#*"] or (
                keys == ["GRANT#*"] and in_transaction == {"dynamodb:EnclosingOperation": ["TransactWriteItems"]}
            )


def test_each_function_gets_only_the_table_and_schedule_actions_its_code_uses(synth: Synth) -> None:
    statements = _function_statements(synth)
    table = f"<{_logical(synth, 'StorageGrants', 'AWS::DynamoDB::Table')}.Arn>"

    def queried(name: str) -> set[str]:
        return {
            r.replace(table, "table")
            for s in _allowed(statements[name], "dynamodb:Query")
            for r in listed(s["Resource"])
        }

    assert queried("api") == {"table", "table/index/gsi1", "table/index/gsi2"}
    assert queried("sweeper") == {"table/index/gsi1"}
    assert queried("revoke") == set()
    assert _allowed(statements["revoke"], "scheduler:DeleteSchedule") == []
    assert _allowed(statements["api"], "eks:ListAccessEntries") == []
    assert _allowed(statements["revoke"], "eks:ListAccessEntries") == []
    assert _allowed(statements["sweeper"], "eks:ListAccessEntries")

    pattern = f"arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/eks-jit/{schedule_name('')}*"
    for name, own in statements.items():
        (create,) = _allowed(own, "scheduler:CreateSchedule")
        assert listed(create["Resource"]) == [pattern], name
        (pass_role,) = _allowed(own, "iam:PassRole")
        assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
        assert listed(pass_role["Resource"]) == [
            f"<{_logical(synth, 'RevocationSchedulerRole', 'AWS::IAM::Role')}.Arn>"
        ]


def test_eks_actions_only_on_configured_clusters_and_own_entries(synth: Synth) -> None:
    catalog = synth.deployment.catalog
    local = {n: c for n, c in catalog.clusters.items() if c.role_arn is None}
    allowed = {f"arn:<AWS::Partition>:eks:{c.region}:{c.account}:cluster/{n}" for n, c in local.items()} | {
        f"arn:<AWS::Partition>:eks:{c.region}:{c.account}:access-entry/{n}/*" for n, c in local.items()
    }
    namespaced = {a for s in catalog.scopes.values() if s.level is Level.NAMESPACE for a in s.access_policies}
    for name, statements in _function_statements(synth).items():
        eks = [s for s in statements if any(a.startswith("eks:") for a in _actions(s))]
        assert eks, name
        for statement in eks:
            assert set(listed(statement["Resource"])) <= allowed, (name, statement)
            assert "shared-eks" not in str(statement)  # another account: only through its role
            if any(a in _actions(statement) for a in ("eks:UpdateAccessEntry", "eks:DeleteAccessEntry")):
                assert statement["Condition"]["StringEquals"][f"aws:ResourceTag/{MANAGED_TAG}"] == "true"
        for statement in _allowed(statements, "eks:AssociateAccessPolicy"):
            condition = statement["Condition"]
            assert condition["StringEquals"][f"aws:ResourceTag/{MANAGED_TAG}"] == "true"
            policies = set(condition["ArnEquals"]["eks:policyArn"])
            assert policies and all(p.startswith(ACCESS_POLICY_PREFIX) for p in policies)
            if condition["StringEquals"]["eks:accessScope"] == "namespace":
                assert policies == namespaced
                assert set(condition["ForAllValues:StringEquals"]["eks:namespaces"]) == {"payments", "orders"}
            else:  # cluster-wide only for what a cluster-level scope grants (cluster-view)
                assert policies == {ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy"}
        (create,) = _allowed(statements, "eks:CreateAccessEntry")
        assert set(create["Condition"]["ArnEquals"]["eks:principalArn"]) == {p.arn for p in catalog.principals}
        assert create["Condition"]["ForAllValues:StringLike"] == {"eks:kubernetesGroups": ["eks-jit:*"]}
        (assume,) = _allowed(statements, "sts:AssumeRole")
        assert listed(assume["Resource"]) == [SHARED_ROLE]


def test_scheduler_role_can_only_invoke_the_revoke_function(synth: Synth) -> None:
    roles = synth.resources(STACK, "AWS::IAM::Role")
    schedule_role_id = _logical(synth, "RevocationSchedulerRole", "AWS::IAM::Role")
    trust = roles[schedule_role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    statements = _statements_by_role(synth)[schedule_role_id]
    assert {(s["Action"], str(s["Resource"])) for s in statements} == {
        ("lambda:InvokeFunction", f"<{_logical(synth, 'RevocationRevoke', 'AWS::Lambda::Function')}.Arn>"),
        ("sqs:SendMessage", f"<{_logical(synth, 'RevocationScheduleDeadLetters', 'AWS::SQS::Queue')}.Arn>"),
    }

    (group,) = synth.resources(STACK, "AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == "eks-jit"
    for queue in synth.resources(STACK, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (rule,) = synth.resources(STACK, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0].startswith("RevocationSweeper")


def test_alarms_watch_revocation_the_backstop_and_the_api(synth: Synth) -> None:
    alarms = [a["Properties"] for a in synth.resources(STACK, "AWS::CloudWatch::Alarm").values()]
    watched = {(a.get("Namespace"), a.get("MetricName")) for a in alarms}
    assert {
        ("EksJit", "OverdueGrantsExpired"),
        ("EksJit", "SweeperErrors"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Invocations"),
    } <= watched
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": _logical(synth, "NotificationsTopic", "AWS::SNS::Topic")}]
        if alarm.get("Namespace") == "EksJit":
            assert alarm["Dimensions"] == [{"Name": "service", "Value": "eks-jit"}]
    (topic,) = synth.resources(STACK, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    assert synth.resources(STACK, "AWS::CloudWatch::Dashboard")


def test_cluster_access_stack_trusts_only_the_control_plane_functions(synth: Synth) -> None:
    (role,) = synth.resources(CLUSTER_STACK, "AWS::IAM::Role").values()
    props = role["Properties"]
    assert (props["Path"], props["RoleName"]) == ("/platform/", "eks-jit-cluster-access")
    (trust,) = resolve(props["AssumeRolePolicyDocument"]["Statement"])
    assert trust["Principal"] == {"AWS": f"arn:<AWS::Partition>:iam::{ACCOUNT}:root"}
    assert sorted(trust["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == [
        f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/eks-jit-{name}-eu-west-1" for name in ("api", "revoke", "sweeper")
    ]
    assert trust["Condition"]["StringLike"] == {"sts:RoleSessionName": "eks-jit-*"}
    (statements,) = _statements_by_role(synth, CLUSTER_STACK).values()
    for statement in statements:
        for resource in listed(statement["Resource"]):
            assert resource.startswith(f"arn:<AWS::Partition>:eks:eu-central-1:{OTHER_ACCOUNT}:")
            assert resource.endswith(("cluster/shared-eks", "access-entry/shared-eks/*"))
    (namespaced,) = [
        s
        for s in _allowed(statements, "eks:AssociateAccessPolicy")
        if s["Condition"]["StringEquals"]["eks:accessScope"] == "namespace"
    ]
    assert namespaced["Condition"]["ForAllValues:StringEquals"] == {"eks:namespaces": ["payments"]}
