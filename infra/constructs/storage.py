"""The grant table, built from ``lambdas/adapters/table.py`` so the deployed table, local mode and
the tests' moto table share one definition."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from eks_jit.server.adapters.table import INDEXES, PK, SK, TTL_ATTRIBUTE


def _key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Storage(Construct):
    """On-demand, point-in-time recovery, deletion protection, retained when the stack goes.

    Encrypted with the AWS-managed key (``aws/dynamodb``): KMS-backed, rotated by AWS, every use
    logged in CloudTrail. A customer-managed key would add a key policy and ``kms:*`` grants to
    every function without narrowing who can read: the table's readers are exactly the five
    function roles, and IAM on the table (down to item key prefixes) is what decides.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Grants",
            partition_key=_key(PK),
            sort_key=_key(SK),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute=TTL_ATTRIBUTE,  # expired reconcile leases only
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index, (hash_key, range_key) in INDEXES.items():
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=_key(hash_key),
                sort_key=_key(range_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )
