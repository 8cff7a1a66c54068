"""Who may read or act on an existing grant. (Who may *request* what is Cedar policy.)"""

from __future__ import annotations

from lambdas.domain.approvals import may_decide
from lambdas.domain.errors import Forbidden
from lambdas.domain.grant import Grant
from lambdas.logic.ports import Deps


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
    if caller != grant.requester and not is_admin(deps, caller):
        raise Forbidden("only the requester or an eks-jit admin may revoke this grant")
