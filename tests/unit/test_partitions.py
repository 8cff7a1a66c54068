"""Partitions: a cluster's partition comes from its region; the catalog spells access policies one
way whatever the partition it was written in, and refuses what can never cross a partition."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from eks_jit.server.domain.catalog import (
    ACCESS_POLICY_PREFIX,
    Catalog,
    Cluster,
    Scope,
    access_policy_arn,
    canonical_access_policy,
    partition_of,
)

VIEW = ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy"


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-west-1", "aws"),
        ("us-east-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-gov-east-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_a_region_s_partition(region: str, partition: str) -> None:
    assert partition_of(region) == partition
    cluster = Cluster(account="111122223333", region=region, environment="prod", namespaces=("payments",))
    assert cluster.partition == partition
    assert cluster.arn("c") == f"arn:{partition}:eks:{region}:111122223333:cluster/c"


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_access_policies_are_spelled_one_way_and_sent_in_the_cluster_s_partition(partition: str) -> None:
    written = f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    assert canonical_access_policy(written) == canonical_access_policy("AmazonEKSViewPolicy") == VIEW
    assert access_policy_arn(VIEW, partition) == written
    scope = Scope(description="d", access_policies=(written,), read_only=True)  # read_only still knows it
    assert scope.access_policies == (VIEW,)


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_read_only_refuses_an_edit_policy_in_any_partition(partition: str) -> None:
    with pytest.raises(ValidationError, match="AmazonEKSEditPolicy, which is not known to be read-only"):
        Scope(
            description="d",
            access_policies=(f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",),
            read_only=True,
        )


def test_something_that_is_not_an_access_policy_arn_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not an EKS access policy ARN"):
        Scope(description="d", access_policies=("arn:aws-cn:iam::aws:policy/ReadOnlyAccess",))


def _catalog(clusters: dict[str, Any], principal: str = "arn:aws-cn:iam::111122223333:role/agent") -> Catalog:
    return Catalog.model_validate(
        {
            "clusters": clusters,
            "scopes": {"view": {"description": "d", "access_policies": ["AmazonEKSViewPolicy"]}},
            "principals": [{"name": "agent", "arn": principal, "kind": "agent"}],
            "policies": "p.cedar",
        }
    )


CN = {"account": "111122223333", "region": "cn-north-1", "environment": "prod", "namespaces": ["payments"]}


def test_a_catalog_of_one_partition_loads() -> None:
    other = {**CN, "region": "cn-northwest-1", "role_arn": "arn:aws-cn:iam::444455556666:role/eks-jit"}
    assert {c.partition for c in _catalog({"a": CN, "b": {**other, "account": "444455556666"}}).clusters.values()} == {
        "aws-cn"
    }


def test_what_cannot_cross_a_partition_is_refused() -> None:
    with pytest.raises(ValidationError, match="clusters span partitions"):
        _catalog({"a": CN, "b": {**CN, "region": "eu-west-1"}})
    with pytest.raises(ValidationError, match="principal 'agent' is in partition aws, the clusters in aws-cn"):
        _catalog({"a": CN}, principal="arn:aws:iam::111122223333:role/agent")
    with pytest.raises(ValidationError, match="role_arn is in partition aws but region cn-north-1 is in aws-cn"):
        _catalog({"a": {**CN, "role_arn": "arn:aws:iam::111122223333:role/eks-jit"}})
