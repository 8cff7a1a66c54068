"""Reading grants, and the one user action on an existing grant in this layer: revoke."""

from __future__ import annotations

from ..domain.errors import Forbidden, InvalidRequest
from ..domain.grant import Action, Grant, GrantEvent, GrantStatus, ensure_revocable
from .access_control import ensure_may_revoke, ensure_may_see, is_admin
from .lifecycle import end
from .ports import Deps


def get_grant(deps: Deps, caller: str, grant_id: str) -> tuple[Grant, list[GrantEvent]]:
    grant = deps.store.get(grant_id)
    ensure_may_see(deps, caller, grant)
    return grant, deps.store.events(grant_id)


def list_grants(deps: Deps, caller: str, *, status: GrantStatus | None, mine: bool, limit: int) -> list[Grant]:
    if mine:
        return deps.store.by_requester(caller, status, limit)
    if not is_admin(deps, caller):
        raise Forbidden("only eks-jit admins may list other principals' grants")
    if status is None:
        raise InvalidRequest("listing all principals' grants needs a status", code="status_required", field="status")
    return list(deps.store.by_status(status, newest_first=True, limit=limit))


def revoke_grant(deps: Deps, caller: str, grant_id: str, reason: str = "") -> Grant:
    grant = deps.store.get(grant_id)
    ensure_may_revoke(deps, caller, grant)
    ensure_revocable(grant)  # an ended grant or an extension: refused, nothing written
    return end(deps, grant, Action.REVOKE, actor=caller, reason=reason or "revoked early")
