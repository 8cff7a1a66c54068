"""Principals: who is calling, as the IAM ARN an EKS access entry can name.

EKS access entries take IAM role or user ARNs, never STS session ARNs, and a session ARN
drops the role's path (``role/ops/agent`` appears as ``assumed-role/agent/...``). The path
is resolved from the principal registry in the configuration; an unregistered role is
taken to have no path (documented in docs/decisions.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# ASCII only: in a str pattern \d and \w also match other scripts' digits and letters.
_IAM = re.compile(
    r"^arn:(?P<part>aws[a-z-]*):iam::(?P<acct>[0-9]{12}):(?P<kind>role|user)/(?P<rest>[\w+=,.@/-]+)$", re.ASCII
)
_STS = re.compile(
    r"^arn:(?P<part>aws[a-z-]*):sts::(?P<acct>[0-9]{12}):assumed-role/(?P<role>[\w+=,.@-]+)/(?P<session>[\w+=,.@-]+)$",
    re.ASCII,
)


class NotAPrincipal(ValueError):
    """The caller's ARN is not something an access entry can be made for."""


def role_name(arn: str) -> str:
    """The last path segment of an IAM role or user ARN."""
    return arn.rsplit("/", 1)[-1]


def normalise_principal(caller_arn: str, known: Mapping[str, str] | None = None) -> str:
    """The IAM role or user ARN behind ``caller_arn``.

    ``known`` maps registry keys (:func:`registry_key`: ``"<partition>/<account>/role/<name>"``) to registered
    role ARNs that may carry a path. A session is only ever mapped to a *role*: a role that
    happens to share its name with a registered IAM user is not that user.
    """
    if _IAM.match(caller_arn):
        if ":role/aws-service-role/" in caller_arn:
            raise NotAPrincipal("service-linked roles cannot be granted access")
        return caller_arn
    session = _STS.match(caller_arn)
    if not session:
        raise NotAPrincipal(f"'{caller_arn}' is neither an IAM role/user nor an assumed-role session")
    key = f"{session['part']}/{session['acct']}/role/{session['role']}"
    if known and key in known:
        return known[key]
    return f"arn:{session['part']}:iam::{session['acct']}:role/{session['role']}"


def registry_key(arn: str) -> str:
    """The ``"<partition>/<account>/<role|user>/<name>"`` key :func:`normalise_principal` looks
    roles up by. The partition is part of it: ``arn:aws-cn`` and ``arn:aws`` accounts with the
    same number are different accounts."""
    match = _IAM.match(arn)
    if not match:
        raise NotAPrincipal(f"'{arn}' is not an IAM role or user ARN")
    return f"{match['part']}/{match['acct']}/{match['kind']}/{role_name(arn)}"


def entry_identity(arn: str) -> tuple[str, str, str]:
    """``(kind, account, name)`` of an IAM role or user ARN, as an access-entry ARN names it:
    ``access-entry/<cluster>/<kind>/<account>/<name>/<uuid>`` (the path is not part of it; IAM
    names are unique in an account whatever their path)."""
    match = _IAM.match(arn)
    if not match:
        raise NotAPrincipal(f"'{arn}' is not an IAM role or user ARN")
    return match["kind"], match["acct"], role_name(arn)


def default_username(arn: str) -> str:
    """The Kubernetes username EKS gives a STANDARD access entry created without one (EKS User
    Guide, "Create access entries"): a user's ARN, or the role's session ARN (path removed) with
    the ``{{SessionName}}`` placeholder. eks-jit never sets another (``eks:username`` must be absent
    from every CreateAccessEntry: ``infra/permissions.py``) and puts it back if it changed."""
    match = _IAM.match(arn)
    if not match:
        raise NotAPrincipal(f"'{arn}' is not an IAM role or user ARN")
    if match["kind"] == "user":
        return arn
    return f"arn:{match['part']}:sts::{match['acct']}:assumed-role/{role_name(arn)}/{{{{SessionName}}}}"
