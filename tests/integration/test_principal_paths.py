"""EKS takes an access entry only for a principal that exists at exactly its ARN (path included).

Real EKS answers ``InvalidParameterException: The specified principalArn is invalid: invalid
principal.`` (terraform-aws-eks#2969: an IAM Identity Center role given without
``/aws-reserved/sso.amazonaws.com/...``); the emulation does the same. eks-jit's answer must
say what to fix: the grant fails with a reason that names the path rule, and nothing is given.
"""

from __future__ import annotations

from eks_jit.local.resources import iam_client
from tests.support import ACCOUNT, ONCALL, ONCALL_SESSION, REGION

RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "readiness probe failing on payments-api",
}


def test_a_registered_arn_whose_path_is_not_the_roles_fails_the_grant_with_the_path_rule(world) -> None:
    # Given the registry names role/agents/oncall-agent, but IAM holds the role under another path
    iam = iam_client(ACCOUNT, region=REGION)
    iam.delete_role(RoleName="oncall-agent")
    iam.create_role(RoleName="oncall-agent", Path="/ops/", AssumeRolePolicyDocument="{}")

    # When the agent asks for an auto-approved grant
    status, grant = world.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)

    # Then the grant failed, and its reason says what EKS refused and what the rule is
    assert status == 201, grant
    assert grant["status"] == "failed"
    reason = grant["status_reason"]
    assert f"EKS refused principal {ONCALL} on prod-eks" in reason
    assert "invalid principal" in reason
    assert "exists at exactly this ARN, path included" in reason
    assert "/aws-reserved/sso.amazonaws.com/" in reason

    # And nothing was given, and nothing is left to sweep
    assert world.entry(ONCALL) is None
    assert world.schedules() == []


def test_the_registered_path_is_the_one_that_works(world) -> None:
    # Given the role exists at exactly the registered ARN (the fixtures create it so)
    status, grant = world.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)
    assert status == 201 and grant["status"] == "active", grant
    assert world.entry(ONCALL) is not None
