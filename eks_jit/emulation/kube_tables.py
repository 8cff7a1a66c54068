"""Server-side printing: the ``meta.k8s.io/v1`` Table kubectl asks for (``Accept: ...;as=Table``).

The columns are those the real API server prints for each kind (``kubectl get`` and ``-o wide``;
wide-only columns have priority 1); ages are computed from the emulated cluster's clock as the
real server computes them from its own, formatted as apimachinery's ``HumanDuration``. Each row
carries the object's metadata (``includeObject=Metadata``, the default) as PartialObjectMetadata.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

TABLE_MEDIA = "application/json;as=Table;v=v1;g=meta.k8s.io"


def wants_table(accept: str) -> bool:
    for media in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in media.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: 42s, 5m3s, 3h10m, 12d, 2y30d..."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: dict[str, Any], now: datetime) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    return human_duration((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())


Column = tuple[str, str, int, Callable[[dict[str, Any]], Any]]  # name, type, priority, cell


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []))


def _selector(obj: dict[str, Any]) -> str:
    labels = obj.get("spec", {}).get("selector", {}).get("matchLabels", {})
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = obj.get("status", {}).get("containerStatuses", [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(obj.get('spec', {}).get('containers', []))}"


def _restarts(obj: dict[str, Any]) -> int:
    return sum(int(s.get("restartCount", 0)) for s in obj.get("status", {}).get("containerStatuses", []))


COLUMNS: dict[str, list[Column]] = {
    "deployments": [
        ("Ready", "string", 0, lambda o: f"{o['status'].get('readyReplicas', 0)}/{o['spec'].get('replicas', 1)}"),
        ("Up-to-date", "integer", 0, lambda o: o["status"].get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: o["status"].get("availableReplicas", 0)),
        ("Containers", "string", 1, lambda o: ",".join(c["name"] for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    "replicasets": [
        ("Desired", "integer", 0, lambda o: o["spec"].get("replicas", 1)),
        ("Current", "integer", 0, lambda o: o["status"].get("replicas", 0)),
        ("Ready", "integer", 0, lambda o: o["status"].get("readyReplicas", 0)),
        ("Containers", "string", 1, lambda o: ",".join(c["name"] for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    "pods": [
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "Unknown")),
        ("Restarts", "string", 0, lambda o: str(_restarts(o))),
        ("IP", "string", 1, lambda o: o.get("status", {}).get("podIP", "<none>")),
        ("Node", "string", 1, lambda o: o.get("spec", {}).get("nodeName", "<none>")),
    ],
    "secrets": [
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
    ],
    "configmaps": [("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))],
    "namespaces": [("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "Active"))],
}


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    meta = copy.deepcopy(obj.get("metadata", {}))
    meta.pop("managedFields", None)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}


def table(plural: str, objects: list[dict[str, Any]], now: datetime, resource_version: str = "") -> dict[str, Any]:
    """``objects`` (all of kind ``plural``) as a Table (a watch event's object is a Table of one
    row, with the column definitions each time: kubectl prints the header once)."""
    name: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
    age: Column = ("Age", "string", 0, lambda o: _age(o, now))
    kind_columns = COLUMNS[plural]
    columns = [name, *(c for c in kind_columns if c[2] == 0), age, *(c for c in kind_columns if c[2] == 1)]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
        "columnDefinitions": [
            {"name": title, "type": kind, "format": "name" if title == "Name" else "", "description": "", "priority": p}
            for title, kind, p, _ in columns
        ],
        "rows": [{"cells": [cell(obj) for *_, cell in columns], "object": _partial(obj)} for obj in objects],
    }
