"""The EKS access-entry emulation, exercised through plain boto3 clients only.

Most tests run twice through the ``eks`` fixture: in-process under ``mock_aws()`` and
against a ``ThreadedMotoServer`` (real HTTP, so path encoding and routing are exercised).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.eks import urls as eks_urls
from moto.eks.responses import EKSResponse
from moto.server import ThreadedMotoServer

from eks_jit.emulation import eks_access_entries, register
from eks_jit.local.authenticator import seen_by_authenticator
from eks_jit.local.resources import create_principals
from tests.support import race

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CLUSTER = "jit"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/agents/jit-agent"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/reviewer"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-node"
POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/{}"
VIEW = POLICY_ARN.format("AmazonEKSViewPolicy")
EDIT = POLICY_ARN.format("AmazonEKSEditPolicy")
ADMIN = POLICY_ARN.format("AmazonEKSAdminPolicy")
CLUSTER_ADMIN = POLICY_ARN.format("AmazonEKSClusterAdminPolicy")
# moto's identity for access keys it didn't issue: "arn:aws:sts::<account>:user/moto".
MOTO_CALLER = f"arn:aws:iam::{ACCOUNT}:user/moto"
AGENTS = [f"arn:aws:iam::{ACCOUNT}:role/agent-{index}" for index in range(7)]
# EKS refuses an entry for a principal that does not exist in IAM at exactly its ARN.
EXISTING = (ROLE, OTHER_ROLE, USER, NODE_ROLE, *AGENTS)
ENTRY_ARN_PATTERN = (
    rf"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{CLUSTER}/role/{ACCOUNT}/jit-agent/"
    r"[0-9a-f-]{36}"
)

EKSClient = Any  # botocore clients are generated at run time


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server_endpoint() -> Iterator[str]:
    register()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def reset_server(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def server_client(endpoint: str) -> EKSClient:
    return boto3.client(
        "eks",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(params=["in_process", "server"])
def eks(request: pytest.FixtureRequest) -> Iterator[EKSClient]:
    register()
    if request.param == "in_process":
        with mock_aws():
            create_principals(EXISTING, region=REGION)
            yield boto3.client("eks", region_name=REGION)
    else:
        endpoint = request.getfixturevalue("server_endpoint")
        reset_server(endpoint)
        create_principals(EXISTING, region=REGION, endpoint_url=endpoint)
        yield server_client(endpoint)


# --------------------------------------------------------------------------- helpers


def make_cluster(
    eks: EKSClient, mode: str | None = "API", bootstrap: bool = False, name: str = CLUSTER
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if mode is not None:
        kwargs["accessConfig"] = {
            "authenticationMode": mode,
            "bootstrapClusterCreatorAdminPermissions": bootstrap,
        }
    return eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
        **kwargs,
    )["cluster"]


@contextmanager
def raises(code: str, status: int) -> Iterator[None]:
    with pytest.raises(ClientError) as excinfo:
        yield
    response = excinfo.value.response
    assert response["Error"]["Code"] == code, response["Error"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status


def associated(eks: EKSClient, principal: str = ROLE) -> dict[str, dict[str, Any]]:
    policies = eks.list_associated_access_policies(clusterName=CLUSTER, principalArn=principal)
    return {p["policyArn"]: p for p in policies["associatedAccessPolicies"]}


def entries(eks: EKSClient, **kwargs: Any) -> list[str]:
    return eks.list_access_entries(clusterName=CLUSTER, **kwargs)["accessEntries"]


# --------------------------------------------------------------------------- entries


def test_access_entry_lifecycle(eks: EKSClient) -> None:
    make_cluster(eks)
    created = eks.create_access_entry(
        clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["viewers"], tags={"team": "a"}
    )["accessEntry"]
    assert created["clusterName"] == CLUSTER
    assert created["principalArn"] == ROLE
    assert created["type"] == "STANDARD"
    assert created["kubernetesGroups"] == ["viewers"]
    assert created["tags"] == {"team": "a"}
    assert created["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-agent/{{{{SessionName}}}}"
    assert created["createdAt"] == created["modifiedAt"]
    assert created["createdAt"].tzinfo is not None
    assert re.fullmatch(ENTRY_ARN_PATTERN, created["accessEntryArn"])

    assert eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)["accessEntry"] == (created)
    assert entries(eks) == [ROLE]

    time.sleep(0.01)  # timestamps have millisecond precision
    updated = eks.update_access_entry(
        clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["editors"], username="agent:x"
    )["accessEntry"]
    assert updated["kubernetesGroups"] == ["editors"]
    assert updated["username"] == "agent:x"
    assert updated["createdAt"] == created["createdAt"]
    assert updated["modifiedAt"] > created["modifiedAt"]

    # Real UpdateAccessEntry sets both fields: what the request omits goes back to its default.
    reset = eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE)["accessEntry"]
    assert reset["kubernetesGroups"] == []
    assert reset["username"] == created["username"]

    eks.delete_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with raises("ResourceNotFoundException", 404):
        eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with raises("ResourceNotFoundException", 404):
        eks.delete_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    assert entries(eks) == []


def test_update_resets_the_field_it_omits(eks: EKSClient) -> None:
    """terraform-provider-aws#36484: "omitting certain fields will not keep them as-is, but
    replace it with the default that AWS has". A caller that sends only the groups loses a
    custom username, and one that sends only the username loses the groups."""
    make_cluster(eks)
    default = eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["viewers"])[
        "accessEntry"
    ]["username"]
    eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["viewers"], username="agent:x")

    only_groups = eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["editors"])
    assert only_groups["accessEntry"]["username"] == default
    eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["editors"], username="agent:x")

    only_username = eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, username="agent:y")
    assert only_username["accessEntry"]["kubernetesGroups"] == []
    described = eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)["accessEntry"]
    assert (described["kubernetesGroups"], described["username"]) == ([], "agent:y")

    both = eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["a", "b"], username="u:1")
    assert (both["accessEntry"]["kubernetesGroups"], both["accessEntry"]["username"]) == (["a", "b"], "u:1")


def test_update_of_a_node_entry_keeps_what_eks_set(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=NODE_ROLE, type="EC2_LINUX")
    updated = eks.update_access_entry(clusterName=CLUSTER, principalArn=NODE_ROLE)["accessEntry"]
    assert updated["username"] == "system:node:{{EC2PrivateDNSName}}"


def test_default_usernames(eks: EKSClient) -> None:
    make_cluster(eks)

    def username(principal: str, **kwargs: Any) -> str:
        entry = eks.create_access_entry(clusterName=CLUSTER, principalArn=principal, **kwargs)
        return entry["accessEntry"]["username"]

    assert username(USER) == USER
    assert username(OTHER_ROLE) == f"arn:aws:sts::{ACCOUNT}:assumed-role/reviewer/{{{{SessionName}}}}"
    assert username(NODE_ROLE, type="EC2_LINUX") == "system:node:{{EC2PrivateDNSName}}"


def test_duplicate_principal_is_refused(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with raises("ResourceInUseException", 409):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, type="STANDARD")


def test_racing_creates_of_one_principal_make_one_entry(eks: EKSClient) -> None:
    # EKS checks and creates an entry atomically: of two racing creates one gets
    # ResourceInUseException. moto's dicts are unlocked, so without the emulation's own lock
    # both could pass the check, and a concurrent list could fail mid-iteration.
    make_cluster(eks)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads far more often than a loaded machine does
    try:
        for _ in range(15):
            create = lambda: outcome(lambda: eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE))  # noqa: E731
            listing = lambda: outcome(lambda: entries(eks))  # noqa: E731
            outcomes = race(create, create, create, create, listing, listing)
            assert sorted(outcomes[:4]) == ["ResourceInUseException"] * 3 + ["ok"], outcomes
            assert outcomes[4:] == ["ok", "ok"], outcomes
            eks.delete_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    finally:
        sys.setswitchinterval(interval)


def outcome(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    except Exception as error:
        return repr(error)
    return "ok"


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-agent/session-1",
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS",
        f"arn:aws:iam::{ACCOUNT}:group/admins",
        "arn:aws:iam::12345:role/short-account",
        "not-an-arn",
    ],
)
def test_principal_must_be_an_iam_role_or_user(eks: EKSClient, principal: str) -> None:
    make_cluster(eks)
    with raises("InvalidParameterException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=principal)


def test_reserved_groups_and_usernames_are_refused(eks: EKSClient) -> None:
    make_cluster(eks)
    with raises("InvalidParameterException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["system:masters"])
    for reserved in ("system:admin", "eks:agent", "aws:x", "amazon:x", "iam:x", "dev{{SessionName}}"):
        with raises("InvalidParameterException", 400):
            eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, username=reserved)

    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, username="dev:{{SessionName}}")
    with raises("InvalidParameterException", 400):
        eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["system:nodes"])


def test_node_entry_types_take_no_groups_username_or_policies(eks: EKSClient) -> None:
    make_cluster(eks)
    with raises("InvalidParameterException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=NODE_ROLE, type="EC2_LINUX", kubernetesGroups=["a"])
    with raises("InvalidParameterException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=USER, type="EC2_LINUX")
    with raises("InvalidParameterException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn="arn:aws:iam::210987654321:role/n", type="EC2_LINUX")
    with raises("InvalidParameterException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=NODE_ROLE, type="BOGUS")

    node = eks.create_access_entry(clusterName=CLUSTER, principalArn=NODE_ROLE, type="FARGATE_LINUX")
    assert node["accessEntry"]["username"] == "system:node:{{SessionName}}"
    with raises("InvalidParameterException", 400):
        eks.associate_access_policy(
            clusterName=CLUSTER,
            principalArn=NODE_ROLE,
            policyArn=VIEW,
            accessScope={"type": "cluster"},
        )
    with raises("InvalidParameterException", 400):
        eks.update_access_entry(clusterName=CLUSTER, principalArn=NODE_ROLE, username="n:x")


def test_missing_cluster_is_not_found(eks: EKSClient) -> None:
    with raises("ResourceNotFoundException", 404):
        eks.create_access_entry(clusterName="nope", principalArn=ROLE)
    with raises("ResourceNotFoundException", 404):
        eks.list_access_entries(clusterName="nope")


def test_entry_limit_per_cluster(eks: EKSClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eks_access_entries, "MAX_ACCESS_ENTRIES_PER_CLUSTER", 2)
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=USER)
    with raises("ResourceLimitExceededException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=OTHER_ROLE)


# --------------------------------------------------------------------------- policies


def test_access_scope_rules(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    invalid = [
        (VIEW, {"type": "namespace"}),
        (VIEW, {"type": "namespace", "namespaces": []}),
        (VIEW, {"type": "cluster", "namespaces": ["default"]}),
        (VIEW, {"type": "everything"}),
        (POLICY_ARN.format("AmazonEKSMadeUpPolicy"), {"type": "cluster"}),
        (POLICY_ARN.format("AmazonEKSComputePolicy"), {"type": "cluster"}),
        ("arn:aws:iam::aws:policy/AdministratorAccess", {"type": "cluster"}),
    ]
    for policy_arn, scope in invalid:
        with raises("InvalidParameterException", 400):
            eks.associate_access_policy(clusterName=CLUSTER, principalArn=ROLE, policyArn=policy_arn, accessScope=scope)
    assert associated(eks) == {}


def test_reassociating_replaces_the_scope(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    first = eks.associate_access_policy(
        clusterName=CLUSTER,
        principalArn=ROLE,
        policyArn=EDIT,
        accessScope={"type": "namespace", "namespaces": ["team-a", "team-b"]},
    )
    assert first["clusterName"] == CLUSTER
    assert first["principalArn"] == ROLE
    original = first["associatedAccessPolicy"]
    assert original["accessScope"] == {"type": "namespace", "namespaces": ["team-a", "team-b"]}

    time.sleep(0.01)
    eks.associate_access_policy(
        clusterName=CLUSTER,
        principalArn=ROLE,
        policyArn=EDIT,
        accessScope={"type": "namespace", "namespaces": ["team-c"]},
    )
    replaced = associated(eks)[EDIT]
    assert replaced["accessScope"] == {"type": "namespace", "namespaces": ["team-c"]}
    assert replaced["associatedAt"] == original["associatedAt"]
    assert replaced["modifiedAt"] > original["modifiedAt"]

    eks.associate_access_policy(clusterName=CLUSTER, principalArn=ROLE, policyArn=EDIT, accessScope={"type": "cluster"})
    assert associated(eks)[EDIT]["accessScope"] == {"type": "cluster", "namespaces": []}
    assert list(associated(eks)) == [EDIT]


def test_disassociating_an_unassociated_policy_is_not_found(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with raises("ResourceNotFoundException", 404):
        eks.disassociate_access_policy(clusterName=CLUSTER, principalArn=ROLE, policyArn=VIEW)
    with raises("ResourceNotFoundException", 404):
        eks.disassociate_access_policy(clusterName=CLUSTER, principalArn=USER, policyArn=VIEW)

    eks.associate_access_policy(clusterName=CLUSTER, principalArn=ROLE, policyArn=VIEW, accessScope={"type": "cluster"})
    eks.disassociate_access_policy(clusterName=CLUSTER, principalArn=ROLE, policyArn=VIEW)
    assert associated(eks) == {}


def test_deleting_an_entry_removes_its_associations(eks: EKSClient) -> None:
    make_cluster(eks)
    for principal in (ROLE, USER):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=principal)
    eks.associate_access_policy(clusterName=CLUSTER, principalArn=ROLE, policyArn=VIEW, accessScope={"type": "cluster"})
    assert entries(eks, associatedPolicyArn=VIEW) == [ROLE]

    eks.delete_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    assert entries(eks, associatedPolicyArn=VIEW) == []
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    assert associated(eks) == {}
    assert entries(eks, associatedPolicyArn=VIEW) == []
    with raises("InvalidParameterException", 400):
        entries(eks, associatedPolicyArn=POLICY_ARN.format("Nope"))


def test_list_associated_access_policies_paginates(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    for policy_arn in (VIEW, EDIT, ADMIN):
        eks.associate_access_policy(
            clusterName=CLUSTER,
            principalArn=ROLE,
            policyArn=policy_arn,
            accessScope={"type": "namespace", "namespaces": ["a"]},
        )
    paginator = eks.get_paginator("list_associated_access_policies")
    pages = list(paginator.paginate(clusterName=CLUSTER, principalArn=ROLE, PaginationConfig={"PageSize": 2}))
    assert [len(page["associatedAccessPolicies"]) for page in pages] == [2, 1]
    listed = [p["policyArn"] for page in pages for p in page["associatedAccessPolicies"]]
    assert listed == sorted([VIEW, EDIT, ADMIN])


def test_list_access_policies(eks: EKSClient) -> None:
    policies = eks.list_access_policies()["accessPolicies"]
    by_name = {policy["name"]: policy["arn"] for policy in policies}
    for name in (
        "AmazonEKSClusterAdminPolicy",
        "AmazonEKSAdminPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSViewPolicy",
    ):
        assert by_name[name] == POLICY_ARN.format(name)
    first = eks.list_access_policies(maxResults=2)
    assert len(first["accessPolicies"]) == 2
    rest = eks.list_access_policies(nextToken=first["nextToken"])["accessPolicies"]
    assert first["accessPolicies"] + rest == policies


# --------------------------------------------------------------------------- tags


def test_access_entry_tags(eks: EKSClient) -> None:
    cluster_arn = make_cluster(eks)["arn"]
    entry = eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, tags={"team": "a", "env": "dev"})[
        "accessEntry"
    ]
    entry_arn = entry["accessEntryArn"]
    assert eks.list_tags_for_resource(resourceArn=entry_arn)["tags"] == {"team": "a", "env": "dev"}

    eks.tag_resource(resourceArn=entry_arn, tags={"team": "b", "grant": "g-1"})
    expected = {"team": "b", "env": "dev", "grant": "g-1"}
    assert eks.list_tags_for_resource(resourceArn=entry_arn)["tags"] == expected
    described = eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)["accessEntry"]
    assert described["tags"] == expected

    eks.untag_resource(resourceArn=entry_arn, tagKeys=["env", "grant"])
    assert eks.list_tags_for_resource(resourceArn=entry_arn)["tags"] == {"team": "b"}

    # Cluster ARNs keep moto's own tagging.
    eks.tag_resource(resourceArn=cluster_arn, tags={"owner": "jit"})
    assert eks.list_tags_for_resource(resourceArn=cluster_arn)["tags"] == {"owner": "jit"}

    eks.delete_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with raises("NotFoundException", 404):
        eks.list_tags_for_resource(resourceArn=entry_arn)


# --------------------------------------------------------------------------- clusters


def test_config_map_cluster_refuses_access_entries(eks: EKSClient) -> None:
    cluster = make_cluster(eks, mode=None)
    assert cluster["accessConfig"]["authenticationMode"] == "CONFIG_MAP"
    described = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert described["accessConfig"]["authenticationMode"] == "CONFIG_MAP"
    with raises("InvalidRequestException", 400):
        eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with raises("InvalidRequestException", 400):
        eks.list_access_entries(clusterName=CLUSTER)

    update = eks.update_cluster_config(name=CLUSTER, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})[
        "update"
    ]
    assert update["type"] == "AccessConfigUpdate"
    assert update["params"] == [{"type": "AuthenticationMode", "value": "API_AND_CONFIG_MAP"}]
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)

    with raises("InvalidParameterException", 400):
        eks.update_cluster_config(name=CLUSTER, accessConfig={"authenticationMode": "CONFIG_MAP"})
    eks.update_cluster_config(name=CLUSTER, accessConfig={"authenticationMode": "API"})
    described = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert described["accessConfig"]["authenticationMode"] == "API"
    with raises("InvalidParameterException", 400):
        eks.update_cluster_config(name=CLUSTER, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    assert entries(eks) == [ROLE]


def test_cluster_access_config_validation(eks: EKSClient) -> None:
    with raises("InvalidParameterException", 400):
        make_cluster(eks, mode="CONFIG_MAP", bootstrap=False)
    with raises("InvalidParameterException", 400):
        make_cluster(eks, mode="OIDC")
    with raises("ResourceNotFoundException", 404):
        eks.describe_cluster(name=CLUSTER)


def test_cluster_creator_gets_an_admin_entry(eks: EKSClient) -> None:
    make_cluster(eks, mode="API_AND_CONFIG_MAP", bootstrap=True)
    assert entries(eks) == [MOTO_CALLER]
    admin = associated(eks, MOTO_CALLER)[CLUSTER_ADMIN]
    assert admin["accessScope"] == {"type": "cluster", "namespaces": []}


def test_deleting_the_cluster_discards_its_entries(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    eks.delete_cluster(name=CLUSTER)
    make_cluster(eks)
    assert entries(eks) == []


def test_list_access_entries_paginates(eks: EKSClient) -> None:
    make_cluster(eks)
    principals = AGENTS
    for principal in principals:
        eks.create_access_entry(clusterName=CLUSTER, principalArn=principal)

    first = eks.list_access_entries(clusterName=CLUSTER, maxResults=3)
    assert first["accessEntries"] == principals[:3]
    # The token survives the next item being deleted between pages.
    eks.delete_access_entry(clusterName=CLUSTER, principalArn=principals[3])
    second = eks.list_access_entries(clusterName=CLUSTER, maxResults=3, nextToken=first["nextToken"])
    assert second["accessEntries"] == principals[4:7]
    assert "nextToken" not in second

    pages = eks.get_paginator("list_access_entries").paginate(clusterName=CLUSTER, PaginationConfig={"PageSize": 2})
    listed = [principal for page in pages for principal in page["accessEntries"]]
    assert listed == principals[:3] + principals[4:]

    with raises("InvalidParameterException", 400):
        eks.list_access_entries(clusterName=CLUSTER, nextToken="not-a-token")


# --------------------------------------------------------------------------- state & setup


def test_state_is_reset_between_mock_aws_contexts() -> None:
    register()
    with mock_aws():
        create_principals([ROLE], region=REGION)
        eks = boto3.client("eks", region_name=REGION)
        make_cluster(eks)
        eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    with mock_aws():
        eks = boto3.client("eks", region_name=REGION)
        with raises("ResourceNotFoundException", 404):
            eks.list_access_entries(clusterName=CLUSTER)
        make_cluster(eks)
        assert entries(eks) == []


def test_state_is_reset_by_the_server_reset(server_endpoint: str) -> None:
    reset_server(server_endpoint)
    create_principals([ROLE], region=REGION, endpoint_url=server_endpoint)
    eks = server_client(server_endpoint)
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    reset_server(server_endpoint)
    with raises("ResourceNotFoundException", 404):
        eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)


def test_state_is_per_region(eks: EKSClient) -> None:
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    other_region = boto3.client(
        "eks",
        region_name="us-east-1",
        endpoint_url=eks.meta.endpoint_url.replace(REGION, "us-east-1"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with raises("ResourceNotFoundException", 404):
        other_region.list_access_entries(clusterName=CLUSTER)


def test_register_is_idempotent() -> None:
    register()
    snapshot = dict(eks_urls.url_paths)
    register()
    assert eks_urls.url_paths == snapshot
    handlers = {getattr(handler, "__self__", None) for handler in snapshot.values()}
    assert handlers == {eks_access_entries.AccessEntryResponse}
    assert EKSResponse not in handlers
    for route in eks_access_entries.ROUTES:
        assert route in snapshot


# --------------------------------------------------------------------------- principals exist


SSO_ROLE_NAME = "AWSReservedSSO_AdministratorAccess_1f9ff11932198c00"
SSO_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE_NAME}"
CROSS_ACCOUNT = "444455556666"


def refused_as_invalid_principal(eks: EKSClient, principal: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        eks.create_access_entry(clusterName=CLUSTER, principalArn=principal)
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterException",
        "The specified principalArn is invalid: invalid principal.",
    )


def iam_of(eks: EKSClient) -> Any:
    return boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=eks.meta.endpoint_url if "127.0.0.1" in eks.meta.endpoint_url else None,
    )


def test_a_principal_that_does_not_exist_is_refused(eks: EKSClient) -> None:
    make_cluster(eks)
    refused_as_invalid_principal(eks, f"arn:aws:iam::{ACCOUNT}:role/never-created")
    refused_as_invalid_principal(eks, f"arn:aws:iam::{ACCOUNT}:user/never-created")
    assert entries(eks) == []


def test_the_path_must_be_exactly_the_principals(eks: EKSClient) -> None:
    """terraform-aws-eks#2969: an Identity Center role named without its /aws-reserved/ path."""
    make_cluster(eks)
    endpoint = eks.meta.endpoint_url if "127.0.0.1" in eks.meta.endpoint_url else None
    create_principals([SSO_ROLE], region=REGION, endpoint_url=endpoint)

    refused_as_invalid_principal(eks, f"arn:aws:iam::{ACCOUNT}:role/{SSO_ROLE_NAME}")
    refused_as_invalid_principal(eks, f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE_NAME}")
    refused_as_invalid_principal(eks, f"arn:aws:iam::{ACCOUNT}:role/jit-agent")  # ROLE lives under /agents/
    refused_as_invalid_principal(eks, f"arn:aws:iam::{ACCOUNT}:role/alice")  # alice is a user, not a role
    assert entries(eks) == []

    eks.create_access_entry(clusterName=CLUSTER, principalArn=SSO_ROLE)
    assert entries(eks) == [SSO_ROLE]


def test_a_principal_of_another_account_must_exist_there(eks: EKSClient) -> None:
    """STANDARD entries may name another account's principal (User Guide); that account's IAM
    is the one that knows whether it exists."""
    make_cluster(eks)
    endpoint = eks.meta.endpoint_url if "127.0.0.1" in eks.meta.endpoint_url else None
    elsewhere = f"arn:aws:iam::{CROSS_ACCOUNT}:role/agents/jit-agent"
    refused_as_invalid_principal(eks, elsewhere)  # same path and name exist, but in ACCOUNT

    create_principals([elsewhere], region=REGION, endpoint_url=endpoint)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=elsewhere)
    assert entries(eks) == [elsewhere]


# --------------------------------------------------------------------------- propagation


@pytest.fixture
def propagation() -> Iterator[float]:
    delay = 5.0
    eks_access_entries.set_propagation_delay(delay)
    yield delay
    eks_access_entries.set_propagation_delay(0)


def seen(eks: EKSClient, principal: str, at: Any) -> dict[str, Any]:
    """What the emulated authenticator maps ``principal`` to at ``at``, through the route the
    demo uses (a SigV4-signed GET) against the server, or the module function in-process."""
    if "127.0.0.1" not in eks.meta.endpoint_url:
        mapping = eks_access_entries.authentication(
            CLUSTER, principal, at.astimezone(UTC).replace(tzinfo=None), region=REGION
        )
        if mapping is None:
            return {"authenticated": False}
        return {
            "authenticated": True,
            "kubernetesGroups": list(mapping.kubernetes_groups),
            "accessPolicies": [arn for arn, _ in mapping.access_policies],
        }
    body = seen_by_authenticator(eks.meta.endpoint_url, REGION, CLUSTER, principal, at)
    body["accessPolicies"] = [p["policyArn"] for p in body.get("accessPolicies", [])]
    return dict(body)


def test_access_takes_effect_only_after_the_propagation_delay(eks: EKSClient, propagation: float) -> None:
    make_cluster(eks)
    created = eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["viewers"])
    at = created["accessEntry"]["createdAt"]
    # The API answers at once; the authenticator does not know the entry yet.
    assert eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)["accessEntry"]["kubernetesGroups"] == [
        "viewers"
    ]
    assert seen(eks, ROLE, at)["authenticated"] is False
    assert seen(eks, ROLE, at + timedelta(seconds=propagation - 0.1))["authenticated"] is False
    after = seen(eks, ROLE, at + timedelta(seconds=propagation + 0.01))
    assert after["authenticated"] is True and after["kubernetesGroups"] == ["viewers"]


def test_a_policy_and_a_group_change_lag_too(eks: EKSClient, propagation: float) -> None:
    make_cluster(eks)
    eks_access_entries.set_propagation_delay(0)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["viewers"])
    eks_access_entries.set_propagation_delay(propagation)
    association = eks.associate_access_policy(
        clusterName=CLUSTER, principalArn=ROLE, policyArn=VIEW, accessScope={"type": "namespace", "namespaces": ["a"]}
    )["associatedAccessPolicy"]
    at = association["associatedAt"]
    assert seen(eks, ROLE, at)["accessPolicies"] == []
    assert seen(eks, ROLE, at + timedelta(seconds=propagation + 0.01))["accessPolicies"] == [VIEW]

    changed = eks.update_access_entry(clusterName=CLUSTER, principalArn=ROLE, kubernetesGroups=["editors"])
    changed_at = changed["accessEntry"]["modifiedAt"]
    assert seen(eks, ROLE, changed_at + timedelta(seconds=propagation - 0.1))["kubernetesGroups"] == ["viewers"]
    assert seen(eks, ROLE, changed_at + timedelta(seconds=propagation + 0.01))["kubernetesGroups"] == ["editors"]


def test_revocation_lags_too(eks: EKSClient, propagation: float) -> None:
    """A deleted entry goes on authenticating for the propagation delay: part of the revocation lag."""
    make_cluster(eks)
    eks_access_entries.set_propagation_delay(0)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    eks_access_entries.set_propagation_delay(propagation)
    eks.delete_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    deleted_at = datetime.now(UTC)  # after the call returned: the deletion happened before this
    with raises("ResourceNotFoundException", 404):
        eks.describe_access_entry(clusterName=CLUSTER, principalArn=ROLE)
    assert seen(eks, ROLE, deleted_at)["authenticated"] is True
    assert seen(eks, ROLE, deleted_at + timedelta(seconds=propagation + 0.01))["authenticated"] is False


def test_a_recreated_principal_is_not_mapped_by_the_old_entry(eks: EKSClient) -> None:
    """User Guide: EKS stores the role's id; a principal deleted and created again under the same
    ARN has another id, so the old entry "won't work"."""
    make_cluster(eks)
    eks.create_access_entry(clusterName=CLUSTER, principalArn=OTHER_ROLE)
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert seen(eks, OTHER_ROLE, now)["authenticated"] is True
    iam = iam_of(eks)
    iam.delete_role(RoleName="reviewer")
    assert seen(eks, OTHER_ROLE, now)["authenticated"] is False
    endpoint = eks.meta.endpoint_url if "127.0.0.1" in eks.meta.endpoint_url else None
    create_principals([OTHER_ROLE], region=REGION, endpoint_url=endpoint)
    assert seen(eks, OTHER_ROLE, now)["authenticated"] is False
    assert entries(eks) == [OTHER_ROLE]  # the entry itself stays until someone deletes it
