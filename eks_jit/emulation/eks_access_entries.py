"""Emulation of the Amazon EKS access-entry API, plugged into moto 5.2.5.

moto implements EKS clusters, node groups and Fargate profiles, but answers "Not yet
implemented" for access entries.  After :func:`register` plain boto3 EKS clients work
unchanged against ``mock_aws()`` and against moto's server (``ThreadedMotoServer``).

Emulated operations (shapes, URIs and methods from botocore's ``eks/2017-11-01`` model)
    CreateAccessEntry, DescribeAccessEntry, UpdateAccessEntry, DeleteAccessEntry,
    ListAccessEntries (``associatedPolicyArn`` filter, ``maxResults``/``nextToken``),
    AssociateAccessPolicy, DisassociateAccessPolicy, ListAssociatedAccessPolicies,
    ListAccessPolicies, and TagResource/UntagResource/ListTagsForResource on access-entry
    ARNs (cluster ARNs keep moto's behaviour).  CreateCluster/DescribeCluster carry a real
    ``accessConfig`` and UpdateClusterConfig can change the authentication mode.

How it plugs into moto
    moto picks a service's handler by matching the request URL against the regexes of
    ``moto.eks.urls.url_paths``: in-process the map is re-read on every request, the
    server turns it into Flask rules when the first EKS request reaches it.  The handler
    (``EKSResponse.dispatch``) then names the operation from botocore's model (method +
    raw path) and calls the response method named after it in snake_case, with the
    percent-decoded URI labels in ``uri_match``.  :func:`register` points every EKS route
    at :class:`AccessEntryResponse` (``EKSResponse`` plus the methods below) and adds the
    access-entry routes.  Their regexes accept ``/`` in the principal label because the
    server matches the decoded path (botocore sends ``role%2Fname``; Werkzeug decodes it).

State
    Stored on moto's own ``Cluster`` objects (attribute ``access_config``, serialised by
    moto as the cluster's ``accessConfig``) inside ``eks_backends[account][region]``, so
    ``mock_aws`` exit, ``/moto-api/reset`` and DeleteCluster discard it with the rest.

Rules followed (EKS API Reference; User Guide "Create access entries", "Associate access
policies", "Change authentication mode", "Set a custom username")
    * Authentication mode: CONFIG_MAP unless ``accessConfig.authenticationMode`` says
      otherwise; it can only move towards API (CONFIG_MAP -> API_AND_CONFIG_MAP -> API).
      Access-entry operations on a CONFIG_MAP cluster: InvalidRequestException.
    * ``bootstrapClusterCreatorAdminPermissions`` (default true) gives the creating IAM
      principal an entry with AmazonEKSClusterAdminPolicy on API* clusters; false is refused
      for CONFIG_MAP clusters.
    * One entry per IAM principal (ResourceInUseException); at most 3,000 per cluster
      (ResourceLimitExceededException).  Principals are IAM role or user ARNs, never STS
      session ARNs nor service-linked roles (``role/aws-service-role/...``).
    * The principal must exist in IAM at exactly that ARN, path included ("an access entry
      includes the ARN of one, and only one, existing IAM principal"); otherwise
      ``InvalidParameterException: The specified principalArn is invalid: invalid principal.``
      (the message real EKS answers, terraform-aws-eks#2969: an IAM Identity Center role given
      without ``/aws-reserved/sso.amazonaws.com/...``).  Looked up in moto's IAM backend of the
      principal's own account: STANDARD entries may name a principal of another account (User
      Guide), so that account's IAM is the one that knows it.  The entry keeps the principal's
      unique id: a principal deleted and created again under the same ARN is not mapped.
    * UpdateAccessEntry sets both ``kubernetesGroups`` and ``username``: a field the request
      omits goes back to its default (no groups; the default username), as real EKS does
      (terraform-provider-aws#36484).  Send every field you mean to keep.
    * Changes take effect for authentication only after a propagation delay ("access entry
      creation and updates are eventually consistent, and may take several seconds to be
      effective after the initial API call returns successfully", User Guide); the API answers
      at once.  :func:`set_propagation_delay` sets the delay (0 unless set; local mode sets a
      few seconds), :func:`authentication` and the emulation-only route
      ``GET /emulation/authentication?clusterName=&principalArn=[&at=]`` tell what the
      cluster's authenticator maps a principal to at a given time.  Deletions lag too.
    * Types STANDARD (default), EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX, EC2, HYBRID_LINUX,
      HYPERPOD_LINUX.  Only STANDARD entries take a username, Kubernetes groups or access
      policies; the others need an IAM role of the cluster's account.
    * Usernames may not start with ``system:``, ``eks:``, ``aws:``, ``amazon:`` or ``iam:``
      and need a colon before ``{{SessionName}}``/``{{SessionNameRaw}}``; group names may
      not start with ``system:``.  Default usernames are the user ARN, the role's
      ``sts::...:assumed-role/<name>/{{SessionName}}`` (path removed), or the node
      templates of the User Guide table.
    * Each policy is associated at most once per entry: associating it again replaces the
      scope (``namespace`` needs namespaces, ``cluster`` takes none), keeps
      ``associatedAt`` and bumps ``modifiedAt``.  Deleting an entry drops its policies.

Simplifications
    API changes are synchronous (UpdateClusterConfig reports a Successful update);
    ``clientRequestToken`` is not used for idempotency; the node-entry usernames for EC2
    and HYPERPOD_LINUX are not in the User Guide table and are best guesses.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID as DEFAULT_ACCOUNT
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.eks import urls as eks_urls
from moto.eks.exceptions import (
    EKSError,
    InvalidParameterException,
    InvalidRequestException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from moto.eks.models import Cluster, EKSBackend
from moto.eks.responses import EKSResponse
from moto.iam.models import iam_backends
from moto.moto_api._internal import mock_random
from moto.sts.models import sts_backends

__all__ = ["AccessEntryResponse", "authentication", "register", "set_propagation_delay"]

CONFIG_MAP: Final = "CONFIG_MAP"
API_AND_CONFIG_MAP: Final = "API_AND_CONFIG_MAP"
API: Final = "API"
# Once the access-entry API is on it stays on; the ConfigMap can only be dropped.
ALLOWED_MODE_CHANGES: Final[dict[str, frozenset[str]]] = {
    CONFIG_MAP: frozenset({API_AND_CONFIG_MAP, API}),
    API_AND_CONFIG_MAP: frozenset({API}),
    API: frozenset(),
}

STANDARD: Final = "STANDARD"
# Node entry types and the username EKS gives them (User Guide, "Create access entries").
NODE_USERNAMES: Final[dict[str, str]] = {
    "EC2_LINUX": "system:node:{{EC2PrivateDNSName}}",
    "EC2_WINDOWS": "system:node:{{EC2PrivateDNSName}}",
    "EC2": "system:node:{{EC2PrivateDNSName}}",
    "FARGATE_LINUX": "system:node:{{SessionName}}",
    "HYBRID_LINUX": "system:node:{{SessionName}}",
    "HYPERPOD_LINUX": "system:node:{{SessionName}}",
}
ENTRY_TYPES: Final = (STANDARD, *NODE_USERNAMES)

MAX_ACCESS_ENTRIES_PER_CLUSTER = 3000
DEFAULT_PAGE_SIZE: Final = 100
RESERVED_USERNAME_PREFIXES: Final = ("system:", "eks:", "aws:", "amazon:", "iam:")
RESERVED_GROUP_PREFIXES: Final = ("system:",)
SESSION_NAME_PLACEHOLDERS: Final = ("{{SessionName}}", "{{SessionNameRaw}}")

# AWS-managed access policies (User Guide, "Review access policy permissions").
ACCESS_POLICY_NAMES: Final = (
    "AmazonAIOpsAssistantPolicy",
    "AmazonARCRegionSwitchScalingPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStorageClusterPolicy",
    "AmazonEKSBlockStoragePolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSClusterInsightsPolicy",
    "AmazonEKSComputeClusterPolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSHybridPolicy",
    "AmazonEKSLoadBalancingClusterPolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingClusterPolicy",
    "AmazonEKSNetworkingPolicy",
    "AmazonEKSSecretReaderPolicy",
    "AmazonEKSViewPolicy",
)
# "Designated for AWS service-linked roles only", which can't have access entries.
SERVICE_LINKED_ONLY_POLICIES: Final = frozenset(
    {
        "AmazonEKSBlockStorageClusterPolicy",
        "AmazonEKSBlockStoragePolicy",
        "AmazonEKSClusterInsightsPolicy",
        "AmazonEKSComputeClusterPolicy",
        "AmazonEKSComputePolicy",
        "AmazonEKSHybridPolicy",
    }
)
CLUSTER_ADMIN_POLICY: Final = "AmazonEKSClusterAdminPolicy"

_PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):iam::(?P<account>\d{12}):(?P<kind>role|user)/"
    r"(?P<path>(?:[\x21-\x7e]+/)?)(?P<name>[\w+=,.@-]{1,64})"
)
_STS_ARN = re.compile(r"arn:[^:]+:sts::")
_SERVICE_LINKED_PATH: Final = "aws-service-role/"
_ACCESS_POLICY_ARN = re.compile(r"arn:(?P<partition>[^:]+):eks::aws:cluster-access-policy/(?P<name>[A-Za-z0-9]+)")
_ACCESS_ENTRY_ARN = re.compile(r"arn:[^:]+:eks:[^:]+:\d{12}:access-entry/(?P<cluster>[^/]+)/")

# Regexes in moto's url_paths style ("{0}" is the service's URL base).
ROUTES: Final = (
    "{0}/clusters/(?P<name>[^/]+)/access-entries$",
    "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$",
    "{0}/access-policies$",
)
AUTHENTICATION_ROUTE: Final = "{0}/emulation/authentication$"
INVALID_PRINCIPAL: Final = "The specified principalArn is invalid: invalid principal."

T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class ResourceLimitExceededException(EKSError):
    """EKS's ResourceLimitExceededException (HTTP 400 in the service model)."""

    TYPE = "ResourceLimitExceededException"
    STATUS = 400


class NotFoundException(EKSError):
    """The tagging operations' not-found error (HTTP 404 in the service model)."""

    TYPE = "NotFoundException"
    STATUS = 404


# --------------------------------------------------------------------------- model


@dataclass
class AccessScope:
    """An ``AccessScope``: ``cluster`` (no namespaces) or ``namespace``."""

    type: str
    namespaces: list[str]


@dataclass
class AssociatedAccessPolicy:
    """An ``AssociatedAccessPolicy``; moto serialises the snake_case attributes."""

    policy_arn: str
    access_scope: AccessScope
    associated_at: datetime
    modified_at: datetime


@dataclass
class AccessEntry:
    """An ``AccessEntry`` plus its policy associations (not part of the shape)."""

    cluster_name: str
    principal_arn: str
    type: str
    username: str
    kubernetes_groups: list[str]
    access_entry_arn: str
    tags: dict[str, str]
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None  # a new entry's is its created_at: one instant, not two clock reads
    policies: dict[str, AssociatedAccessPolicy] = field(default_factory=dict)
    principal_id: str | None = None  # the IAM role/user id EKS stores with the entry (not in the shape)

    def __post_init__(self) -> None:
        if self.modified_at is None:
            self.modified_at = self.created_at


@dataclass(frozen=True)
class Authentication:
    """What the cluster's authenticator maps a principal to (once a change has propagated):
    its Kubernetes username and groups, and the access policies the EKS authorizer applies."""

    username: str
    kubernetes_groups: tuple[str, ...]
    access_policies: tuple[tuple[str, AccessScope], ...]
    principal_id: str | None

    @classmethod
    def of(cls, entry: AccessEntry) -> Authentication:
        policies = tuple(
            (arn, AccessScope(a.access_scope.type, list(a.access_scope.namespaces)))
            for arn, a in sorted(entry.policies.items())
        )
        return cls(entry.username, tuple(entry.kubernetes_groups), policies, entry.principal_id)


@dataclass
class Propagation:
    """How long an access-entry change takes to reach the cluster's authenticator."""

    delay: timedelta = timedelta(0)


PROPAGATION = Propagation()


def set_propagation_delay(seconds: float) -> None:
    """From now on, each access-entry change takes ``seconds`` to take effect for authentication."""
    if seconds < 0:
        raise ValueError("a propagation delay cannot be negative")
    PROPAGATION.delay = timedelta(seconds=seconds)


@dataclass
class ClusterAccessConfig:
    """A cluster's ``accessConfig`` and its access entries, keyed by principal ARN.

    Kept on moto's ``Cluster`` as ``access_config``; moto's serialiser emits the two
    ``AccessConfigResponse`` members and ignores ``entries``.
    """

    authentication_mode: str = CONFIG_MAP
    bootstrap_cluster_creator_admin_permissions: bool = True
    entries: dict[str, AccessEntry] = field(default_factory=dict)
    # principal ARN -> [(effective at, mapping or None)], oldest first: what the authenticator sees
    propagation: dict[str, list[tuple[datetime, Authentication | None]]] = field(default_factory=dict)

    def propagate(self, principal_arn: str, now: datetime, delay: timedelta) -> None:
        """Record the principal's entry as it is now, effective for authentication at ``now + delay``."""
        entry = self.entries.get(principal_arn)
        history = self.propagation.setdefault(principal_arn, [])
        history.append((now + delay, Authentication.of(entry) if entry else None))
        while len(history) > 1 and history[1][0] <= now:  # superseded before anyone can see it
            history.pop(0)

    def seen_by_authenticator(self, principal_arn: str, at: datetime) -> tuple[Authentication | None, datetime | None]:
        """The mapping in effect at ``at``, and when the last recorded change takes (took) effect."""
        history = self.propagation.get(principal_arn, [])
        current = None
        for effective_at, mapping in history:
            if effective_at <= at:
                current = mapping
        return current, history[-1][0] if history else None


@dataclass(frozen=True)
class Principal:
    """A parsed IAM role or user ARN."""

    arn: str
    partition: str
    account: str
    kind: str
    name: str


# --------------------------------------------------------------------------- validation


def _invalid(message: str) -> InvalidParameterException:
    return InvalidParameterException(message=message)


def parse_principal(principal_arn: str) -> Principal:
    """Accept IAM role/user ARNs; refuse STS sessions and service-linked roles."""
    if _STS_ARN.match(principal_arn):
        raise _invalid(
            f"The principalArn {principal_arn} is an STS session principal; access entries "
            "need a permanent IAM principal (role or user)."
        )
    match = _PRINCIPAL_ARN.fullmatch(principal_arn)
    if match is None:
        raise _invalid(f"The principalArn {principal_arn} is not a valid IAM role or user ARN.")
    if match["kind"] == "role" and match["path"].startswith(_SERVICE_LINKED_PATH):
        raise _invalid(f"Access entries do not support service-linked roles: {principal_arn}")
    return Principal(principal_arn, match["partition"], match["account"], match["kind"], match["name"])


def existing_principal_id(principal: Principal) -> str:
    """The unique id of the IAM role or user that ``principal`` names, exactly: same account,
    same path, same name. IAM names are unique in an account whatever the path, so a role
    found by name under another path is not this principal."""
    # moto keeps the IAM of a us-gov or cn region's clients in its aws backend and spells their
    # ARNs arn:aws: look there too, and match the rest of the ARN (account, kind, path, name).
    partitions = dict.fromkeys((principal.partition, "aws"))
    for partition in partitions:
        iam = iam_backends[principal.account][partition]
        candidates: Iterable[Any] = (
            (role for role in iam.roles.values() if role.name == principal.name)
            if principal.kind == "role"
            else [iam.users[principal.name]]
            if principal.name in iam.users
            else []
        )
        for found in candidates:
            if found.arn.split(":", 2)[2] == principal.arn.split(":", 2)[2]:
                return str(found.id)
    raise _invalid(INVALID_PRINCIPAL)


def check_entry_type(entry_type: str, principal: Principal, cluster_account: str) -> None:
    """Node entry types need an IAM role of the cluster's own account."""
    if entry_type not in ENTRY_TYPES:
        raise _invalid(f"Invalid type {entry_type}; valid types: {', '.join(ENTRY_TYPES)}.")
    if entry_type == STANDARD:
        return
    if principal.kind != "role":
        raise _invalid(f"Access entries of type {entry_type} require an IAM role principal.")
    if principal.account != cluster_account:
        raise _invalid(f"Access entries of type {entry_type} require a principal in account {cluster_account}.")


def check_standard_only(entry_type: str, kubernetes_groups: list[str] | None, username: str | None) -> None:
    """Only STANDARD entries take a username or Kubernetes groups."""
    if entry_type != STANDARD and (kubernetes_groups or username is not None):
        raise _invalid(
            f"kubernetesGroups and username can't be specified for access entries of type "
            f"{entry_type}; only STANDARD entries take them."
        )


def check_kubernetes_groups(groups: Iterable[str]) -> None:
    for group in groups:
        if not group or group.startswith(RESERVED_GROUP_PREFIXES):
            raise _invalid(f"Invalid kubernetesGroups value '{group}': can't start with system:")


def check_username(username: str) -> None:
    if not username or username.startswith(RESERVED_USERNAME_PREFIXES):
        raise _invalid(f"Invalid username '{username}': can't start with {', '.join(RESERVED_USERNAME_PREFIXES)}")
    for placeholder in SESSION_NAME_PLACEHOLDERS:
        index = username.find(placeholder)
        if index != -1 and ":" not in username[:index]:
            raise _invalid(f"Invalid username '{username}': needs a colon before {placeholder}")


def default_username(principal: Principal, entry_type: str) -> str:
    """The username EKS assigns when none is given."""
    if entry_type != STANDARD:
        return NODE_USERNAMES[entry_type]
    if principal.kind == "user":
        return principal.arn
    return f"arn:{principal.partition}:sts::{principal.account}:assumed-role/{principal.name}/{{{{SessionName}}}}"


def parse_access_scope(raw: dict[str, Any]) -> AccessScope:
    scope_type = raw.get("type")
    namespaces = list(raw.get("namespaces") or [])
    if scope_type == "namespace":
        if not namespaces or not all(namespaces):
            raise _invalid("An accessScope of type namespace needs at least one namespace.")
    elif scope_type == "cluster":
        if namespaces:
            raise _invalid("An accessScope of type cluster can't specify namespaces.")
    else:
        raise _invalid(f"Invalid accessScope type {scope_type}; use cluster or namespace.")
    return AccessScope(scope_type, namespaces)


def access_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


def check_access_policy(policy_arn: str, partition: str) -> None:
    """The ARN must name an AWS-managed access policy of the cluster's partition."""
    match = _ACCESS_POLICY_ARN.fullmatch(policy_arn)
    if match is None or match["partition"] != partition or match["name"] not in ACCESS_POLICY_NAMES:
        raise _invalid(f"The policyArn {policy_arn} is not a valid access policy ARN.")


def parse_cluster_access_config(raw: dict[str, Any] | None) -> ClusterAccessConfig:
    """CreateCluster's ``accessConfig``; CONFIG_MAP and bootstrap=true when absent."""
    raw = raw or {}
    mode = raw.get("authenticationMode", CONFIG_MAP)
    check_authentication_mode(mode)
    bootstrap = bool(raw.get("bootstrapClusterCreatorAdminPermissions", True))
    if mode == CONFIG_MAP and not bootstrap:
        raise _invalid(
            "bootstrapClusterCreatorAdminPermissions must be true if cluster authentication mode is set to CONFIG_MAP"
        )
    return ClusterAccessConfig(mode, bootstrap)


def check_authentication_mode(mode: object) -> None:
    if mode not in ALLOWED_MODE_CHANGES:
        raise _invalid(f"Invalid authenticationMode {mode}; valid modes: {', '.join(ALLOWED_MODE_CHANGES)}.")


# --------------------------------------------------------------------------- pagination


def _encode_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_key}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid("The nextToken is invalid.") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("after"), str):
        raise _invalid("The nextToken is invalid.")
    return decoded["after"]


def paginate(
    items: Iterable[T], key: Callable[[T], str], max_results: int | None, next_token: str | None
) -> tuple[list[T], str | None]:
    """One page of ``items`` in ``key`` order; the token remembers the last key returned,
    so pages stay consistent when items are added or removed between calls."""
    ordered = sorted(items, key=key)
    if next_token:
        after = _decode_token(next_token)
        ordered = [item for item in ordered if key(item) > after]
    limit = max_results or DEFAULT_PAGE_SIZE
    page = ordered[:limit]
    return page, (_encode_token(key(page[-1])) if len(ordered) > limit else None)


# --------------------------------------------------------------------------- backend


def cluster_access_config(cluster: Cluster) -> ClusterAccessConfig:
    """The access state kept on a moto cluster (created on first use for old clusters)."""
    config = getattr(cluster, "access_config", None)
    if not isinstance(config, ClusterAccessConfig):
        config = ClusterAccessConfig()
        cluster.access_config = config  # type: ignore[attr-defined]
    return config


class AccessEntryBackend:
    """Access-entry operations on one moto ``EKSBackend`` (one account and region)."""

    def __init__(self, backend: EKSBackend) -> None:
        self._backend = backend

    # clusters --------------------------------------------------------------------

    def configure_new_cluster(self, cluster_name: str, config: ClusterAccessConfig, creator_arn: str) -> None:
        """Attach ``config`` and, if asked to, the creator's cluster-admin entry."""
        cluster = self._backend.describe_cluster(cluster_name)
        cluster.access_config = config  # type: ignore[attr-defined]
        if config.authentication_mode == CONFIG_MAP:
            return
        if config.bootstrap_cluster_creator_admin_permissions:
            # EKS knows the creator from the CreateCluster call; the cluster takes minutes to
            # become active, so the creator's access has propagated by then.
            self.create_entry(cluster_name, creator_arn, creator=True, delay=timedelta(0))
            admin_policy = access_policy_arn(self._backend.partition, CLUSTER_ADMIN_POLICY)
            self.associate_policy(cluster_name, creator_arn, admin_policy, {"type": "cluster"}, delay=timedelta(0))

    def update_authentication_mode(self, cluster_name: str, mode: object) -> dict[str, Any]:
        """Move the cluster's mode towards API; returns the ``Update`` record."""
        config = cluster_access_config(self._backend.describe_cluster(cluster_name))
        check_authentication_mode(mode)
        current = config.authentication_mode
        if mode not in ALLOWED_MODE_CHANGES[current]:
            raise _invalid(f"Unsupported authentication mode update from {current} to {mode}")
        config.authentication_mode = str(mode)
        return {
            "id": str(mock_random.uuid4()),
            "status": "Successful",
            "type": "AccessConfigUpdate",
            "params": [{"type": "AuthenticationMode", "value": str(mode)}],
            "createdAt": utcnow(),
            "errors": [],
        }

    def _api_cluster(self, cluster_name: str) -> ClusterAccessConfig:
        config = cluster_access_config(self._backend.describe_cluster(cluster_name))
        if config.authentication_mode == CONFIG_MAP:
            raise InvalidRequestException(
                clusterName=cluster_name,
                message=(
                    f"The cluster {cluster_name} authentication mode is {CONFIG_MAP}; switch it "
                    f"to {API_AND_CONFIG_MAP} or {API} to use access entries."
                ),
            )
        return config

    def _find_entry(self, cluster_name: str, principal_arn: str) -> tuple[ClusterAccessConfig, AccessEntry]:
        config = self._api_cluster(cluster_name)
        try:
            return config, config.entries[principal_arn]
        except KeyError:
            raise ResourceNotFoundException(
                clusterName=cluster_name,
                message=f"The specified access entry resource can't be found: {principal_arn}",
            ) from None

    # entries ---------------------------------------------------------------------

    def create_entry(
        self,
        cluster_name: str,
        principal_arn: str,
        entry_type: str | None = None,
        kubernetes_groups: list[str] | None = None,
        username: str | None = None,
        tags: dict[str, str] | None = None,
        *,
        creator: bool = False,
        delay: timedelta | None = None,
    ) -> AccessEntry:
        """``creator``: the cluster creator's entry, made by EKS from the CreateCluster call
        (moto's default caller exists in no IAM backend)."""
        config = self._api_cluster(cluster_name)
        entry_type = entry_type or STANDARD
        principal = parse_principal(principal_arn)
        check_entry_type(entry_type, principal, self._backend.account_id)
        self._check_entry_fields(entry_type, kubernetes_groups, username)
        principal_id = _current_principal_id(principal_arn) if creator else existing_principal_id(principal)
        if principal_arn in config.entries:
            raise ResourceInUseException(
                clusterName=cluster_name,
                message=f"The specified access entry resource is already in use on this cluster: {principal_arn}",
            )
        if len(config.entries) >= MAX_ACCESS_ENTRIES_PER_CLUSTER:
            raise ResourceLimitExceededException(
                clusterName=cluster_name,
                message=f"Cluster {cluster_name} already has the maximum of "
                f"{MAX_ACCESS_ENTRIES_PER_CLUSTER} access entries.",
            )
        entry = AccessEntry(
            cluster_name=cluster_name,
            principal_arn=principal_arn,
            type=entry_type,
            username=username or default_username(principal, entry_type),
            kubernetes_groups=list(kubernetes_groups or []),
            access_entry_arn=self._entry_arn(cluster_name, principal),
            tags=dict(tags or {}),
            principal_id=principal_id,
        )
        config.entries[principal_arn] = entry
        config.propagate(principal_arn, entry.created_at, PROPAGATION.delay if delay is None else delay)
        return entry

    def describe_entry(self, cluster_name: str, principal_arn: str) -> AccessEntry:
        return self._find_entry(cluster_name, principal_arn)[1]

    def update_entry(
        self,
        cluster_name: str,
        principal_arn: str,
        kubernetes_groups: list[str] | None,
        username: str | None,
    ) -> AccessEntry:
        """Set the groups and the username; a field not given goes back to its default (no
        groups, the default username), as real EKS does. Bumps ``modifiedAt``."""
        config, entry = self._find_entry(cluster_name, principal_arn)
        self._check_entry_fields(entry.type, kubernetes_groups, username)
        if entry.type == STANDARD:  # node entries take neither field; theirs stay as EKS set them
            entry.kubernetes_groups = list(kubernetes_groups or [])
            entry.username = username or default_username(parse_principal(principal_arn), entry.type)
        entry.modified_at = utcnow()
        config.propagate(principal_arn, entry.modified_at, PROPAGATION.delay)
        return entry

    def delete_entry(self, cluster_name: str, principal_arn: str) -> None:
        """Remove the entry together with its policy associations."""
        config, _ = self._find_entry(cluster_name, principal_arn)
        del config.entries[principal_arn]
        config.propagate(principal_arn, utcnow(), PROPAGATION.delay)

    def authentication(
        self, cluster_name: str, principal_arn: str, at: datetime
    ) -> tuple[Authentication | None, datetime | None]:
        """What the cluster's authenticator maps ``principal_arn`` to at ``at`` (None: not
        authenticated), and when its last change takes effect. A principal deleted and created
        again under the same ARN has another id: its old entry maps nothing."""
        config = cluster_access_config(self._backend.describe_cluster(cluster_name))
        if config.authentication_mode == CONFIG_MAP:
            return None, None
        mapping, settles_at = config.seen_by_authenticator(principal_arn, at)
        if mapping is not None and mapping.principal_id not in (None, _current_principal_id(principal_arn)):
            mapping = None
        return mapping, settles_at

    def list_entries(self, cluster_name: str, associated_policy_arn: str | None) -> list[str]:
        entries: Iterable[AccessEntry] = self._api_cluster(cluster_name).entries.values()
        if associated_policy_arn is not None:
            check_access_policy(associated_policy_arn, self._backend.partition)
            entries = [entry for entry in entries if associated_policy_arn in entry.policies]
        return [entry.principal_arn for entry in entries]

    def entry_by_arn(self, access_entry_arn: str) -> AccessEntry:
        """The entry an access-entry ARN names (tagging operations)."""
        match = _ACCESS_ENTRY_ARN.match(access_entry_arn)
        cluster = self._backend.clusters.get(match["cluster"]) if match else None
        entries = cluster_access_config(cluster).entries.values() if cluster else ()
        for entry in entries:
            if entry.access_entry_arn == access_entry_arn:
                return entry
        raise NotFoundException(message=f"Resource was not found: {access_entry_arn}")

    # policies --------------------------------------------------------------------

    def associate_policy(
        self,
        cluster_name: str,
        principal_arn: str,
        policy_arn: str,
        scope: dict[str, Any],
        *,
        delay: timedelta | None = None,
    ) -> AssociatedAccessPolicy:
        """Associate ``policy_arn`` or, if already associated, replace its scope."""
        config, entry = self._find_entry(cluster_name, principal_arn)
        if entry.type != STANDARD:
            raise _invalid(f"Access policies can't be associated to {entry.type} access entries.")
        check_access_policy(policy_arn, self._backend.partition)
        if policy_arn.rsplit("/", 1)[-1] in SERVICE_LINKED_ONLY_POLICIES:
            raise _invalid(f"The access policy {policy_arn} is for service-linked roles only.")
        access_scope = parse_access_scope(scope)
        now = utcnow()
        association = entry.policies.get(policy_arn)
        if association is None:
            association = AssociatedAccessPolicy(policy_arn, access_scope, now, now)
            entry.policies[policy_arn] = association
        else:
            association.access_scope = access_scope
            association.modified_at = now
        config.propagate(principal_arn, now, PROPAGATION.delay if delay is None else delay)
        return association

    def disassociate_policy(self, cluster_name: str, principal_arn: str, policy_arn: str) -> None:
        config, entry = self._find_entry(cluster_name, principal_arn)
        if entry.policies.pop(policy_arn, None) is None:
            raise ResourceNotFoundException(
                clusterName=cluster_name,
                message=f"The access policy {policy_arn} is not associated to {principal_arn}",
            )
        config.propagate(principal_arn, utcnow(), PROPAGATION.delay)

    def associated_policies(self, cluster_name: str, principal_arn: str) -> list[AssociatedAccessPolicy]:
        return list(self.describe_entry(cluster_name, principal_arn).policies.values())

    # helpers ---------------------------------------------------------------------

    @staticmethod
    def _check_entry_fields(entry_type: str, kubernetes_groups: list[str] | None, username: str | None) -> None:
        check_standard_only(entry_type, kubernetes_groups, username)
        check_kubernetes_groups(kubernetes_groups or [])
        if username is not None:
            check_username(username)

    def _entry_arn(self, cluster_name: str, principal: Principal) -> str:
        backend = self._backend
        return (
            f"arn:{backend.partition}:eks:{backend.region_name}:{backend.account_id}:"
            f"access-entry/{cluster_name}/{principal.kind}/{principal.account}/"
            f"{principal.name}/{mock_random.uuid4()}"
        )


def _naive_utc(when: datetime) -> datetime:
    """moto keeps naive UTC times."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _current_principal_id(principal_arn: str) -> str | None:
    """The id of the IAM principal the ARN names now, if it exists."""
    try:
        return existing_principal_id(parse_principal(principal_arn))
    except InvalidParameterException:
        return None


def authentication(
    cluster_name: str,
    principal_arn: str,
    at: datetime | None = None,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = "us-east-1",
) -> Authentication | None:
    """In-process (``mock_aws``): what the cluster's authenticator maps the principal to at
    ``at`` (naive UTC, as moto keeps time; now if not given). None: it would not authenticate."""
    from moto.eks.models import eks_backends

    backend = AccessEntryBackend(eks_backends[account][region])
    return backend.authentication(cluster_name, principal_arn, _naive_utc(at) if at else utcnow())[0]


def caller_principal_arn(account_id: str, partition: str, region: str, access_key: str) -> str:
    """The IAM principal (role or user ARN) moto associates with an access key."""
    sts = sts_backends[account_id][partition]
    assumed_role = sts.get_assumed_role_from_access_key(access_key)
    if assumed_role is not None:
        return assumed_role.role_arn
    _, arn, _ = sts.get_caller_identity(access_key, region)
    # moto's identity for unknown keys is "arn:aws:sts::<account>:user/moto".
    return arn.replace(":sts::", ":iam::", 1)


# --------------------------------------------------------------------------- responses


class AccessEntryResponse(EKSResponse):
    """moto's ``EKSResponse`` plus the access-entry operations.

    moto calls the method named after the operation; URI labels come percent-decoded in
    ``uri_match``, JSON members from the body, list parameters from the query string.
    Operations run one at a time (``_serial``): EKS checks and changes an entry atomically,
    while moto's dicts are neither locked nor safe to iterate during a concurrent change.
    """

    _serial = threading.RLock()

    def call_action(self) -> Any:
        with self._serial:
            return super().call_action()

    @property
    def access_entries(self) -> AccessEntryBackend:
        return AccessEntryBackend(self.eks_backend)

    # request helpers -------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            body = json.loads(self.body)
        except ValueError:
            raise _invalid("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        return body

    def _label(self, name: str) -> str:
        return str(self.uri_match[name])

    def _entry_key(self) -> tuple[str, str]:
        return self._label("name"), self._label("principalArn")

    def _query(self, name: str) -> list[str]:
        return parse_qs(self.parsed_url.query).get(name, [])

    def _page(self, items: Iterable[T], key: Callable[[T], str]) -> tuple[list[T], str | None]:
        max_results = self._query("maxResults")
        next_token = self._query("nextToken")
        return paginate(
            items,
            key,
            int(max_results[0]) if max_results else None,
            next_token[0] if next_token else None,
        )

    # access entries --------------------------------------------------------------

    def create_access_entry(self) -> ActionResult:
        body = self._body()
        entry = self.access_entries.create_entry(
            cluster_name=self._label("name"),
            principal_arn=body["principalArn"],
            entry_type=body.get("type"),
            kubernetes_groups=body.get("kubernetesGroups"),
            username=body.get("username"),
            tags=body.get("tags"),
        )
        return ActionResult({"accessEntry": entry})

    def describe_access_entry(self) -> ActionResult:
        return ActionResult({"accessEntry": self.access_entries.describe_entry(*self._entry_key())})

    def update_access_entry(self) -> ActionResult:
        body = self._body()
        entry = self.access_entries.update_entry(*self._entry_key(), body.get("kubernetesGroups"), body.get("username"))
        return ActionResult({"accessEntry": entry})

    def delete_access_entry(self) -> ActionResult:
        self.access_entries.delete_entry(*self._entry_key())
        return EmptyResult()

    def list_access_entries(self) -> ActionResult:
        policy_filter = self._query("associatedPolicyArn")
        principals = self.access_entries.list_entries(self._label("name"), policy_filter[0] if policy_filter else None)
        page, next_token = self._page(principals, str)
        return ActionResult({"accessEntries": page, "nextToken": next_token})

    # access policies -------------------------------------------------------------

    def associate_access_policy(self) -> ActionResult:
        body = self._body()
        cluster_name, principal_arn = self._entry_key()
        association = self.access_entries.associate_policy(
            cluster_name, principal_arn, body["policyArn"], body["accessScope"]
        )
        return ActionResult(
            {
                "clusterName": cluster_name,
                "principalArn": principal_arn,
                "associatedAccessPolicy": association,
            }
        )

    def disassociate_access_policy(self) -> ActionResult:
        self.access_entries.disassociate_policy(*self._entry_key(), self._label("policyArn"))
        return EmptyResult()

    def list_associated_access_policies(self) -> ActionResult:
        cluster_name, principal_arn = self._entry_key()
        associations = self.access_entries.associated_policies(cluster_name, principal_arn)
        page, next_token = self._page(associations, lambda association: association.policy_arn)
        return ActionResult(
            {
                "clusterName": cluster_name,
                "principalArn": principal_arn,
                "associatedAccessPolicies": page,
                "nextToken": next_token,
            }
        )

    def list_access_policies(self) -> ActionResult:
        policies = [{"name": name, "arn": access_policy_arn(self.partition, name)} for name in ACCESS_POLICY_NAMES]
        page, next_token = self._page(policies, lambda policy: policy["name"])
        return ActionResult({"accessPolicies": page, "nextToken": next_token})

    # emulation only: what the authenticator sees -----------------------------------

    @classmethod
    def serve_authentication(cls, request: Any, full_url: str | None = None, headers: Any = None) -> Any:
        """``GET /emulation/authentication?clusterName=&principalArn=[&at=ISO-8601]`` (SigV4 for
        ``eks``, as any EKS call): not an AWS API. Answers what the cluster's authenticator maps
        the principal to at ``at`` (default now), and when its last change takes effect."""
        self = cls()
        self.setup_class(request, full_url, headers)
        try:
            cluster_name = self._query("clusterName")[0]
            principal_arn = self._query("principalArn")[0]
            at_text = self._query("at")
            at = _naive_utc(datetime.fromisoformat(at_text[0])) if at_text else utcnow()
        except (IndexError, ValueError):
            problem = {"message": "clusterName and principalArn are required; at is an ISO 8601 time"}
            return 400, {"Content-Type": "application/json"}, json.dumps(problem)
        with cls._serial:
            mapping, settles_at = self.access_entries.authentication(cluster_name, principal_arn, at)
        body: dict[str, Any] = {
            "clusterName": cluster_name,
            "principalArn": principal_arn,
            "at": at.isoformat() + "Z",
            "authenticated": mapping is not None,
            "settlesAt": settles_at.isoformat() + "Z" if settles_at else None,
            "propagationDelaySeconds": PROPAGATION.delay.total_seconds(),
        }
        if mapping is not None:
            body |= {
                "username": mapping.username,
                "kubernetesGroups": list(mapping.kubernetes_groups),
                "accessPolicies": [
                    {"policyArn": arn, "accessScope": {"type": scope.type, "namespaces": scope.namespaces}}
                    for arn, scope in mapping.access_policies
                ],
            }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    # clusters --------------------------------------------------------------------

    def create_cluster(self) -> ActionResult:
        body = self._body()
        config = parse_cluster_access_config(body.get("accessConfig"))
        result = super().create_cluster()
        creator = caller_principal_arn(self.current_account, self.partition, self.region, self.access_key)
        self.access_entries.configure_new_cluster(body["name"], config, creator)
        return result

    def update_cluster_config(self) -> ActionResult:
        body = self._body()
        access_config = body.get("accessConfig")
        if access_config is None:
            return super().update_cluster_config()
        if set(body) - {"accessConfig", "clientRequestToken"}:
            raise _invalid("Only one type of update can be allowed.")
        update = self.access_entries.update_authentication_mode(
            self._label("name"), access_config.get("authenticationMode")
        )
        return ActionResult({"update": update})

    # tags ------------------------------------------------------------------------

    def tag_resource(self) -> ActionResult:
        arn = self._extract_arn_from_path()
        if not _ACCESS_ENTRY_ARN.match(arn):
            return super().tag_resource()
        self.access_entries.entry_by_arn(arn).tags.update(self._body()["tags"])
        return EmptyResult()

    def untag_resource(self) -> ActionResult:
        """Removes every ``tagKeys`` value (moto's own handler only reads the first)."""
        arn = self._extract_arn_from_path()
        keys = self._query("tagKeys")
        if not _ACCESS_ENTRY_ARN.match(arn):
            self.eks_backend.untag_resource(arn, keys)
            return EmptyResult()
        tags = self.access_entries.entry_by_arn(arn).tags
        for key in keys:
            tags.pop(key, None)
        return EmptyResult()

    def list_tags_for_resource(self) -> ActionResult:
        arn = self._extract_arn_from_path()
        if not _ACCESS_ENTRY_ARN.match(arn):
            return super().list_tags_for_resource()
        return ActionResult({"tags": self.access_entries.entry_by_arn(arn).tags})


# --------------------------------------------------------------------------- registration

_register_lock = threading.Lock()


def register(propagation_delay: float | None = None) -> None:
    """Serve the access-entry API from moto's EKS mock.  Idempotent.

    In-process (``mock_aws``) moto re-reads the route map on every request, so this works
    whenever it is called.  A moto server builds its EKS routes when the first EKS request
    reaches it: call this before that (simplest: before starting the server).
    ``propagation_delay`` (seconds), if given, is passed to :func:`set_propagation_delay`.
    """
    if propagation_delay is not None:
        set_propagation_delay(propagation_delay)
    with _register_lock:
        url_paths = eks_urls.url_paths
        for path, handler in list(url_paths.items()):
            if getattr(handler, "__self__", None) is EKSResponse:
                url_paths[path] = AccessEntryResponse.dispatch
        for path in ROUTES:
            url_paths[path] = AccessEntryResponse.dispatch
        url_paths[AUTHENTICATION_ROUTE] = AccessEntryResponse.serve_authentication
