"""The one place that creates the logger and metrics; handlers append structured keys
(``grant_id``, ``principal``, ``cluster``) once per invocation."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "eks-jit"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="EksJit", service=SERVICE)

__all__ = ["MetricUnit", "logger", "metrics"]
