"""Every IAM statement of the synthesized templates means what it says, by the Service
Authorization Reference (the data parliament 1.6.4 ships; offline): see ``iam_reference.py``.

moto never evaluates IAM, so without this nothing notices a condition key that an action
ignores (``eks:kubernetesGroups`` on ``UpdateAccessEntry``), a set operator on a single-valued
key, or a resource ARN no action acts on.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import ACCOUNT, CLUSTER_STACK, OTHER_ACCOUNT, STACK, Synth
from tests.infra.iam_reference import FalsePositive, check_statement, template_statements, unexplained

pytestmark = pytest.mark.infra

# Findings that are wrong about these statements. Each must still occur (a stale entry fails).
FALSE_POSITIVES = [
    FalsePositive(
        sid="CloudWatchLogsEncryptsTheWorkflowLog",
        issue="MISMATCHED_TYPE",
        detail="ArnEquals requires a value of type Arn but given String",
        reason=(
            "kms:EncryptionContext:aws:logs:arn is typed String in the reference, but its value is the "
            "log group's ARN and the CloudWatch Logs user guide's key policy compares it with an ARN "
            "operator; ARN operators apply to string values that are ARNs."
        ),
    ),
    FalsePositive(
        sid="DescribeApprovalExecutions",
        issue="RESOURCE_MISMATCH",
        detail="express",
        reason=(
            "The reference lists execution* and express* for states:DescribeExecution: alternatives "
            "(standard or express executions), which parliament reads as both required. The approval "
            "state machine is STANDARD, so its executions are execution ARNs."
        ),
    ),
]


def _all_statements(synth: Synth) -> list[Any]:
    return [
        *template_statements(STACK, synth.template(STACK), "eu-west-1", ACCOUNT),
        *template_statements(CLUSTER_STACK, synth.template(CLUSTER_STACK), "eu-central-1", OTHER_ACCOUNT),
    ]


def test_every_statement_of_both_templates_is_sound_by_the_reference(synth: Synth) -> None:
    statements = _all_statements(synth)
    assert len(statements) > 100  # identity, trust, topic, queue, key and API policies
    kinds = {where.logical_id.rstrip("0123456789ABCDEF") for where, _ in statements}
    assert any("TopicPolicy" in k or "Approvals" in k for k in kinds)
    problems, used = unexplained(statements, FALSE_POSITIVES)
    assert problems == []
    assert used == set(FALSE_POSITIVES), "a listed false positive no longer occurs: remove it"
    for fp in FALSE_POSITIVES:
        assert len(fp.reason) >= 80


ENTRY = "arn:aws:eks:eu-west-1:111122223333:access-entry/prod-eks/role/111122223333/oncall-agent/*"
CLUSTER = "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eks"
TABLE = "arn:aws:dynamodb:eu-west-1:111122223333:table/grants"


def allow(action: str | list[str], resource: str | list[str], condition: dict[str, Any] | None = None) -> dict:
    statement: dict[str, Any] = {"Sid": "Bad", "Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        # the finding of issue 12: a key UpdateAccessEntry does not have
        (
            allow("eks:UpdateAccessEntry", ENTRY, {"ForAllValues:StringLike": {"eks:kubernetesGroups": ["eks-jit:*"]}}),
            "UNKNOWN_CONDITION_FOR_ACTION",
        ),
        (allow("eks:UpdateAccesEntry", ENTRY), "UNKNOWN_ACTION"),
        (allow("ekz:DescribeAccessEntry", ENTRY), "UNKNOWN_PREFIX"),
        (allow("eks:DeleteAccessEntry", CLUSTER), "RESOURCE_MISMATCH"),  # an entry action on the cluster
        (allow(["eks:DeleteAccessEntry"], [ENTRY, TABLE]), "RESOURCE_UNUSED"),  # a resource no action acts on
        (allow("dynamodb:GetItem", "table/grants"), "INVALID_ARN"),
        (allow("eks:DeleteAccessEntry", ENTRY, {"StringEqualz": {"aws:ResourceTag/x": "y"}}), "UNKNOWN_OPERATOR"),
        (allow("eks:CreateAccessEntry", CLUSTER, {"Null": {"eks:username": "yes"}}), "MISMATCHED_TYPE_OPERATION"),
        (allow("eks:CreateAccessEntry", CLUSTER, {"StringEquals": {"eks:principalArn": "x"}}), "MISMATCHED_TYPE"),
        # a multivalued key with a plain operator, a single-valued key with a set operator
        (allow("dynamodb:GetItem", TABLE, {"StringLike": {"dynamodb:LeadingKeys": "GRANT#*"}}), "SET_OPERATOR"),
        (
            allow("dynamodb:PutItem", TABLE, {"ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": ["X"]}}),
            "SET_OPERATOR",
        ),
        # tag keys where the action takes no tags; a resource tag on a resource type without tags
        (allow("eks:DeleteAccessEntry", ENTRY, {"StringEquals": {"aws:RequestTag/x": "y"}}), "UNKNOWN_CONDITION"),
        (
            allow(
                "eks:AssociateAccessPolicy",
                ENTRY,
                {"ArnEquals": {"eks:policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"}},
            )
            | {"Action": ["eks:AssociateAccessPolicy", "eks:DescribeAccessEntry"]},
            "UNKNOWN_CONDITION_FOR_ACTION",  # DescribeAccessEntry has no eks:policyArn
        ),
    ],
)
def test_the_checker_refuses_a_bad_statement(statement: dict[str, Any], expected: str) -> None:
    findings = check_statement(statement)
    assert any(f.startswith(expected) for f in findings), findings


def test_the_checker_passes_a_sound_statement() -> None:
    statement = allow(
        "eks:CreateAccessEntry",
        CLUSTER,
        {
            "ArnEquals": {"eks:principalArn": ["arn:aws:iam::111122223333:role/agents/oncall-agent"]},
            "ForAllValues:StringLike": {"eks:kubernetesGroups": ["eks-jit:*"]},
            "Null": {"eks:username": "true"},
        },
    )
    assert check_statement(statement) == []
