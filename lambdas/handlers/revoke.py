"""The revocation schedule's target: ``{"grant_id": ...}``. Waits until the grant's
``expires_at``, expires it, and takes the access away. Safe to deliver twice."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from .. import bootstrap
from ..logic.lifecycle import on_schedule
from ..observability import MetricUnit, logger, metrics


class RevokeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    grant_id: str


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RevokeEvent.model_validate(event)
    logger.append_keys(grant_id=request.grant_id)
    deps = bootstrap.deps(policies=False)
    grant = on_schedule(deps, request.grant_id)
    if grant.ended_at and grant.expires_at:
        lag = (grant.ended_at - grant.expires_at).total_seconds()
        metrics.add_metric(name="RevocationLagSeconds", unit=MetricUnit.Seconds, value=lag)
    logger.info("revocation handled", extra={"status": grant.status.value})
    return {"grant_id": grant.id, "status": grant.status.value}
