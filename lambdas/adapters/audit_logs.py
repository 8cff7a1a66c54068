"""The EKS control-plane audit log in CloudWatch Logs: log group ``/aws/eks/<cluster>/cluster``,
streams ``kube-apiserver-audit-*``. Reads the events of one principal in one window.

The server-side filter is a quoted term (the role or user name) to keep the transfer small;
the exact match on the principal and the window is done by ``eks_jit.server.domain.activity``.
Returns None when the cluster does not send audit logs, so a report can say so instead of
being silently empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..domain.activity import parse
from ..domain.catalog import Cluster
from .aws import error_code, transient_errors
from .eks import ClientFactory

STREAM_PREFIX = "kube-apiserver-audit"


def log_group(cluster: str) -> str:
    return f"/aws/eks/{cluster}/cluster"


class CloudWatchAuditLog:
    def __init__(self, clusters: Mapping[str, Cluster], logs: ClientFactory, eks: ClientFactory) -> None:
        self._clusters = clusters
        self._logs = logs
        self._eks = eks

    def audit_enabled(self, cluster: str, session: str) -> bool:
        with transient_errors(f"describe cluster {cluster}"):
            described = self._eks(cluster, self._clusters[cluster], session).describe_cluster(name=cluster)["cluster"]
        for setting in (described.get("logging") or {}).get("clusterLogging", []):
            if "audit" in setting.get("types", []) and setting.get("enabled"):
                return True
        return False

    def events(
        self, cluster: str, principal: str, start: datetime, end: datetime, session: str
    ) -> list[dict[str, Any]] | None:
        if not self.audit_enabled(cluster, session):
            return None
        logs = self._logs(cluster, self._clusters[cluster], session)
        found: list[dict[str, Any]] = []
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=log_group(cluster),
            logStreamNamePrefix=STREAM_PREFIX,
            startTime=int(start.timestamp() * 1000),
            endTime=int(end.timestamp() * 1000) + 1,
            filterPattern=f'"{principal.rsplit("/", 1)[-1]}"',
        )
        try:
            with transient_errors(f"read the audit log of {cluster}"):
                for page in pages:
                    for item in page.get("events", []):
                        if not str(item.get("logStreamName", "")).startswith(STREAM_PREFIX):
                            continue
                        event = parse(item.get("message", ""))
                        if event is not None:
                            found.append(event)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return found
