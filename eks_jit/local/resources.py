"""The AWS resources the CDK stack would create, created against moto (tests, benchmarks,
local mode). The table comes from the same definition the CDK storage construct uses."""

from __future__ import annotations

from typing import Any

import boto3

from lambdas.adapters.table import create_table_kwargs
from lambdas.domain.catalog import Catalog

TABLE = "eks-jit-grants"
SCHEDULE_GROUP = "eks-jit"


def create_resources(
    catalog: Catalog,
    *,
    region: str,
    endpoint_url: str | None = None,
    table: str = TABLE,
    schedule_group: str = SCHEDULE_GROUP,
) -> None:
    def client(service: str, where: str = region) -> Any:
        return boto3.client(service, region_name=where, endpoint_url=endpoint_url)

    client("dynamodb").create_table(**create_table_kwargs(table))
    client("scheduler").create_schedule_group(Name=schedule_group)
    for name, cluster in catalog.clusters.items():
        client("eks", cluster.region).create_cluster(
            name=name,
            roleArn=f"arn:aws:iam::{cluster.account}:role/eks-cluster-role",
            resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]},
            accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"},
        )
