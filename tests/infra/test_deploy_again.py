"""What a first deployment, and one after ``cdk destroy``, need from the account (issue 13).

- API Gateway stage logging needs the account-wide CloudWatch Logs role: without it the stage
  fails to create ("CloudWatch Logs role ARN must be set in account settings to enable
  logging"). ``api_gateway_cloudwatch_role`` makes the stack set it; off, the account must have one
  (docs/deploy.md, step 2).
- Every log group is retained on destroy (the audit trail outlives the deployment), so none may
  have a name the next deployment would create again ("already exists").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import CLUSTER_STACK, STACK, STACK_INSTANCE, Synth, listed, resolve

pytestmark = pytest.mark.infra
PUSH_TO_LOGS = "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def _assumable_by(role: dict[str, Any]) -> list[str]:
    return [
        service
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for service in listed(statement["Principal"].get("Service", []))
    ]


def test_no_retained_log_group_has_a_name_the_next_deployment_would_collide_with(synth: Synth) -> None:
    groups = synth.resources(STACK, "AWS::Logs::LogGroup")
    assert len(groups) == 8  # six functions (the gateway too), the API access log, the approval workflow
    for logical, group in groups.items():
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain", logical
        name = group["Properties"].get("LogGroupName")
        # No name: CloudFormation makes a unique one. A name: it carries this stack instance's id.
        assert name is None or resolve(name).endswith(f"-{STACK_INSTANCE}"), (logical, name)


@pytest.mark.parametrize("stack", [STACK, CLUSTER_STACK])
def test_no_retained_resource_of_any_kind_has_a_fixed_name(synth: Synth, stack: str) -> None:
    for logical, resource in synth.template(stack)["Resources"].items():
        if resource.get("DeletionPolicy") != "Retain":
            continue
        names = {k: v for k, v in resource.get("Properties", {}).items() if k.endswith("Name")}
        assert all(resolve(v).endswith(f"-{STACK_INSTANCE}") for v in names.values()), (logical, names)


def test_each_function_logs_to_its_own_retained_group_not_lambda_s_default(synth: Synth) -> None:
    groups = synth.resources(STACK, "AWS::Logs::LogGroup")
    for name, props in synth.functions().items():
        (group,) = [props["LoggingConfig"]["LogGroup"]["Ref"]]  # not /aws/lambda/<function>, made on first write
        assert resolve(groups[group]["Properties"]["LogGroupName"]) == f"/aws/lambda/eks-jit-{name}-{STACK_INSTANCE}"
    outputs = synth.template(STACK)["Outputs"]
    assert len(resolve(outputs["LogGroups"]["Value"]).split(",")) == 6
    assert "ApiAccessLogGroup" in outputs


def test_by_default_the_stack_leaves_the_account_s_api_gateway_settings_alone(synth: Synth) -> None:
    assert synth.resources(STACK, "AWS::ApiGateway::Account") == {}
    roles = synth.resources(STACK, "AWS::IAM::Role").values()
    assert not [r for r in roles if "apigateway.amazonaws.com" in _assumable_by(r)]
    (stage,) = synth.resources(STACK, "AWS::ApiGateway::Stage").values()
    assert "DestinationArn" in stage["Properties"]["AccessLogSetting"]  # so the account needs its role


def test_with_the_setting_the_stack_sets_the_account_role_before_the_stage_and_keeps_it(
    synth_with_account_role: Synth,
) -> None:
    synth = synth_with_account_role
    (account_id, account), *others = synth.resources(STACK, "AWS::ApiGateway::Account").items()
    assert not others
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synth.resources(STACK, "AWS::IAM::Role")[role_id]
    assert _assumable_by(role) == ["apigateway.amazonaws.com"]
    assert resolve(role["Properties"]["ManagedPolicyArns"]) == [PUSH_TO_LOGS]
    assert "Policies" not in role["Properties"]
    # Account-wide: every API of the account and region logs through this role. Destroying the stack
    # leaves both (the setting keeps pointing at a role that exists).
    for resource in (account, role):
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    (stage,) = synth.resources(STACK, "AWS::ApiGateway::Stage").values()
    assert account_id in listed(stage["DependsOn"])
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p["violations"]] == []
