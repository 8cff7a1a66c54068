"""Nothing is activated on the strength of a stored ``approved`` alone.

Before any activation (the API's auto-approval, the workflow after a human approval, the
sweeper finishing one that was interrupted), the decision is derived again from what is
recorded: the catalog and the Cedar policy evaluated now for the grant as stored, and, where
the policy needs humans, the distinct approvers' votes in the grant's event log. A grant item
written by anything else (a forged ``approved`` with no policy or no votes behind it) fails
closed.
"""

from __future__ import annotations

from ..domain.approvals import votes_missing
from ..domain.errors import InvalidRequest
from ..domain.grant import Grant
from .deciding import AccessRequest, decide
from .ports import Deps


def why_not_justified(deps: Deps, grant: Grant) -> str:
    """'' when the grant may be activated now; otherwise the reason it may not."""
    if grant.command is not None:  # a held command: its guardrail, its covering grant (logic/holds.py)
        from .holds import why_not_justified as why_not_held  # holds requests through lifecycle, which imports this

        return why_not_held(deps, grant)
    if deps.policies is None:
        return "this function was built without the policies, so it cannot check the grant"
    duration = grant.duration
    if grant.extends is not None:  # an extension is decided on the whole window
        duration += deps.store.get(grant.extends).duration
    if len(grant.namespaces) > 1:
        return "a grant covers one namespace or the cluster"
    request = AccessRequest(
        grant.requester,
        grant.cluster,
        grant.namespaces[0] if grant.namespaces else None,
        grant.scope,
        duration,
        grant.reason,
        session=grant.session,  # a session-bound grant on a cluster now in entry mode is not valid
    )
    try:
        _, decision = decide(deps, request)
    except InvalidRequest as exc:
        return f"the grant as stored is not a valid request: {exc.message}"
    if decision.outcome == "auto_approve":
        return ""
    catalog = deps.catalog
    return votes_missing(decision, grant.requester, deps.store.events(grant.id), catalog.groups_of, catalog.is_human)
