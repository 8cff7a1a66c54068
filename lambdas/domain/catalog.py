"""The scope catalog, the cluster registry and the principal registry: one validated file.

A *scope* names what EKS grants: EKS access policies with a namespace or cluster access
scope, and/or Kubernetes groups bound in-cluster by RBAC that eks-jit renders. A Kubernetes
group is a cluster-wide name, so a namespaced RBAC scope becomes one group per
(scope, namespace): ``eks-jit:rollout-restart:payments``; a grant adds only its own.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from lambdas.domain.durations import Duration

ACCESS_POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
GROUP_PREFIX = "eks-jit"
MANAGED_TAG = "eks-jit:managed"

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
ClusterName = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
IamArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9_+=,.@/-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(StrEnum):
    NAMESPACE = "namespace"
    CLUSTER = "cluster"


class PolicyRule(Strict):
    """One RBAC rule, as in a Kubernetes Role."""

    apiGroups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...] = Field(min_length=1)


class Scope(Strict):
    """A named bundle of EKS permissions."""

    description: str
    level: Level = Level.NAMESPACE
    access_policies: tuple[str, ...] = ()
    rbac: tuple[PolicyRule, ...] = ()

    @field_validator("access_policies", mode="before")
    @classmethod
    def _full_arn(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(v if str(v).startswith("arn:") else ACCESS_POLICY_PREFIX + str(v) for v in value)
        return value

    @model_validator(mode="after")
    def _grants_something(self) -> Scope:
        if not self.access_policies and not self.rbac:
            raise ValueError("a scope needs access_policies, rbac rules, or both")
        for arn in self.access_policies:
            if not arn.startswith(ACCESS_POLICY_PREFIX):
                raise ValueError(f"'{arn}' is not an EKS access policy ARN")
        return self


class Cluster(Strict):
    """A cluster eks-jit may grant access to, with the attributes policies can test."""

    account: AccountId
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
    environment: Name
    namespaces: tuple[Name, ...] = Field(min_length=1)
    role_arn: IamArn | None = None  # assumed for cross-account clusters; None = same account
    tags: dict[str, str] = Field(default_factory=dict)

    def arn(self, name: str) -> str:
        return f"arn:aws:eks:{self.region}:{self.account}:cluster/{name}"


class Principal(Strict):
    """Someone (an agent's role or a person's role/user) policies can talk about."""

    name: Name
    arn: IamArn
    kind: Literal["agent", "human"]
    groups: tuple[Name, ...] = ()
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    """Where approval requests for this approver are emailed (an SNS subscription filtered on
    the approver's name); humans only."""


class Settings(Strict):
    """Bounds that hold whatever a policy says."""

    min_duration: Duration = timedelta(minutes=5)
    max_duration: Duration = timedelta(hours=12)
    admins: tuple[IamArn, ...] = ()  # may read, list and revoke any grant
    auditors: tuple[IamArn, ...] = ()  # may read every grant, its events and activity (read-only)


class SlackConfig(Strict):
    """Slack approvals: the channel requests are posted to and who the Slack users are."""

    enabled: bool = False
    channel: str = ""
    users: dict[Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,20}$")], Name] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _channel_when_enabled(self) -> SlackConfig:
        if self.enabled and not self.channel:
            raise ValueError("slack.channel is required when slack is enabled")
        return self


class Catalog(Strict):
    """Everything eks-jit knows about clusters, scopes and principals, validated together."""

    settings: Settings = Settings()
    clusters: dict[ClusterName, Cluster] = Field(min_length=1)
    scopes: dict[Name, Scope] = Field(min_length=1)
    principals: tuple[Principal, ...] = ()
    policies: str  # path of the Cedar policy file, relative to the configuration file
    slack: SlackConfig = SlackConfig()

    @model_validator(mode="after")
    def _unique_principals(self) -> Catalog:
        seen: set[str] = set()
        for p in self.principals:
            for key in (p.name, p.arn):
                if key in seen:
                    raise ValueError(f"principal '{key}' is listed twice")
                seen.add(key)
        names = {p.name for p in self.principals}
        for user, name in self.slack.users.items():
            if name not in names:
                raise ValueError(f"slack.users.{user} names unknown principal '{name}'")
        return self

    def principal(self, arn: str) -> Principal | None:
        return next((p for p in self.principals if p.arn == arn), None)

    def groups_of(self, arn: str) -> tuple[str, ...]:
        found = self.principal(arn)
        return found.groups if found else ()

    def is_human(self, arn: str) -> bool:
        found = self.principal(arn)
        return found is not None and found.kind == "human"

    def members(self, approvers: tuple[str, ...]) -> list[Principal]:
        """The humans an approver set (ARNs and ``group:<name>``) names, in registry order."""
        groups = {a[6:] for a in approvers if a.startswith("group:")}
        return [
            p for p in self.principals if p.kind == "human" and (p.arn in approvers or groups.intersection(p.groups))
        ]

    def slack_principal(self, user_id: str) -> Principal | None:
        name = self.slack.users.get(user_id)
        return next((p for p in self.principals if p.name == name), None) if name else None


def kubernetes_group(scope: str, namespace: str | None) -> str:
    """The group a grant of ``scope`` in ``namespace`` adds to the access entry."""
    return f"{GROUP_PREFIX}:{scope}:{namespace}" if namespace else f"{GROUP_PREFIX}:{scope}"
