"""What the synthesized templates promise: signed routes (but the three that verify their own
credential), a durable table shaped like the code's, one least-privilege role per function,
revocation plumbing and alarms."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eks_jit.server.adapters.scheduler import schedule_name
from eks_jit.server.adapters.table import (
    COMMAND_PREFIX,
    GRANT_PREFIX,
    IDEMPOTENCY_PREFIX,
    INDEXES,
    LEASE_PREFIX,
    SIDE_PREFIX,
    TTL_ATTRIBUTE,
    create_table_kwargs,
)
from eks_jit.server.domain.catalog import MANAGED_TAG, Level
from eks_jit.server.domain.identity import entry_identity
from infra.bundling import FunctionBundle
from infra.constructs.api import ROUTES
from infra.functions import env_var
from infra.settings import load_deployment
from tests.infra.conftest import (
    ACCOUNT,
    CLUSTER_STACK,
    ORG,
    OTHER_ACCOUNT,
    SHARED_ROLE,
    STACK,
    Synth,
    actions,
    allowed,
    listed,
    resolve,
)

pytestmark = pytest.mark.infra
PARTITION_POLICY = "arn:<AWS::Partition>:eks::aws:cluster-access-policy/"
HANDLERS = {
    "api": "eks_jit.server.handlers.api.handler",
    "revoke": "eks_jit.server.handlers.revoke.handler",
    "sweeper": "eks_jit.server.handlers.sweeper.handler",
    "notify": "eks_jit.server.handlers.notify.handler",
    "workflow": "eks_jit.server.handlers.workflow.handler",
}
SELF_VERIFYING = {
    ("GET", "/v1/approval-links/{token}"),
    ("POST", "/v1/approval-links/{token}"),
    ("POST", "/v1/slack/interactions"),
}
RECONCILERS = ("api", "revoke", "sweeper", "workflow")  # everything but notify changes access


def test_routes_are_signed_except_the_three_that_verify_their_own_credential(synth: Synth) -> None:
    resources = synth.resources(STACK, "AWS::ApiGateway::Resource")

    def path_of(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the API root
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    methods = {
        (m["Properties"]["HttpMethod"], path_of(m["Properties"]["ResourceId"])): m["Properties"]
        for m in synth.resources(STACK, "AWS::ApiGateway::Method").values()
    }
    assert set(methods) == {(r.method, r.path) for r in ROUTES}  # Slack is enabled in this synth
    assert {(m, p) for m, p in methods if m == "POST" and methods[(m, p)].get("RequestModels")} == {
        ("POST", "/v1/grants"),
        ("POST", "/v1/holds"),
        ("POST", "/v1/grants/{grant_id}/extend"),
    }
    assert {route for route, m in methods.items() if m["AuthorizationType"] == "NONE"} == SELF_VERIFYING
    assert {m["AuthorizationType"] for route, m in methods.items() if route not in SELF_VERIFYING} == {"AWS_IAM"}

    validators = synth.resources(STACK, "AWS::ApiGateway::RequestValidator")
    for route, method in methods.items():
        validator = validators[method["RequestValidatorId"]["Ref"]]["Properties"]
        assert validator["ValidateRequestParameters"] is True, route
        if route in SELF_VERIFYING:  # urlencoded bodies (link form, Slack payload): no JSON model
            assert "RequestModels" not in method and validator["ValidateRequestBody"] is False, route
    assert set(methods[("POST", "/v1/grants")]["RequestModels"]) == {"application/json"}

    stage = next(iter(synth.resources(STACK, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["AccessLogSetting"]["Format"].startswith("{")  # JSON access log
    assert "$context.path" not in stage["AccessLogSetting"]["Format"]  # a link's path is its credential
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] > 0
    for response in synth.resources(STACK, "AWS::ApiGateway::GatewayResponse").values():
        assert set(response["Properties"]["ResponseTemplates"]) == {"application/json"}

    policy = next(iter(synth.resources(STACK, "AWS::ApiGateway::RestApi").values()))["Properties"]["Policy"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["InvokeFromOrganization"]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG
    open_routes = {"execute-api:/*/GET/v1/approval-links/*", "execute-api:/*/POST/v1/approval-links/*"}
    open_routes.add("execute-api:/*/POST/v1/slack/interactions")
    anonymous = statements["InvokeSelfVerifyingRoutes"]
    assert "Condition" not in anonymous and set(anonymous["Resource"]) == open_routes
    deny = statements["DenyEveryoneElse"]
    assert deny["Effect"] == "Deny" and set(deny["NotResource"]) == open_routes and "Resource" not in deny
    assert set(statements) == {"InvokeFromOrganization", "InvokeSelfVerifyingRoutes", "DenyEveryoneElse"}


def test_the_route_table_is_the_api_function_s_routes() -> None:
    """A route the function serves but the gateway lacks answers 403 "unauthenticated" on AWS."""
    from eks_jit.server.handlers.api import app

    served = app._static_routes + app._dynamic_routes  # the resolver's own table (powertools, pinned)
    assert {(r.method, re.sub(r"<([^>]+)>", r"{\1}", r.path)) for r in served} == {(r.method, r.path) for r in ROUTES}


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


def test_functions_run_the_handlers_with_the_environment_each_reads(synth: Synth) -> None:
    functions = synth.functions()
    assert functions.pop("gateway")["Handler"] == "eks-jit-gateway.sh"  # a start script: test_gateway_stack.py
    assert {name: f["Handler"] for name, f in functions.items()} == HANDLERS
    roles = {f["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(roles) == len(HANDLERS)  # one role per function
    scheduling = {env_var(f) for f in ("schedule_group", "revoke_target_arn", "scheduler_role_arn", "revoke_dlq_arn")}
    topics = {env_var("approvals_topic_arn"), env_var("outcomes_topic_arn")}  # both, or no notifier
    link, slack = env_var("link_key_secret"), env_var("slack_secret")
    machine, public = env_var("state_machine_arn"), env_var("public_url")
    gateway = {env_var("gateway_endpoint"), env_var("gateway_ca"), env_var("gateway_role_arn")}  # a gateway cluster
    own = {
        "api": scheduling | topics | {machine, link, slack} | gateway,
        "revoke": scheduling | topics,
        "sweeper": scheduling | topics,
        "notify": topics | {link, slack, public},  # never resumes: no state machine
        "workflow": scheduling | topics | {slack},
    }
    common = {env_var("table_name"), env_var("config_path")}
    common |= {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}
    for name, props in functions.items():
        assert props["Runtime"] == "python3.13" and props["Architectures"] == ["arm64"]
        env = props["Environment"]["Variables"]
        assert set(env) == common | own[name], name
        assert env[env_var("config_path")] == "/var/task/eks-jit-config/eks-jit.yaml"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "EksJit" and env["POWERTOOLS_SERVICE_NAME"] == "eks-jit"
        assert len(props["Layers"]) == 1, name
        if scheduling <= set(env):
            assert env[env_var("schedule_group")] == "eks-jit"
            assert resolve(env[env_var("revoke_target_arn")]).endswith(":function:eks-jit-revoke")
        if machine in env:  # derived from the name: neither function depends on the state machine
            assert resolve(env[machine]).endswith(":stateMachine:eks-jit-approval")
    assert functions["revoke"]["Timeout"] >= 180  # it may wait ~150 s for expires_at

    api_refs = str(functions["api"]["Environment"])
    assert "ApiRestApi" not in api_refs and "Deployment" not in api_refs  # no cycle through the API
    rest_api = synth.logical("ApiRestApi", "AWS::ApiGateway::RestApi")
    assert resolve(functions["notify"]["Environment"]["Variables"][public]) == (
        f"https://<{rest_api}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/prod"
    )


def test_every_handler_imports_from_the_function_bundle_alone(tmp_path: Path) -> None:
    """The bundle names the code as eks_jit.server (the wheel's and the checkout's name too): each
    handler string resolves to a module of the bundle, imported from the bundle's copy, and the
    bundle carries nothing of eks_jit but its version-only __init__."""
    bundle = FunctionBundle(load_deployment({}))
    for source, dest in bundle.files():
        (tmp_path / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tmp_path / dest)
    assert sorted(p.name for p in (tmp_path / "eks_jit").iterdir()) == ["__init__.py", "server"]
    modules = sorted({h.rpartition(".")[0] for h in HANDLERS.values()})
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(tmp_path)!r}), module.__file__\n"
        "    assert callable(module.handler)\n"
    )
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "eks-jit"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr


IDEMPOTENCY_ONLY = {
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [IDEMPOTENCY_PREFIX + "*"]},
    "Null": {"dynamodb:LeadingKeys": "false"},
}


def test_deletes_only_idempotency_records_and_grants_change_only_in_transactions(synth: Synth) -> None:
    for name, statements in synth.function_statements().items():
        for statement in statements:
            services = {a.split(":")[0] for a in actions(statement)}
            if services & {"eks", "dynamodb"}:
                assert "*" not in listed(statement["Resource"]), (name, statement)
                assert all(not a.endswith("*") for a in actions(statement)), (name, statement)
            if "dynamodb" in services and statement["Sid"] != "QueryGrantIndexes":
                # every item action names its key prefixes, and a request without keys matches none
                assert statement["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}, (name, statement)
        # deletes: only the api's idempotency records (a failed request keeps none); leases are
        # released by a conditional put that records what was applied, and the TTL reaps them
        for statement in allowed(statements, "dynamodb:DeleteItem"):
            assert statement["Sid"] == "IdempotencyRecords", (name, statement)
            assert name == "api" and statement["Condition"] == IDEMPOTENCY_ONLY, name
        assert bool(allowed(statements, "dynamodb:DeleteItem")) == (name == "api"), name
        puts: dict[str, dict[str, Any]] = {}
        for statement in allowed(statements, "dynamodb:PutItem"):
            (keys,) = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            puts[keys] = statement
        if name == "gateway":  # its recording, and nothing else (tests/infra/test_gateway_stack.py)
            assert set(puts) == {COMMAND_PREFIX + "*"}
            assert allowed(statements, "dynamodb:UpdateItem") == []
            continue
        assert COMMAND_PREFIX + "*" not in puts, name  # only the gateway records commands
        in_transaction = {"dynamodb:EnclosingOperation": "TransactWriteItems"}
        # grants and events (GRANT#) only inside TransactWriteItems, and never by notify (its role
        # could otherwise write a forged grant); bare puts only on LEASE# and SIDE#
        assert (GRANT_PREFIX + "*" in puts) == (name != "notify"), name
        if name != "notify":
            assert puts[GRANT_PREFIX + "*"]["Condition"]["StringEquals"] == in_transaction
        assert set(puts) <= {GRANT_PREFIX + "*", LEASE_PREFIX + "*", SIDE_PREFIX + "*", IDEMPOTENCY_PREFIX + "*"}, name
        assert (IDEMPOTENCY_PREFIX + "*" in puts) == (name == "api"), name
        for bare in set(puts) - {GRANT_PREFIX + "*"}:
            assert "StringEquals" not in puts[bare]["Condition"], (name, bare)
        for statement in allowed(statements, "dynamodb:UpdateItem"):
            if statement["Sid"] == "IdempotencyRecords":  # the answer, written into the api's own record
                assert name == "api" and statement["Condition"] == IDEMPOTENCY_ONLY, name
                continue
            if statement["Sid"] == "ReconcileLeases":  # taking a lease: a conditional update, leases only
                assert statement["Condition"] == {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [LEASE_PREFIX + "*"]},
                    "Null": {"dynamodb:LeadingKeys": "false"},
                }, (name, statement)
                continue
            assert statement["Condition"]["StringEquals"] == in_transaction
            assert statement["Condition"]["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["ACCESS#*"]}


def test_side_records_are_put_and_read_only_where_the_workflow_needs_them(synth: Synth) -> None:
    statements = synth.function_statements()

    def side(name: str, action: str) -> list[dict[str, Any]]:
        return [
            s
            for s in allowed(statements[name], action)
            if SIDE_PREFIX + "*" in s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        ]

    # the task token (workflow's await step), the chat message ref (notify), used link nonces (api,
    # put-if-absent), activity reports (sweeper, and api for a report read after the window settled)
    assert {n for n in statements if side(n, "dynamodb:PutItem")} == {"api", "notify", "sweeper", "workflow"}
    for name in ("api", "notify", "sweeper", "workflow"):
        (put,) = side(name, "dynamodb:PutItem")
        assert actions(put) == ["dynamodb:PutItem"]  # never deleted: used nonces must stay used
        assert put["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [SIDE_PREFIX + "*"]},
            "Null": {"dynamodb:LeadingKeys": "false"},
        }
    # reads: the task token (api, workflow), link nonces (api), the chat message (workflow, and notify
    # with Slack on), activity reports (api, sweeper)
    assert {n for n in statements if side(n, "dynamodb:GetItem")} == {"api", "notify", "sweeper", "workflow"}
    for name, own in statements.items():
        for statement in allowed(own, "dynamodb:GetItem") + allowed(own, "dynamodb:BatchGetItem"):
            keys = set(statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
            idempotency = [{IDEMPOTENCY_PREFIX + "*"}] if name == "api" else []
            if name == "gateway":  # grants, and the active-grant indexes of its clusters only
                assert keys == {"GRANT#*", "ACCESS#gateway-eks#*"}
                continue
            assert keys in [
                {"SIDE#*"},
                {"GRANT#*", "ACCESS#*"} if name in RECONCILERS else {"GRANT#*"},
                *idempotency,
            ], name


def test_each_function_gets_only_the_table_and_schedule_actions_its_code_uses(synth: Synth) -> None:
    statements = synth.function_statements()
    table = f"<{synth.logical('StorageGrants', 'AWS::DynamoDB::Table')}.Arn>"

    def queried(name: str) -> set[str]:
        return {
            r.replace(table, "table")
            for s in allowed(statements[name], "dynamodb:Query")
            for r in listed(s["Resource"])
        }

    assert queried("api") == {"table", "table/index/gsi1", "table/index/gsi2"}
    assert queried("sweeper") == {"table/index/gsi1"}
    assert queried("revoke") == queried("notify") == queried("workflow") == set()
    assert allowed(statements["revoke"], "scheduler:DeleteSchedule") == []
    assert allowed(statements["api"], "eks:ListAccessEntries") == []
    assert allowed(statements["revoke"], "eks:ListAccessEntries") == []
    assert allowed(statements["workflow"], "eks:ListAccessEntries") == []
    assert allowed(statements["sweeper"], "eks:ListAccessEntries")
    assert allowed(statements["workflow"], "scheduler:DeleteSchedule")  # a failed activation cancels

    pattern = f"arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/eks-jit/{schedule_name('')}*"
    for name in RECONCILERS:
        own = statements[name]
        (create,) = allowed(own, "scheduler:CreateSchedule")
        assert listed(create["Resource"]) == [pattern], name
        (pass_role,) = allowed(own, "iam:PassRole")
        assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
        assert listed(pass_role["Resource"]) == [f"<{synth.logical('RevocationSchedulerRole', 'AWS::IAM::Role')}.Arn>"]


def test_notify_never_touches_eks_scheduler_or_cluster_roles(synth: Synth) -> None:
    notify = synth.function_statements()["notify"]
    services = {a.split(":")[0] for s in notify for a in actions(s)}
    assert services == {"logs", "dynamodb", "sns", "kms", "secretsmanager"}  # never resumes an execution
    assert not [a for s in notify for a in actions(s) if a.startswith(("eks:", "scheduler:", "sts:", "iam:"))]
    (role,) = [r for r in synth.resources(CLUSTER_STACK, "AWS::IAM::Role").values()]
    assert "eks-jit-notify" not in str(role)


def test_eks_actions_only_on_configured_clusters_and_own_entries(synth: Synth) -> None:
    catalog = synth.deployment.catalog
    local = {n: c for n, c in catalog.clusters.items() if c.role_arn is None}
    allowed_arns = {f"arn:<AWS::Partition>:eks:{c.region}:{c.account}:cluster/{n}" for n, c in local.items()} | {
        f"arn:<AWS::Partition>:eks:{c.region}:{c.account}:access-entry/{n}/{p.arn.split(':')[5].split('/')[0]}/"
        f"{p.arn.split(':')[4]}/{p.arn.rsplit('/', 1)[1]}/*"
        for n, c in local.items()
        for p in catalog.principals
    }
    namespaced = {
        PARTITION_POLICY + a.rsplit("/", 1)[-1]
        for s in catalog.scopes.values()
        if s.level is Level.NAMESPACE
        for a in s.access_policies
    }
    statements = synth.function_statements()
    for name in RECONCILERS:
        own = statements[name]
        eks = [s for s in own if any(a.startswith("eks:") for a in actions(s))]
        assert eks, name
        for statement in eks:
            assert set(listed(statement["Resource"])) <= allowed_arns, (name, statement)
            assert "shared-eks" not in str(statement)  # another account: only through its role
            if "eks:DeleteAccessEntry" in actions(statement):
                assert statement["Condition"]["StringEquals"][f"aws:ResourceTag/{MANAGED_TAG}"] == "true"
        for statement in allowed(own, "eks:AssociateAccessPolicy"):
            condition = statement["Condition"]
            assert condition["StringEquals"][f"aws:ResourceTag/{MANAGED_TAG}"] == "true"
            policies = set(condition["ArnEquals"]["eks:policyArn"])
            # The deployment's partition: IAM compares with the ARN the adapter sends, the cluster's.
            assert policies and all(p.startswith(PARTITION_POLICY) for p in policies)
            if condition["StringEquals"]["eks:accessScope"] == "namespace":
                assert policies == namespaced
                assert set(condition["ForAllValues:StringEquals"]["eks:namespaces"]) == {"payments", "orders"}
            else:  # cluster-wide only for what a cluster-level scope grants (cluster-view)
                assert policies == {PARTITION_POLICY + "AmazonEKSViewPolicy"}
        (create,) = allowed(own, "eks:CreateAccessEntry")
        assert set(create["Condition"]["ArnEquals"]["eks:principalArn"]) == {p.arn for p in catalog.principals}
        assert create["Condition"]["ForAllValues:StringLike"] == {"eks:kubernetesGroups": ["eks-jit:*"]}
        assert create["Condition"]["Null"] == {"eks:username": "true"}  # EKS's default username only
        assert allowed(own, "eks:UpdateAccessEntry") == []  # it has no condition key for groups or username
        (assume,) = allowed(own, "sts:AssumeRole")
        assert listed(assume["Resource"]) == [SHARED_ROLE]


def test_scheduler_role_can_only_invoke_the_revoke_function(synth: Synth) -> None:
    roles = synth.resources(STACK, "AWS::IAM::Role")
    schedule_role_id = synth.logical("RevocationSchedulerRole", "AWS::IAM::Role")
    trust = roles[schedule_role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    statements = synth.statements_by_role()[schedule_role_id]
    assert {(s["Action"], str(s["Resource"])) for s in statements} == {
        ("lambda:InvokeFunction", f"<{synth.function_logical('revoke')}.Arn>"),
        ("sqs:SendMessage", f"<{synth.logical('RevocationScheduleDeadLetters', 'AWS::SQS::Queue')}.Arn>"),
    }

    (group,) = synth.resources(STACK, "AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == "eks-jit"
    for queue in synth.resources(STACK, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (rule,) = synth.resources(STACK, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0].startswith("RevocationSweeper")


def test_alarms_watch_revocation_the_backstop_the_api_and_the_workflow(synth: Synth) -> None:
    alarms = [a["Properties"] for a in synth.resources(STACK, "AWS::CloudWatch::Alarm").values()]
    watched = {(a.get("Namespace"), a.get("MetricName")) for a in alarms}
    assert {
        ("EksJit", "OverdueGrantsExpired"),
        ("EksJit", "SweeperErrors"),
        ("EksJit", "ActivationRefused"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Invocations"),
        ("AWS/States", "ExecutionsFailed"),
    } <= watched
    assert ("AWS/States", "ExecutionsTimedOut") not in watched  # nobody deciding in time is normal
    alarms_topic = synth.logical("NotificationsTopic", "AWS::SNS::Topic")
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": alarms_topic}]  # never the outcomes topic
        if alarm.get("Namespace") == "EksJit":
            assert alarm["Dimensions"] == [{"Name": "service", "Value": "eks-jit"}]
    (failed,) = [a for a in alarms if a.get("MetricName") == "ExecutionsFailed"]
    assert failed["Dimensions"][0]["Name"] == "StateMachineArn"
    topics = synth.resources(STACK, "AWS::SNS::Topic")
    assert {t["Properties"]["TopicName"] for t in topics.values()} == {
        "eks-jit-notifications",
        "eks-jit-outcomes",
        "eks-jit-approvals",
    }
    keys = [t["Properties"]["KmsMasterKeyId"] for t in topics.values()]
    assert len({str(k) for k in keys}) == 3  # one key per topic: a publisher's grant reaches one topic
    for key in synth.resources(STACK, "AWS::KMS::Key").values():
        assert key["Properties"]["EnableKeyRotation"] is True
    assert synth.resources(STACK, "AWS::CloudWatch::Dashboard")


def test_cluster_access_stack_trusts_only_the_control_plane_functions_that_change_access(synth: Synth) -> None:
    (role,) = synth.resources(CLUSTER_STACK, "AWS::IAM::Role").values()
    props = role["Properties"]
    assert (props["Path"], props["RoleName"]) == ("/platform/", "eks-jit-cluster-access")
    (trust,) = resolve(props["AssumeRolePolicyDocument"]["Statement"])
    assert trust["Principal"] == {"AWS": f"arn:<AWS::Partition>:iam::{ACCOUNT}:root"}
    assert sorted(trust["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == [
        f"arn:<AWS::Partition>:iam::{ACCOUNT}:role/eks-jit-{name}-eu-west-1" for name in sorted(RECONCILERS)
    ]
    assert trust["Condition"]["StringLike"] == {"sts:RoleSessionName": "eks-jit-*"}
    (statements,) = synth.statements_by_role(CLUSTER_STACK).values()
    for statement in statements:
        for resource in listed(statement["Resource"]):
            if statement["Action"] == "logs:FilterLogEvents":  # activity reports: this cluster's audit log only
                assert (
                    resource
                    == f"arn:<AWS::Partition>:logs:eu-central-1:{OTHER_ACCOUNT}:log-group:/aws/eks/shared-eks/cluster:*"
                )
                continue
            assert resource.startswith(f"arn:<AWS::Partition>:eks:eu-central-1:{OTHER_ACCOUNT}:")
            assert resource.endswith("cluster/shared-eks") or ":access-entry/shared-eks/" in resource
    (namespaced,) = [
        s
        for s in allowed(statements, "eks:AssociateAccessPolicy")
        if s["Condition"]["StringEquals"]["eks:accessScope"] == "namespace"
    ]
    assert namespaced["Condition"]["ForAllValues:StringEquals"] == {"eks:namespaces": ["payments"]}


def test_only_the_activity_readers_read_audit_logs_and_only_their_clusters(synth: Synth) -> None:
    statements = synth.function_statements()
    readers = {n for n, own in statements.items() if allowed(own, "logs:FilterLogEvents")}
    assert readers == {"api", "sweeper"}
    for name in readers:
        (logs,) = allowed(statements[name], "logs:FilterLogEvents")
        # the ":*" form: IAM checks FilterLogEvents against the log group's ARN with it
        assert all(":log-group:/aws/eks/" in r and r.endswith("/cluster:*") for r in listed(logs["Resource"]))
        (describe,) = allowed(statements[name], "eks:DescribeCluster")
        assert all(":cluster/" in r for r in listed(describe["Resource"]))


ENTRY_ACTIONS = (
    "eks:DescribeAccessEntry",
    "eks:ListAssociatedAccessPolicies",
    "eks:TagResource",
    "eks:UntagResource",
    "eks:UpdateAccessEntry",
    "eks:DeleteAccessEntry",
    "eks:AssociateAccessPolicy",
    "eks:DisassociateAccessPolicy",
)


def _reaches(statement: dict[str, Any], arn: str) -> bool:
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in listed(statement["Resource"]))


@pytest.mark.parametrize("stack", [STACK, CLUSTER_STACK])
def test_no_entry_action_reaches_an_entry_of_anyone_but_a_registered_principal(synth: Synth, stack: str) -> None:
    """As an attacker holding a function role: tag the cluster creator's entry managed, then take it over."""
    catalog = synth.deployment.catalog
    prefixes = [
        f"arn:<AWS::Partition>:eks:{c.region}:{c.account}:access-entry/{name}" for name, c in catalog.clusters.items()
    ]
    others = ("role/111122223333/Admin", f"role/{OTHER_ACCOUNT}/eks-node-role", "user/123456789012/moto")
    mine = ["{}/{}/{}".format(*entry_identity(p.arn)) for p in catalog.principals]
    for role, statements in synth.statements_by_role(stack).items():
        for statement in statements:
            if not set(actions(statement)) & set(ENTRY_ACTIONS):
                continue
            for prefix in prefixes:
                for other in others:
                    assert not _reaches(statement, f"{prefix}/{other}/0a1b2c"), (role, statement["Sid"], other)
            assert any(_reaches(statement, f"{p}/{m}/0a1b2c") for p in prefixes for m in mine), statement["Sid"]


def test_the_api_queries_the_table_only_in_grant_partitions(synth: Synth) -> None:
    """Task tokens and link nonces (SIDE#) are never reachable by Query; indexes hold no SIDE# item.
    The api function also queries the session log's partitions (COMMAND#), each in its own statement."""
    table = f"<{synth.logical('StorageGrants', 'AWS::DynamoDB::Table')}.Arn>"
    for name, statements in synth.function_statements().items():
        for statement in allowed(statements, "dynamodb:Query"):
            if table in listed(statement["Resource"]):
                assert listed(statement["Resource"]) == [table], name
                (keys,) = statement["Condition"]["ForAllValues:StringLike"].values()
                assert keys in ([GRANT_PREFIX + "*"], [COMMAND_PREFIX + "*"]), (name, keys)
                assert statement["Condition"] == {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": keys},
                    "Null": {"dynamodb:LeadingKeys": "false"},
                }
            else:
                assert all(r.startswith(table + "/index/") for r in listed(statement["Resource"])), name


def test_only_cloudformation_subscribes_only_the_approvers_addresses_to_the_approvals_topic(synth: Synth) -> None:
    """F7: an unfiltered subscription would receive every approver's link."""
    approvals = synth.logical("NotificationsApprovals", "AWS::SNS::Topic")
    (policy,) = [
        p["Properties"]
        for p in synth.resources(STACK, "AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": approvals}]
    ]
    denies = {s["Sid"]: s for s in resolve(policy["PolicyDocument"]["Statement"]) if s["Effect"] == "Deny"}
    for sid in ("OnlyThisStackSubscribes", "OnlyEmailSubscriptions", "OnlyApproversAddresses"):
        assert denies[sid]["Action"] == "sns:Subscribe" and denies[sid]["Principal"] == {"AWS": "*"}
    assert denies["OnlyThisStackSubscribes"]["Condition"] == {
        "ArnNotLike": {
            "aws:PrincipalArn": "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/"
            "cdk-*-cfn-exec-role-<AWS::AccountId>-<AWS::Region>"
        }
    }
    assert denies["OnlyEmailSubscriptions"]["Condition"] == {"StringNotEquals": {"sns:Protocol": "email"}}
    assert denies["OnlyApproversAddresses"]["Condition"] == {
        "StringNotEquals": {"sns:Endpoint": ["alice@example.com", "bob@example.com"]}
    }


def test_only_the_api_keeps_idempotency_records_in_their_own_partitions(synth: Synth) -> None:
    """The Idempotency-Key records (IDEMPOTENCY#): powertools' four item actions, for the api function
    alone, on those partitions alone: never a grant, an event, an index item or a side record."""
    table = f"<{synth.logical('StorageGrants', 'AWS::DynamoDB::Table')}.Arn>"
    for name, statements in synth.function_statements().items():
        naming = [s for s in statements if IDEMPOTENCY_PREFIX + "*" in json.dumps(s.get("Condition", {}))]
        if name != "api":
            assert naming == [], name
            continue
        (records,) = naming
        assert records["Sid"] == "IdempotencyRecords"
        assert sorted(actions(records)) == sorted(
            ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
        )
        assert listed(records["Resource"]) == [table] and records["Condition"] == IDEMPOTENCY_ONLY


def test_notify_cannot_write_a_grant_item(synth: Synth) -> None:
    # notify handles the outside world (Slack, email): if its role could put GRANT# items it could
    # forge an approved or active grant. It records nothing on the grant; the await step does.
    notify = synth.function_statements()["notify"]
    writes = [s for a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem") for s in allowed(notify, a)]
    keys = {k for s in writes for k in s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]}
    assert keys == {SIDE_PREFIX + "*"}
