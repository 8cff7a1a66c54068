"""The human approval path as deployed: the state machine is the file in ``statemachines/``, its
role invokes its two steps and nothing else, approvers are told through their own filtered email
subscription, and each function may publish, read secrets and touch the workflow exactly as its
code does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eks_jit.local.resources import render_definition
from eks_jit.server.config import ConfigError
from infra.constructs.api import ROUTES, routes_for
from infra.constructs.approvals import DEFINITION
from infra.permissions import NOTIFY, WORKFLOW, secret_statements, table_statements
from infra.settings import load_deployment, read_settings
from tests.infra.conftest import STACK, STACK_INSTANCE, Synth, actions, allowed, listed, resolve, write_config

pytestmark = pytest.mark.infra
FUNCTIONS = ("api", "revoke", "sweeper", "notify", "workflow")


def _state_machine(synth: Synth) -> tuple[str, dict[str, Any]]:
    ((logical, machine),) = synth.resources(STACK, "AWS::StepFunctions::StateMachine").items()
    return logical, machine["Properties"]


def test_the_state_machine_is_the_file_with_the_two_function_arns_substituted(synth: Synth) -> None:
    _, props = _state_machine(synth)
    assets = json.loads((synth.outdir / f"{STACK}.assets.json").read_text())["files"]
    (source,) = [
        asset["source"]["path"]
        for asset in assets.values()
        if any(d["objectKey"] == props["DefinitionS3Location"]["Key"] for d in asset["destinations"].values())
    ]
    substitutions = {k: str(resolve(v)) for k, v in props["DefinitionSubstitutions"].items()}
    expected = {
        "NotifyFunctionArn": f"<{synth.function_logical('notify')}.Arn>",
        "WorkflowFunctionArn": f"<{synth.function_logical('workflow')}.Arn>",
    }
    assert substitutions == expected
    # What CloudFormation will run (the uploaded asset, substituted) is what local mode runs
    # (render_definition of the file in the repository), placeholder for placeholder.
    deployed = json.loads(render_definition(synth.outdir / source, substitutions))
    assert deployed == json.loads(render_definition(DEFINITION, expected))
    task_resources = {
        state["Parameters"]["FunctionName"] for state in deployed["States"].values() if "Parameters" in state
    }
    assert task_resources == set(expected.values())


def test_the_state_machine_role_can_only_invoke_notify_and_workflow(synth: Synth) -> None:
    _, props = _state_machine(synth)
    role = props["RoleArn"]["Fn::GetAtt"][0]
    trust = synth.resources(STACK, "AWS::IAM::Role")[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Condition"]) for s in trust] == [
        ({"Service": "states.amazonaws.com"}, {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}})
    ]
    statements = synth.statements_by_role()[role]
    (invoke,) = allowed(statements, "lambda:InvokeFunction")
    assert sorted(listed(invoke["Resource"])) == sorted(
        f"<{synth.function_logical(name)}.Arn>" for name in ("notify", "workflow")
    )
    assert actions(invoke) == ["lambda:InvokeFunction"]
    others = [a for s in statements if s is not invoke for a in actions(s)]
    # what Step Functions itself adds for log delivery and X-Ray, on "*" (no resource-level support)
    assert others and all(a.startswith(("logs:", "xray:")) for a in others)
    assert not [a for a in others if a in ("logs:PutLogEvents", "logs:CreateLogStream")]


def test_the_workflow_logs_every_event_but_no_execution_data_to_a_retained_encrypted_log(synth: Synth) -> None:
    _, props = _state_machine(synth)
    assert props["StateMachineName"] == "eks-jit-approval" and props["StateMachineType"] == "STANDARD"
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False  # the task token is data
    assert props["TracingConfiguration"] == {"Enabled": True}
    log_group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = synth.resources(STACK, "AWS::Logs::LogGroup")[log_group]
    assert group["DeletionPolicy"] == "Retain"
    assert resolve(group["Properties"]["LogGroupName"]) == f"/aws/vendedlogs/states/eks-jit-approval-{STACK_INSTANCE}"
    key = synth.resources(STACK, "AWS::KMS::Key")[group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]]
    (logs,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid", "").startswith("CloudWatchLogs")]
    assert resolve(logs["Principal"]) == {"Service": "logs.<AWS::Region>.amazonaws.com"}
    context = resolve(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
    assert context.endswith(f":log-group:/aws/vendedlogs/states/eks-jit-approval-{STACK_INSTANCE}")


def test_each_approver_is_emailed_only_their_own_asks(synth: Synth) -> None:
    topics = {t["Properties"]["TopicName"]: k for k, t in synth.resources(STACK, "AWS::SNS::Topic").items()}
    subscriptions = [s["Properties"] for s in synth.resources(STACK, "AWS::SNS::Subscription").values()]
    emailed = {p.email: p.name for p in synth.deployment.catalog.principals if p.kind == "human" and p.email}
    assert emailed  # the example configuration has approvers with an email
    approvals = [s for s in subscriptions if s["TopicArn"] == {"Ref": topics["eks-jit-approvals"]}]
    assert {s["Endpoint"]: s["FilterPolicy"] for s in approvals} == {
        email: {"approver": [name]} for email, name in emailed.items()
    }
    assert all(s["Protocol"] == "email" for s in approvals)
    assert not [s for s in subscriptions if s["TopicArn"] == {"Ref": topics["eks-jit-outcomes"]}]


def test_functions_publish_to_exactly_the_topic_their_code_uses(synth: Synth) -> None:
    topics = synth.resources(STACK, "AWS::SNS::Topic")
    by_name = {t["Properties"]["TopicName"]: (k, resolve(t["Properties"]["KmsMasterKeyId"])) for k, t in topics.items()}
    statements = synth.function_statements()
    for name in FUNCTIONS:
        published = {r for s in allowed(statements[name], "sns:Publish") for r in listed(s["Resource"])}
        keys = {r for s in allowed(statements[name], "kms:GenerateDataKey") for r in listed(s["Resource"])}
        # every status change goes to outcomes; notify only asks (its records are notes, not changes)
        topic = "eks-jit-approvals" if name == "notify" else "eks-jit-outcomes"
        assert published == {f"<{by_name[topic][0]}>"}, name
        assert keys == {by_name[topic][1]}, name
        for statement in allowed(statements[name], "kms:GenerateDataKey"):
            assert sorted(actions(statement)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert not [s for n in FUNCTIONS for s in allowed(statements[n], "sns:Publish") if "notifications" in str(s)]


def test_secrets_are_read_by_exactly_the_functions_that_verify_or_post(synth: Synth) -> None:
    secrets = synth.resources(STACK, "AWS::SecretsManager::Secret")
    link = synth.logical("ApprovalsLinkKey", "AWS::SecretsManager::Secret")
    slack = synth.logical("ApprovalsSlack", "AWS::SecretsManager::Secret")
    generated = secrets[link]["Properties"]["GenerateSecretString"]
    assert generated == {
        "SecretStringTemplate": "{}",
        "GenerateStringKey": "key",
        "PasswordLength": 64,
        "ExcludePunctuation": True,
    }
    placeholder = secrets[slack]["Properties"]["GenerateSecretString"]
    assert json.loads(placeholder["SecretStringTemplate"]) == {"bot_token": ""}
    assert placeholder["GenerateStringKey"] == "signing_secret"  # random until the operator puts Slack's
    statements = synth.function_statements()

    def read(name: str) -> set[str]:
        granted = allowed(statements[name], "secretsmanager:GetSecretValue")
        return {str(r) for s in granted for r in listed(s["Resource"])}

    assert {name: read(name) for name in FUNCTIONS} == {
        "api": {f"<{link}>", f"<{slack}>"},  # link verification; Slack signatures and message updates
        "notify": {f"<{link}>", f"<{slack}>"},  # signs each approver's link; posts to Slack
        "workflow": {f"<{slack}>"},  # updates the Slack message
        "revoke": set(),
        "sweeper": set(),
    }


def test_only_the_api_starts_executions_and_only_api_and_the_await_step_resume_them(synth: Synth) -> None:
    statements = synth.function_statements()
    machine = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:eks-jit-approval"
    starters = {
        n: [r for s in allowed(statements[n], "states:StartExecution") for r in listed(s["Resource"])]
        for n in FUNCTIONS
    }
    assert starters == {"api": [machine], "revoke": [], "sweeper": [], "notify": [], "workflow": []}
    (describe,) = allowed(statements["api"], "states:DescribeExecution")  # StartExecution's dependent action
    assert listed(describe["Resource"]) == [machine.replace(":stateMachine:", ":execution:") + ":*"]
    resumers = {n for n in FUNCTIONS if allowed(statements[n], "states:SendTaskSuccess")}
    # the api (a decision), the workflow's await step (a request decided before its token was
    # stored: the waitForTaskToken step resumes itself); notify never; activate/expire/fail never
    assert resumers == {"api", "workflow"}
    for name in resumers:
        (resume,) = allowed(statements[name], "states:SendTaskSuccess")
        # the Service Authorization Reference lists no resource type for SendTaskSuccess
        assert actions(resume) == ["states:SendTaskSuccess"] and listed(resume["Resource"]) == ["*"]
    _, props = _state_machine(synth)
    assert machine.endswith(props["StateMachineName"])


def test_outputs_name_what_the_operator_configures(synth: Synth) -> None:
    outputs = synth.template(STACK)["Outputs"]
    assert {"ApprovalsTopic", "OutcomesTopic", "ApprovalStateMachine", "SlackSecret", "SlackInteractionsUrl"} <= set(
        outputs
    )
    assert "/v1/slack/interactions" in str(outputs["SlackInteractionsUrl"]["Value"])
    # ApiUrl is the base the CLI and client take: it names no route (".../v1/grants" answered
    # route_not_found when given as the endpoint)
    (parts,) = [v[1] for k, v in outputs["ApiUrl"]["Value"].items() if k == "Fn::Join"]
    assert parts[0] == "https://" and parts[-2:] == [{"Ref": parts[-2]["Ref"]}, "/"]  # <stage>/, no route
    assert "Stage" in parts[-2]["Ref"]


# -- no synth: the configuration-dependent parts -------------------------------------------------


def test_without_slack_there_is_no_slack_route_and_no_slack_secret_grant(tmp_path: Path) -> None:
    deployment = load_deployment({"config": str(write_config(tmp_path))})
    assert not deployment.catalog.slack.enabled
    assert [r for r in ROUTES if r.slack] and not [r for r in routes_for(deployment) if r.slack]
    for needs in (NOTIFY, WORKFLOW):
        granted = [r for s in secret_statements(needs, "link-key-arn", None) for r in s.resources]
        assert "slack" not in str(granted)
    # the workflow reads side records for its task token (Slack or not); notify only for Slack
    assert "ReadSideRecords" in [s.sid for s in table_statements("table-arn", WORKFLOW, slack=False)]
    assert "ReadSideRecords" not in [s.sid for s in table_statements("table-arn", NOTIFY, slack=False)]


def test_a_public_url_must_be_an_https_base_url() -> None:
    assert read_settings({"public_url": "https://eks-jit.example.com"}).public_url == "https://eks-jit.example.com"
    with pytest.raises(ConfigError, match="public_url"):
        read_settings({"public_url": "http://eks-jit.example.com"})


def test_two_approvers_sharing_an_address_fail_before_synth(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace("bob@example.com", "alice@example.com")
    config.write_text(text)
    with pytest.raises(ConfigError, match=r"share the email alice@example\.com"):
        load_deployment({"config": str(config)})
