"""Configuration, validated once per container: the environment (where things are) and the
configuration file (clusters, scopes, principals, policies). Nothing else reads os.environ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .domain.catalog import Catalog

if TYPE_CHECKING:
    from .domain.policy import PolicySet


class ConfigError(ValueError):
    """The configuration file or the environment is not usable; the message says why."""


class Environment(BaseModel):
    """What the deployment tells a function through its environment variables."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    table_name: str = Field(alias="EKS_JIT_TABLE")
    config_path: Path = Field(alias="EKS_JIT_CONFIG")
    schedule_group: str = Field(default="eks-jit", alias="EKS_JIT_SCHEDULE_GROUP")
    revoke_target_arn: str = Field(default="", alias="EKS_JIT_REVOKE_TARGET_ARN")
    scheduler_role_arn: str = Field(default="", alias="EKS_JIT_SCHEDULER_ROLE_ARN")
    revoke_dlq_arn: str | None = Field(default=None, alias="EKS_JIT_REVOKE_DLQ_ARN")
    state_machine_arn: str = Field(default="", alias="EKS_JIT_STATE_MACHINE_ARN")
    approvals_topic_arn: str = Field(default="", alias="EKS_JIT_APPROVALS_TOPIC_ARN")
    outcomes_topic_arn: str = Field(default="", alias="EKS_JIT_OUTCOMES_TOPIC_ARN")
    link_key_secret: str = Field(default="", alias="EKS_JIT_LINK_KEY_SECRET")
    slack_secret: str = Field(default="", alias="EKS_JIT_SLACK_SECRET")
    slack_api_url: str | None = Field(default=None, alias="EKS_JIT_SLACK_API_URL")  # local fake Slack only
    public_url: str = Field(default="", alias="EKS_JIT_PUBLIC_URL")
    # eks-jit's data-path gateway, for the connection of grants on gateway clusters: its base URL
    # (each cluster below /clusters/<name>) and its CA certificate (base64 PEM; empty: publicly trusted)
    gateway_endpoint: str = Field(default="", alias="EKS_JIT_GATEWAY_ENDPOINT", pattern=r"^(https://\S+)?$")
    gateway_ca: str = Field(default="", alias="EKS_JIT_GATEWAY_CA", pattern=r"^[A-Za-z0-9+/=]*$")
    # the gateway function: a stream (watch, logs -f) ends by then, before the invocation's own timeout
    gateway_stream_limit_seconds: float | None = Field(default=None, alias="EKS_JIT_GATEWAY_STREAM_LIMIT_SECONDS", gt=0)
    # one held command's approval (POST /v1/holds): the API takes it only from the gateway's role, and
    # the gateway calls the API at this base URL (the stage's, e.g. https://id.execute-api.../v1 without /v1)
    gateway_role_arn: str = Field(
        default="", alias="EKS_JIT_GATEWAY_ROLE_ARN", pattern=r"^(arn:aws[\w-]*:iam::\d{12}:role/\S+)?$"
    )
    api_url: str = Field(default="", alias="EKS_JIT_API_URL", pattern=r"^(https?://\S+)?$")
    region: str = Field(default="us-east-1", alias="AWS_REGION")
    endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")


def read_environment(environ: dict[str, str]) -> Environment:
    try:
        return Environment.model_validate(environ)
    except ValidationError as exc:
        raise ConfigError(f"environment: {exc}") from exc


def _read(path: Path) -> Any:
    """JSON or YAML, by the suffix. (The Lambda bundle ships the file as written, YAML by default:
    PyYAML then loads on the first invocation, about 15 ms; docs/decisions.md, "Cold start".)"""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate the configuration file (clusters, scopes, principals, settings)."""
    path = Path(path)
    try:
        raw = _read(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def load_policies(path: Path | str, catalog: Catalog) -> PolicySet:
    """Read and validate the Cedar policy file the configuration at ``path`` names."""
    from .domain.policy import PolicyError, PolicySet

    policy_path = Path(path).parent / catalog.policies
    try:
        return PolicySet(policy_path.read_text(), catalog)
    except (OSError, PolicyError) as exc:
        raise ConfigError(f"{policy_path}: {exc}") from exc


def load_config(path: Path | str) -> tuple[Catalog, PolicySet]:
    """The configuration file and its policies, both validated (tests, synth, local mode)."""
    catalog = load_catalog(path)
    return catalog, load_policies(path, catalog)
