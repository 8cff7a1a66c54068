"""What the emulated cluster behind local mode's gateway holds at start (``demo-gateway``).

Namespaces ``payments`` and ``orders``. In ``payments``: deployment ``payments-api`` (container
``app``, selector ``app=payments-api``), its ReplicaSet and one running pod whose log holds one
line with an AWS-access-key-looking value (AWS's own documentation example key, so no scanner
mistakes it for a leak and a masking rule for ``AKIA[0-9A-Z]{16}`` has something to find), secret
``payments-db`` (key ``password``) and a configmap. In ``orders``: a small deployment with its pod,
a secret and a configmap, so a grant on one namespace can be shown to give nothing on the other.
"""

from __future__ import annotations

import base64
import copy
from datetime import datetime, timedelta
from typing import Any

# AWS's documentation example access key id (`AKIA` + 16 upper-case letters and digits)
FAKE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
PAYMENTS_IMAGE = "registry.example/payments-api:1.4.2"
PAYMENTS_POD = "payments-api-7c9d8f6b5d-x2k4p"
PAYMENTS_DB_PASSWORD = "local-only-not-a-secret"  # noqa: S105 (emulated data)
ORDERS_POD = "orders-worker-5b7f9c8d4e-q8m2z"

PAYMENTS_LOG = [
    'level=info msg="payments-api 1.4.2 starting" pid=1',
    'level=info msg="connected to postgres" host=payments-db.payments.svc port=5432',
    f'level=warn msg="legacy S3 client configured from environment" aws_access_key_id={FAKE_ACCESS_KEY_ID}',
    'level=info msg="listening" addr=:8080',
    'level=info msg="request" method=POST path=/v1/charges status=201 duration_ms=42',
    'level=error msg="upstream timeout" upstream=fraud-check duration_ms=5000',
]
ORDERS_LOG = [
    'level=info msg="orders-worker 2.0.1 starting"',
    'level=info msg="consuming" queue=orders',
]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _deployment(namespace: str, name: str, container: str, image: str, uid: str, created: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": created,
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "image": image,
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "resources": {},
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }


def _replica_set(deployment: dict[str, Any], rs_hash: str) -> dict[str, Any]:
    meta = deployment["metadata"]
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"]["labels"]["pod-template-hash"] = rs_hash
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{rs_hash}",
            "namespace": meta["namespace"],
            "uid": meta["uid"][:-4] + "0rs0",
            "creationTimestamp": meta["creationTimestamp"],
            "labels": template["metadata"]["labels"],
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [_owner("apps/v1", "Deployment", meta)],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": template["metadata"]["labels"]},
            "template": template,
        },
        "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 1},
    }


def _pod(replica_set: dict[str, Any], name: str, ip: str, started: str) -> dict[str, Any]:
    meta = replica_set["metadata"]
    template = replica_set["spec"]["template"]
    containers = template["spec"]["containers"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": meta["uid"][:-4] + "0pd0",
            "creationTimestamp": started,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [_owner("apps/v1", "ReplicaSet", meta)],
        },
        "spec": {**template["spec"], "nodeName": "ip-10-0-1-23.eu-west-1.compute.internal"},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "startTime": started,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
                for c in containers
            ],
        },
    }


def _owner(api_version: str, kind: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _namespace(name: str, created: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "creationTimestamp": created, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _config_map(namespace: str, name: str, data: dict[str, str], created: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "data": data,
    }


def _secret(namespace: str, name: str, data: dict[str, str], created: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "type": "Opaque",
        "data": {key: _b64(value) for key, value in data.items()},
    }


def seed_objects(now: datetime) -> list[dict[str, Any]]:
    """The objects, with creation times a few days and hours before ``now``."""

    def ago(delta: timedelta) -> str:
        return (now - delta).strftime("%Y-%m-%dT%H:%M:%SZ")

    created, started = ago(timedelta(days=12)), ago(timedelta(hours=5))
    payments = _deployment(
        "payments",
        "payments-api",
        "app",
        PAYMENTS_IMAGE,
        "5d0c6b1e-3f2a-4c8d-9e71-a1b2c3d40001",
        created,
    )
    orders = _deployment(
        "orders",
        "orders-worker",
        "worker",
        "registry.example/orders-worker:2.0.1",
        "5d0c6b1e-3f2a-4c8d-9e71-a1b2c3d40002",
        created,
    )
    objects: list[dict[str, Any]] = [_namespace("payments", created), _namespace("orders", created)]
    for deployment, pod, ip in ((payments, PAYMENTS_POD, "10.0.1.57"), (orders, ORDERS_POD, "10.0.2.31")):
        replica_set = _replica_set(deployment, pod.split("-")[2])
        objects += [deployment, replica_set, _pod(replica_set, pod, ip, started)]
    objects += [
        _secret("payments", "payments-db", {"username": "payments", "password": PAYMENTS_DB_PASSWORD}, created),
        _config_map(
            "payments", "payments-api-config", {"LOG_LEVEL": "info", "FRAUD_CHECK_URL": "http://fraud"}, created
        ),
        _secret("orders", "orders-queue", {"token": "local-only-queue-token"}, created),
        _config_map("orders", "orders-worker-config", {"QUEUE": "orders"}, created),
    ]
    return objects


def seed_logs() -> dict[tuple[str, str, str], list[str]]:
    """(namespace, pod, container) -> the log lines the container has written so far."""
    return {
        ("payments", PAYMENTS_POD, "app"): list(PAYMENTS_LOG),
        ("orders", ORDERS_POD, "worker"): list(ORDERS_LOG),
    }
