"""Reading a grant's session log: the Kubernetes requests the gateway recorded under it."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.errors import InvalidRequest
from ..domain.grant import Grant
from ..domain.recording import Command, CommandOutcome
from .access_control import ensure_may_see
from .ports import Deps

SESSION_PAGE = 200
SESSION_PAGE_MAX = 1000


@dataclass(frozen=True)
class SessionPage:
    grant: Grant
    commands: list[Command]  # in arrival order
    next: str | None  # the key of the last command given, when more follow; None on the last page


def session(
    deps: Deps, caller: str, grant_id: str, *, limit: int = SESSION_PAGE, after: str | None = None
) -> SessionPage:
    """One page of the grant's commands, oldest first, after the key ``after``. Whoever may read the
    grant may read its session (its requester, its approvers, auditors and admins). A grant with no
    recorded command (an entry-mode cluster's, or one never used) answers an empty page."""
    grant = deps.store.get(grant_id)  # GrantNotFound: 404, before anything about the caller is said
    ensure_may_see(deps, caller, grant)
    if not 1 <= limit <= SESSION_PAGE_MAX:
        raise InvalidRequest(f"'limit' must be 1 to {SESSION_PAGE_MAX}", code="invalid_limit", field="limit")
    if deps.session_log is None:
        return SessionPage(grant, [], None)
    commands, last = deps.session_log.commands(grant_id, limit=limit, after=after)
    return SessionPage(grant, commands, last)


def command_counts(deps: Deps, grants: list[Grant]) -> dict[str, dict[CommandOutcome, int]]:
    """How many commands of each outcome each grant has, for the audit (``commands`` is their sum).
    One Query per grant that was ever active; a grant that never gave access has none to count (the
    gateway records only under a grant in force)."""
    if deps.session_log is None:
        return {}
    log = deps.session_log
    return {g.id: log.outcomes(g.id) if g.activated_at is not None else {} for g in grants}
