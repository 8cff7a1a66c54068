"""Clusters in aws-cn and aws-us-gov: the access policies EKS is sent carry the cluster's partition,
the reconciler keeps comparing in the catalog's one spelling, and the emulation refuses another
partition's ARN as EKS does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from eks_jit.server.adapters.eks import EksAccessEntries
from eks_jit.server.domain.access import Access, PolicyScope, plan
from eks_jit.server.domain.catalog import ACCESS_POLICY_PREFIX, Cluster

ACCOUNT = "123456789012"  # moto's
VIEW = ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
}
CASES = [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


def _cluster(region: str) -> tuple[Cluster, str]:
    """A cluster of ``region`` in moto, and an agent role of its partition (also created in moto's
    IAM, which answers ``arn:aws`` ARNs for us-gov regions: the ARN is built from the partition)."""
    cluster = Cluster(account=ACCOUNT, region=region, environment="production", namespaces=("payments",))
    boto3.client("iam", region_name=region).create_role(
        RoleName="oncall-agent", Path="/agents/", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    role = f"arn:{cluster.partition}:iam::{ACCOUNT}:role/agents/oncall-agent"
    boto3.client("eks", region_name=region).create_cluster(
        name="gov-eks",
        roleArn=f"arn:{cluster.partition}:iam::{ACCOUNT}:role/eks-cluster-role",
        resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d"]},
        accessConfig={"authenticationMode": "API"},
    )
    return cluster, role


def _eks(_: str, cluster: Cluster, __: str) -> Any:
    return boto3.client("eks", region_name=cluster.region)


@pytest.mark.usefixtures("moto")
@pytest.mark.parametrize(("region", "partition"), CASES)
def test_the_adapter_sends_the_cluster_s_partition_and_reads_back_the_catalog_s_spelling(
    region: str, partition: str
) -> None:
    cluster, role = _cluster(region)
    assert cluster.partition == partition and role.startswith(f"arn:{partition}:iam::")
    assert cluster.arn("gov-eks") == f"arn:{partition}:eks:{region}:{ACCOUNT}:cluster/gov-eks"
    entries = EksAccessEntries({"gov-eks": cluster}, _eks).cluster("gov-eks", session="g-1")
    entries.create(role, frozenset())
    entries.associate(role, VIEW, PolicyScope.of(["payments"]))

    (associated,) = _eks("", cluster, "").list_associated_access_policies(clusterName="gov-eks", principalArn=role)[
        "associatedAccessPolicies"
    ]
    assert associated["policyArn"] == f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    actual = entries.read(role)
    assert actual is not None and actual.access.policies == {VIEW: PolicyScope.of(["payments"])}
    # Level-triggered: desired (catalog spelling) and actual (read back) agree, so nothing to do.
    assert plan(Access(frozenset(), {VIEW: PolicyScope.of(["payments"])}), actual).is_noop

    entries.disassociate(role, VIEW)
    assert entries.read(role).access.policies == {}  # type: ignore[union-attr]


@pytest.mark.usefixtures("moto")
@pytest.mark.parametrize(("region", "partition"), CASES)
def test_the_emulation_refuses_another_partition_s_access_policy_as_eks_does(region: str, partition: str) -> None:
    cluster, role = _cluster(region)
    eks = _eks("", cluster, "")
    eks.create_access_entry(clusterName="gov-eks", principalArn=role)
    with pytest.raises(ClientError) as refused:
        eks.associate_access_policy(
            clusterName="gov-eks", principalArn=role, policyArn=VIEW, accessScope={"type": "cluster"}
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
