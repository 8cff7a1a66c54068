"""What a deployment is told through CDK context (``cdk.json`` or ``-c key=value``), validated once.

The eks-jit configuration file itself (clusters, scopes, principals, policies) is loaded with
``eks_jit.server.config.load_config``, the same loader the functions use at cold start, so a file that
does not validate fails ``cdk synth`` with the loader's message and never reaches a live request.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from eks_jit.server.config import ConfigError, load_config
from eks_jit.server.domain.catalog import Catalog
from eks_jit.server.domain.policy import PolicySet

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = "config/example/eks-jit.yaml"
RETENTIONS = (
    "ONE_WEEK",
    "TWO_WEEKS",
    "ONE_MONTH",
    "THREE_MONTHS",
    "SIX_MONTHS",
    "ONE_YEAR",
    "THIRTEEN_MONTHS",
    "EIGHTEEN_MONTHS",
    "TWO_YEARS",
    "FIVE_YEARS",
    "TEN_YEARS",
    "INFINITE",
)


def _listed(value: Any) -> Any:
    """``-c allowed_account_ids=111122223333,444455556666`` arrives as one string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _optional(value: Any) -> Any:
    return None if value in ("", None) else value


AccountId = Annotated[str, Field(pattern=r"^\d{12}$")]
Names = Annotated[tuple[str, ...], BeforeValidator(_listed)]


class DeploySettings(BaseModel):
    """Every knob of the CDK app. Defaults make a working deployment of the example config."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    config: Path = Field(default=Path(DEFAULT_CONFIG), description="the eks-jit configuration file")
    prefix: str = Field(default="eks-jit", pattern=r"^[a-z][a-z0-9-]{1,19}$", description="names of roles/functions")
    schedule_group: str = Field(default="eks-jit", pattern=r"^[0-9a-zA-Z-_.]{1,64}$")
    sweeper_rate_minutes: int = Field(default=1, ge=1, le=60, description="how often the sweeper runs")
    log_retention: str = Field(default="ONE_YEAR", description="a logs.RetentionDays name")
    # The Python of every function and of the dependency layer's wheels (infra/bundling.py,
    # LambdaPython): one value. The project's tests run on 3.11; `make layer-check` builds the layer
    # for the chosen version and imports every handler with it (docs/deploy.md, "Lambda runtime").
    lambda_python: Literal["3.11", "3.12", "3.13"] = Field(default="3.13", description="Lambda runtime python<x>")
    api_throttle_rate: float = Field(default=10, gt=0, le=10_000, description="steady requests per second")
    api_throttle_burst: int = Field(default=20, ge=1, le=5_000)
    # API Gateway's account-wide (per region) CloudWatch Logs role, which stage logging needs. Off:
    # the account already names one (docs/deploy.md step 2). On: this stack creates the role and
    # sets it, both retained on destroy because every REST API of the account and region uses it.
    api_gateway_cloudwatch_role: bool = False
    allowed_org_id: Annotated[str | None, BeforeValidator(_optional)] = Field(
        default=None, pattern=r"^o-[a-z0-9]{10,32}$"
    )
    allowed_account_ids: Annotated[tuple[AccountId, ...], BeforeValidator(_listed)] = ()
    alarm_email: Annotated[str | None, BeforeValidator(_optional)] = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    # Where approval links point: the API stage's URL unless a custom domain fronts the API
    # (e.g. https://eks-jit.example.com, mapped to the stage). Links are <public_url>/v1/approval-links/...
    public_url: Annotated[str | None, BeforeValidator(_optional)] = Field(
        default=None, pattern=r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$"
    )
    # The per-cluster role stacks (EksJitClusterAccessStack): which clusters, and where the
    # control plane whose function roles they trust runs.
    cluster_access: Names = ()
    control_plane_account: Annotated[AccountId | None, BeforeValidator(_optional)] = None
    control_plane_region: Annotated[str | None, BeforeValidator(_optional)] = Field(
        default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$"
    )
    # The data-path gateway (infra/constructs/gateway.py), deployed only when a cluster of the
    # configuration has access_mode gateway. It runs behind the AWS Lambda Web Adapter, an AWS-published
    # layer: LambdaAdapterLayerArm64 version 30 is the one its "Zip Packages" guide lists
    # (aws/aws-lambda-web-adapter, docs/guide/src/getting-started/zip-packages.md). A full ARN replaces
    # the AWS account's layer (China regions publish it from other accounts, x86_64 only; GovCloud not at
    # all: copy the layer into your account and name it here).
    web_adapter_layer_version: int = Field(default=30, ge=1, description="LambdaAdapterLayerArm64 version")
    web_adapter_layer_arn: Annotated[str | None, BeforeValidator(_optional)] = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$"
    )
    # Reserved concurrency of the gateway function: unset (the default) reserves nothing and caps nothing.
    # Set, it is both a floor taken from the account's pool and a ceiling on open kubectl requests and
    # watches (each holds one execution environment); requests past it get 429 (kubectl retries).
    gateway_reserved_concurrency: Annotated[int | None, BeforeValidator(_optional)] = Field(default=None, ge=1, le=1000)

    @field_validator("log_retention")
    @classmethod
    def _known_retention(cls, value: str) -> str:
        if value not in RETENTIONS:
            raise ValueError(f"must be one of {', '.join(RETENTIONS)}")
        return value

    @property
    def config_path(self) -> Path:
        return self.config if self.config.is_absolute() else ROOT / self.config


class Deployment(BaseModel):
    """The settings with the configuration they point at, loaded and validated."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    settings: DeploySettings
    catalog: Catalog
    policies: PolicySet

    @property
    def config_path(self) -> Path:
        return self.settings.config_path


def read_settings(context: dict[str, Any]) -> DeploySettings:
    try:
        return DeploySettings.model_validate(context)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"CDK context: {problems}") from exc


def load_deployment(context: dict[str, Any]) -> Deployment:
    """Read the CDK context and the configuration file it names; ConfigError says what is wrong."""
    settings = read_settings(context)
    catalog, policies = load_config(settings.config_path)
    policy_file = (settings.config_path.parent / catalog.policies).resolve()
    if not policy_file.is_relative_to(settings.config_path.parent.resolve()):
        raise ConfigError(
            f"{settings.config_path}: policies '{catalog.policies}' must be a file in the configuration's "
            "directory or below it, so the two ship together in the function bundle"
        )
    _check_cluster_access(settings, catalog)
    _check_gateway_clusters(catalog)
    _check_approver_emails(settings, catalog)
    return Deployment(settings=settings, catalog=catalog, policies=policies)


def _check_approver_emails(settings: DeploySettings, catalog: Catalog) -> None:
    """SNS keeps one subscription per topic and address, so two approvers sharing an address would
    share one filter policy: one of them would get the other's links, or neither would get theirs."""
    seen: dict[str, str] = {}
    for principal in catalog.principals:
        if principal.kind != "human" or not principal.email:
            continue
        address = principal.email.lower()
        if address in seen:
            raise ConfigError(
                f"{settings.config_path}: principals '{seen[address]}' and '{principal.name}' share the email "
                f"{principal.email}; each approver needs an address of their own (their approval links are "
                "personal)"
            )
        seen[address] = principal.name


def _check_cluster_access(settings: DeploySettings, catalog: Catalog) -> None:
    for name in settings.cluster_access:
        cluster = catalog.clusters.get(name)
        if cluster is None:
            raise ConfigError(f"cluster_access: '{name}' is not a cluster of {settings.config_path}")
        if cluster.role_arn is None:
            raise ConfigError(f"cluster_access: cluster '{name}' has no role_arn: its access needs no role stack")
        role_account = cluster.role_arn.split(":")[4]
        if role_account != cluster.account:
            raise ConfigError(
                f"cluster '{name}': role_arn is in account {role_account} but the cluster is in {cluster.account}; "
                "the role must live in the cluster's account"
            )
    if settings.cluster_access and not (settings.control_plane_account and settings.control_plane_region):
        raise ConfigError(
            "cluster_access needs control_plane_account and control_plane_region (where the EksJit stack runs); "
            "they default to CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION when those are set"
        )


def _check_gateway_clusters(catalog: Catalog) -> None:
    """The gateway's own role needs a static access entry on each gateway cluster, created by this stack
    (AWS::EKS::AccessEntry): CloudFormation creates it in the stack's own account and region. A cluster
    reached through a role in another account would need that entry, and the gateway's DescribeCluster,
    in that account: not built (docs/deploy.md, "Gateway clusters")."""
    for name, cluster in sorted(catalog.clusters.items()):
        if cluster.gateway and cluster.role_arn is not None:
            raise ConfigError(
                f"cluster '{name}': access_mode gateway is not supported for a cluster in another account "
                f"(role_arn {cluster.role_arn}): the gateway's access entry is created by this stack, in its "
                "own account; use access_mode entry for it, or deploy eks-jit in the cluster's account"
            )


def context_of(node_context: dict[str, Any]) -> dict[str, Any]:
    """CDK context plus the CLI's default account/region as control-plane defaults."""
    merged = dict(node_context)
    merged.setdefault("control_plane_account", os.environ.get("CDK_DEFAULT_ACCOUNT"))
    merged.setdefault("control_plane_region", os.environ.get("CDK_DEFAULT_REGION"))
    return merged


def safe_id(name: str) -> str:
    """A CloudFormation-friendly form of a cluster name (stack names allow letters, digits and '-')."""
    return re.sub(r"[^A-Za-z0-9-]", "-", name)
