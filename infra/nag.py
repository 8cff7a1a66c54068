"""cdk-nag acknowledgments: each one names the finding it accepts and why a reviewer can live with it."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one cdk-nag finding (``AwsSolutions-XX`` or ``AwsSolutions-IAM5[Resource::...]``) on
    ``construct`` and what it contains, under the plugin's prefix as cdk-nag asks for it."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PLUGIN}::{finding}", reason=reason))


def policy_of(role: IConstruct) -> IConstruct:
    """The role's inline policy (where IAM5 findings are reported): the narrowest construct."""
    return role.node.find_child("DefaultPolicy")


def wildcard_resource(resource: str) -> str:
    """The id of an IAM5 finding for one wildcard resource, as cdk-nag renders it."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"
