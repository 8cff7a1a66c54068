"""Runs on a fixed rate: the backstop that expires overdue grants and reconciles every
principal eks-jit manages. Publishes what it found as metrics the alarms watch."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import bootstrap
from ..logic.sweeper import sweep
from ..observability import MetricUnit, logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep(bootstrap.deps())  # finishing an approval re-derives its decision: needs the policies
    metrics.add_metric(name="OverdueGrantsExpired", unit=MetricUnit.Count, value=len(report.overdue_expired))
    metrics.add_metric(name="AccessDriftFixed", unit=MetricUnit.Count, value=len(report.drift_fixed))
    metrics.add_metric(name="SweeperErrors", unit=MetricUnit.Count, value=len(report.errors))
    (logger.error if report.errors else logger.info)("sweep done", extra=asdict(report))
    return asdict(report)
