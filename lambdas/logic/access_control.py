"""Who may read or act on an existing grant. (Who may *request* what is Cedar policy.)"""

from __future__ import annotations

from ..domain.approvals import may_decide
from ..domain.errors import Forbidden
from ..domain.grant import Grant
from .ports import Deps


def is_admin(deps: Deps, caller: str) -> bool:
    return caller in deps.catalog.settings.admins


def is_auditor(deps: Deps, caller: str) -> bool:
    return caller in deps.catalog.settings.auditors or is_admin(deps, caller)


def ensure_may_see(deps: Deps, caller: str, grant: Grant) -> None:
    """The requester, an admin or auditor, and the grant's approvers may read it."""
    approver = may_decide(grant, caller, deps.catalog.groups_of, deps.catalog.is_human)
    if caller != grant.requester and not is_auditor(deps, caller) and not approver:
        raise Forbidden("this grant belongs to another principal")


def ensure_auditor(deps: Deps, caller: str) -> None:
    if not is_auditor(deps, caller):
        raise Forbidden("only eks-jit auditors and admins may list every grant")


def ensure_may_revoke(deps: Deps, caller: str, grant: Grant) -> None:
    """The requester, an eks-jit admin, and the people who approved the grant may end it: taking
    access away only narrows it, and whoever gave it must be able to take it back at 3 a.m.
    Approvers who did not approve it, and auditors, may not."""
    if caller == grant.requester or caller in grant.approved_by or is_admin(deps, caller):
        return
    humans = [a for a in grant.approved_by if not a.startswith("policy:")]
    who = f", the approvers who approved it ({', '.join(humans)})" if humans else ""
    raise Forbidden(f"only its requester ({grant.requester}){who} or an eks-jit admin may revoke this grant")
