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

from .durations import Duration
from .holds import HELD_SCOPE
from .partitions import partition_of

ACCESS_POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
"""The catalog's one spelling of an EKS access policy ARN (the ``aws`` partition's). The ARN sent to
EKS carries the cluster's partition: :func:`access_policy_arn`, applied by the EKS adapter."""
_ACCESS_POLICY = re.compile(r"^arn:aws(-[a-z]+)*:eks::aws:cluster-access-policy/(?P<name>[A-Za-z0-9]+)$")
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


READ_VERBS = frozenset({"get", "list", "watch"})
# Fields the API server itself changes on every write: a write under ``only_changes`` may always
# touch them (the admission policy and the gateway agree on this list).
SERVER_MANAGED_FIELDS = (("metadata", "managedFields"), ("metadata", "resourceVersion"), ("metadata", "generation"))
WRITE_VERBS_LIMITED = frozenset({"patch", "update"})  # the verbs ``only_changes`` can narrow
# Subresources that run something in a pod or reach into it. A websocket exec is an HTTP GET,
# so even "get" on pods/exec can open a shell (Kubernetes #128743).
POD_ENTRY_SUBRESOURCES = frozenset({"pods/exec", "pods/attach", "pods/portforward", "pods/proxy"})
# EKS access policies that give no Secrets and no exec/attach/port-forward (EKS user guide,
# "Review access policy permissions"): the only ones a read-only scope may use.
READ_ONLY_ACCESS_POLICIES = frozenset({ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy"})


def canonical_access_policy(arn: str) -> str:
    """Any partition's ARN of an EKS access policy (or its bare name) in the catalog's spelling."""
    if not arn.startswith("arn:"):
        return ACCESS_POLICY_PREFIX + arn
    match = _ACCESS_POLICY.match(arn)
    return ACCESS_POLICY_PREFIX + match["name"] if match else arn


def access_policy_arn(arn: str, partition: str) -> str:
    """The catalog's ARN of an access policy as a cluster of ``partition`` names it
    (``arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSViewPolicy``)."""
    return f"arn:{partition}:eks::aws:cluster-access-policy/{canonical_access_policy(arn).rsplit('/', 1)[-1]}"


def arn_partition(arn: str) -> str:
    return arn.split(":", 2)[1]


_SEGMENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*|\["([^"\]]+)"\]')


def parse_field_path(text: str) -> tuple[str, ...]:
    """``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`` -> its
    segments. Fields are separated by dots; a map key (annotations, labels) that holds dots or
    slashes is written in brackets and double quotes. List elements cannot be named."""
    segments: list[str] = []
    position = 0
    while position < len(text):
        if segments and text[position] == ".":
            position += 1
        match = _SEGMENT.match(text, position)
        if match is None:
            raise ValueError(f"'{text}' is not a field path (at character {position + 1})")
        segments.append(match.group(1) if match.group(1) is not None else match.group(0))
        position = match.end()
    if not segments:
        raise ValueError("a field path cannot be empty")
    return tuple(segments)


def format_field_path(segments: tuple[str, ...]) -> str:
    """The inverse of :func:`parse_field_path`."""
    text = ""
    for segment in segments:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", segment):
            text += f".{segment}" if text else segment
        else:
            text += f'["{segment}"]'
    return text


class PolicyRule(Strict):
    """One RBAC rule, as in a Kubernetes Role, optionally narrowed by what its writes may change.

    RBAC cannot say *what* a ``patch`` changes: ``patch deployments`` lets the holder change the
    image, command or service account. ``only_changes`` lists the only fields a patch/update by
    this scope's groups may change; ``eks-jit rbac render`` turns it into a
    ValidatingAdmissionPolicy that refuses any other change in the API server.
    """

    apiGroups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...] = Field(min_length=1)
    resourceNames: tuple[str, ...] = ()
    """As in RBAC: only objects with these names (never a create, a deletecollection or an unnamed list)."""
    only_changes: tuple[str, ...] = ()

    @field_validator("only_changes")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            parse_field_path(path)
        return value

    @model_validator(mode="after")
    def _only_changes_narrows_writes(self) -> PolicyRule:
        if not self.only_changes:
            return self
        verbs = set(self.verbs)
        if not verbs & WRITE_VERBS_LIMITED or not verbs <= READ_VERBS | WRITE_VERBS_LIMITED:
            raise ValueError(
                "only_changes narrows patch/update: the rule's verbs must include patch or update and be "
                f"among {sorted(READ_VERBS | WRITE_VERBS_LIMITED)} (create and delete cannot be narrowed)"
            )
        if any("*" in r or "/" in r for r in self.resources) or any("*" in g for g in self.apiGroups):
            raise ValueError("only_changes needs named resources and API groups (no '*', no subresources)")
        return self

    @property
    def field_paths(self) -> tuple[tuple[str, ...], ...]:
        return tuple(parse_field_path(p) for p in self.only_changes)

    def reaches_into_pods(self) -> bool:
        return any(r in POD_ENTRY_SUBRESOURCES or r in ("*", "pods/*") for r in self.resources) and (
            "" in self.apiGroups or "*" in self.apiGroups
        )

    def reads_secrets(self) -> bool:
        return any(r in ("secrets", "*") for r in self.resources) and ("" in self.apiGroups or "*" in self.apiGroups)


class Scope(Strict):
    """A named bundle of EKS permissions."""

    description: str
    level: Level = Level.NAMESPACE
    access_policies: tuple[str, ...] = ()
    rbac: tuple[PolicyRule, ...] = ()
    read_only: bool = False
    """A promise checked when the catalog loads: only get/list/watch, no Secrets, no
    exec/attach/port-forward/proxy, and only access policies known to hold to that."""

    @field_validator("access_policies", mode="before")
    @classmethod
    def _full_arn(cls, value: object) -> object:
        """Names and every partition's ARNs, in the catalog's one spelling (:data:`ACCESS_POLICY_PREFIX`)."""
        if isinstance(value, list | tuple):
            return tuple(canonical_access_policy(str(v)) for v in value)
        return value

    @model_validator(mode="after")
    def _grants_something(self) -> Scope:
        if not self.access_policies and not self.rbac:
            raise ValueError("a scope needs access_policies, rbac rules, or both")
        for arn in self.access_policies:
            if not arn.startswith(ACCESS_POLICY_PREFIX):
                raise ValueError(f"'{arn}' is not an EKS access policy ARN")
        if self.read_only:
            self._check_read_only()
        return self

    def _check_read_only(self) -> None:
        for arn in self.access_policies:
            if arn not in READ_ONLY_ACCESS_POLICIES:
                raise ValueError(
                    f"read_only scope uses {arn.removeprefix(ACCESS_POLICY_PREFIX)}, which is not known to be "
                    f"read-only (allowed: {sorted(a.rsplit('/', 1)[-1] for a in READ_ONLY_ACCESS_POLICIES)})"
                )
        for rule in self.rbac:
            if not set(rule.verbs) <= READ_VERBS:
                raise ValueError(
                    f"read_only scope grants {sorted(set(rule.verbs) - READ_VERBS)} on {list(rule.resources)}"
                )
            if rule.reaches_into_pods():
                raise ValueError(
                    f"read_only scope reaches into pods ({list(rule.resources)}): a GET on pods/exec is an exec"
                )
            if rule.reads_secrets():
                raise ValueError("read_only scope may not read Secrets")


class AccessMode(StrEnum):
    """How a cluster's grants give access (docs/configuration.md, ``access_mode``)."""

    ENTRY = "entry"
    """The grant becomes the agent role's EKS access entry; EKS and the cluster's RBAC enforce it."""
    GATEWAY = "gateway"
    """No access entry for the agent: its kubectl talks to eks-jit's gateway, which checks every
    request against the caller's active grants (and session) and forwards the allowed ones."""


class Cluster(Strict):
    """A cluster eks-jit may grant access to, with the attributes policies can test."""

    account: AccountId
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
    environment: Name
    namespaces: tuple[Name, ...] = Field(min_length=1)
    role_arn: IamArn | None = None  # assumed for cross-account clusters; None = same account
    tags: dict[str, str] = Field(default_factory=dict)
    access_mode: AccessMode = AccessMode.ENTRY

    @property
    def gateway(self) -> bool:
        return self.access_mode is AccessMode.GATEWAY

    @property
    def partition(self) -> str:
        """``aws``, ``aws-cn``, ``aws-us-gov``...: from the region. Every ARN eks-jit sends to this
        cluster's EKS (access policies included) is in it."""
        return partition_of(self.region)

    def arn(self, name: str) -> str:
        return f"arn:{self.partition}:eks:{self.region}:{self.account}:cluster/{name}"

    @model_validator(mode="after")
    def _role_in_partition(self) -> Cluster:
        if self.role_arn is not None and arn_partition(self.role_arn) != self.partition:
            raise ValueError(
                f"role_arn is in partition {arn_partition(self.role_arn)} but region {self.region} is in "
                f"{self.partition}: a role is assumed within its own partition"
            )
        return self


IDENTITY_CENTER_PATH = "aws-reserved/sso.amazonaws.com/"
SERVICE_LINKED_PATH = "aws-service-role/"


def check_entry_principal(arn: str) -> str:
    """What can be told offline about whether EKS will take ``arn`` for an access entry.

    EKS takes only a role or user that exists at exactly that ARN, path included: whether it
    exists only IAM knows, but two mistakes show in the ARN itself. An IAM Identity Center
    role (``AWSReservedSSO_...``) always lives under ``/aws-reserved/sso.amazonaws.com/``
    (often followed by a region), which its session ARNs do not show; and service-linked
    roles cannot have access entries at all."""
    kind, _, rest = arn.split(":", 5)[-1].partition("/")
    path, _, name = rest.rpartition("/")
    path = f"{path}/" if path else ""
    if kind == "role" and path.startswith(SERVICE_LINKED_PATH):
        raise ValueError(f"'{arn}' is a service-linked role: EKS access entries do not support them")
    if kind == "role" and name.startswith("AWSReservedSSO_") and not path.startswith(IDENTITY_CENTER_PATH):
        raise ValueError(
            f"'{arn}' names an IAM Identity Center role without its path: such roles live under "
            f"/{IDENTITY_CENTER_PATH} (often followed by a region, e.g. /{IDENTITY_CENTER_PATH}eu-west-1/), "
            f"and EKS refuses any other ARN (invalid principal). Copy the ARN that "
            f"`aws iam get-role --role-name {name}` shows"
        )
    return arn


class Principal(Strict):
    """Someone (an agent's role or a person's role/user) policies can talk about."""

    name: Name
    arn: IamArn
    kind: Literal["agent", "human"]
    groups: tuple[Name, ...] = ()
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    """Where approval requests for this approver are emailed (an SNS subscription filtered on
    the approver's name); humans only."""

    @field_validator("arn")
    @classmethod
    def _eks_can_name_it(cls, value: str) -> str:
        return check_entry_principal(value)


class Settings(Strict):
    """Bounds that hold whatever a policy says."""

    min_duration: Duration = timedelta(minutes=5)
    max_duration: Duration = timedelta(hours=12)
    admins: tuple[IamArn, ...] = ()  # may read, list and revoke any grant
    auditors: tuple[IamArn, ...] = ()  # may read every grant, its events and activity (read-only)
    mask_patterns: dict[Name, str] = Field(default_factory=dict)
    """The gateway masks matches of these regexes (name -> Python regex) in answers and logs, besides
    its own (AWS key ids, bearer tokens, private keys): domain/masking.py."""

    @field_validator("mask_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for name, text in value.items():
            try:
                re.compile(text)
            except re.error as error:
                raise ValueError(f"mask_patterns.{name} is not a regular expression: {error}") from None
        return value


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

    @model_validator(mode="after")
    def _one_partition(self) -> Catalog:
        """IAM, STS and EKS never cross a partition: one control plane serves the clusters of its own."""
        partitions = {c.partition for c in self.clusters.values()}
        if len(partitions) > 1:
            raise ValueError(f"clusters span partitions {sorted(partitions)}: one deployment per partition")
        (partition,) = partitions
        for p in self.principals:
            if arn_partition(p.arn) != partition:
                raise ValueError(
                    f"principal '{p.name}' is in partition {arn_partition(p.arn)}, the clusters in {partition}"
                )
        return self

    @model_validator(mode="after")
    def _no_scope_named_like_the_gateway(self) -> Catalog:
        """A cluster scope named ``gateway`` would have the group ``eks-jit:gateway``, the one the
        gateway's own access entry is in (lambdas/domain/impersonation.py): refused everywhere."""
        if "gateway" in self.scopes:
            raise ValueError("scope 'gateway' is reserved: its group would be the gateway's own (eks-jit:gateway)")
        if HELD_SCOPE in self.scopes:
            raise ValueError(
                f"scope '{HELD_SCOPE}' is reserved: it names the grant of one held command (domain/holds.py)"
            )
        return self

    @model_validator(mode="after")
    def _gateway_can_enforce_every_scope(self) -> Catalog:
        """A gateway cluster's grants are enforced by the gateway's rule sets, not by EKS: every scope
        (any may be requested on any cluster) must map to rules it knows, or it could not enforce it."""
        if not any(c.gateway for c in self.clusters.values()):
            return self
        from .kube_rules import UnsupportedAccessPolicy, scope_rules  # imports this module

        for name, scope in self.scopes.items():
            try:
                scope_rules(scope)
            except UnsupportedAccessPolicy as exc:
                raise ValueError(f"scope '{name}' cannot be used on a gateway cluster: {exc.message}") from None
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


GATEWAY_CLUSTER_PATH = "/clusters/"


def gateway_server(gateway_endpoint: str, cluster: str) -> str:
    """The Kubernetes API URL an agent's kubeconfig names for a gateway cluster: one gateway serves
    every gateway cluster of the deployment, each below its own path (``https://gw.example/clusters/
    demo-gateway``; kubectl puts ``/api``, ``/apis`` after it). The gateway routes on that path and
    checks it names the cluster the caller's token is signed for (``x-k8s-aws-id``)."""
    return f"{gateway_endpoint.rstrip('/')}{GATEWAY_CLUSTER_PATH}{cluster}"


def kubernetes_group(scope: str, namespace: str | None) -> str:
    """The group a grant of ``scope`` in ``namespace`` adds to the access entry."""
    return f"{GROUP_PREFIX}:{scope}:{namespace}" if namespace else f"{GROUP_PREFIX}:{scope}"
