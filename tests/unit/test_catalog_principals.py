"""What the configuration check can say offline about principals EKS would refuse.

EKS takes an access entry only for a role or user that exists at exactly its ARN. Whether it
exists only IAM knows (the grant then fails with the path rule: tests/integration/
test_principal_paths.py), but an Identity Center role without its /aws-reserved/ path and a
service-linked role are wrong on their face, and are refused when the file loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_jit.server.config import ConfigError, load_catalog
from tests.support import EXAMPLE_CONFIG

SSO_NAME = "AWSReservedSSO_AdministratorAccess_1f9ff11932198c00"


def config_with_principal(tmp_path: Path, arn: str) -> Path:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    raw["principals"].append({"name": "sso-admin", "arn": arn, "kind": "human"})
    path = tmp_path / "eks-jit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::111122223333:role/{SSO_NAME}",  # the session ARN's role, path dropped
        f"arn:aws:iam::111122223333:role/sso.amazonaws.com/{SSO_NAME}",
        f"arn:aws:iam::111122223333:role/eu-west-1/{SSO_NAME}",
    ],
)
def test_an_identity_center_role_without_its_path_is_refused_with_the_rule(tmp_path: Path, arn: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_catalog(config_with_principal(tmp_path, arn))
    message = str(excinfo.value)
    assert "IAM Identity Center role without its path" in message
    assert "/aws-reserved/sso.amazonaws.com/" in message
    assert f"aws iam get-role --role-name {SSO_NAME}" in message


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/{SSO_NAME}",
        f"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_NAME}",
    ],
)
def test_an_identity_center_role_with_its_path_loads(tmp_path: Path, arn: str) -> None:
    catalog = load_catalog(config_with_principal(tmp_path, arn))
    assert catalog.principal(arn) is not None


def test_a_service_linked_role_is_refused(tmp_path: Path) -> None:
    arn = "arn:aws:iam::111122223333:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS"
    with pytest.raises(ConfigError, match="service-linked role: EKS access entries do not support them"):
        load_catalog(config_with_principal(tmp_path, arn))


GATEWAY_SCOPE = "  gateway:\n    description: x\n    level: cluster\n    access_policies: [AmazonEKSViewPolicy]\n"


def test_a_scope_named_gateway_is_refused_its_group_is_the_gateways_own(tmp_path: Path) -> None:
    path = tmp_path / "eks-jit.yaml"
    path.write_text(EXAMPLE_CONFIG.read_text().replace("scopes:\n", "scopes:\n" + GATEWAY_SCOPE, 1))
    (tmp_path / "policies.cedar").write_text((EXAMPLE_CONFIG.parent / "policies.cedar").read_text())
    with pytest.raises(ConfigError, match="scope 'gateway' is reserved"):
        load_catalog(path)
