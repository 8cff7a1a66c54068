"""``eks-jit local up``: the whole control plane on one machine, no AWS account.

moto in server mode (with the EKS access-entry emulation, atomic DynamoDB writes and the
Lambda dispatcher registered) holds every resource the CDK stack would create; the real
handlers serve a local API that checks SigV4; a local scheduler fires due one-time schedules
and runs the sweeper. Endpoints and identities are written to ``<state dir>/local.json``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eks_jit.bundled import bundled
from eks_jit.files import write_private
from eks_jit.local.sigv4 import Identity

LOCAL_CONFIG = bundled("config", "local", "eks-jit.yaml")
IDENTITIES = bundled("config", "local", "identities.yaml")
REGION = "us-east-1"
# Seconds an access-entry change takes to reach the emulated cluster's authenticator. EKS says
# "may take several seconds" and publishes no bound; a few seconds keep agents honest about it
# (and the demo short). EKS_JIT_LOCAL_PROPAGATION_SECONDS overrides it (0: at once).
PROPAGATION_SECONDS = 3.0


class PortBusy(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise PortBusy(f"port {port} is busy: is another `eks-jit local up` running? (use --port)") from None


def load_identities(path: Path = IDENTITIES) -> dict[str, Identity]:
    """The identities of ``path`` (the shipped ones by default) with fresh secret keys: access key
    id -> Identity. ValueError says what is wrong with the file."""
    try:
        entries = yaml.safe_load(path.read_text())["identities"]
        found = {
            e["access_key_id"]: Identity(e["name"], e["access_key_id"], secrets.token_urlsafe(30), e["principal_arn"])
            for e in entries
        }
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not an identities file (identities: [{{name, access_key_id, principal_arn}}]): {exc}"
        ) from None
    if len({i.name for i in found.values()}) != len(entries) or len(found) != len(entries):
        raise ValueError(f"{path}: every identity needs its own name and access_key_id")
    return found


GATEWAY_ROLE = "arn:aws:iam::123456789012:role/eks-jit-gateway"  # the account of config/local's principals


def own_identity() -> Identity:
    """The local data-path gateway's own credentials: the one caller ``POST /v1/holds`` takes
    (EKS_JIT_GATEWAY_ROLE_ARN), as the deployed gateway signs with its function's role. Fresh each run."""
    return Identity("eks-jit-gateway", "AKIALOCALGATEWAY0001", secrets.token_urlsafe(30), GATEWAY_ROLE)


@dataclass
class LocalControlPlane:
    state_dir: Path
    port: int = 0
    aws_port: int = 0
    config_path: Path = LOCAL_CONFIG
    identities_path: Path = IDENTITIES
    sweep_every: float = 10.0
    kube_gateway_port: int = 0
    propagation_delay: float = field(
        default_factory=lambda: float(os.environ.get("EKS_JIT_LOCAL_PROPAGATION_SECONDS", PROPAGATION_SECONDS))
    )

    def start(self) -> dict[str, Any]:
        """Start everything; returns what local.json holds."""
        if self.port:
            ensure_free(self.port)
        if self.aws_port:
            ensure_free(self.aws_port)
        self.aws_port = self.aws_port or free_port()
        endpoint = f"http://127.0.0.1:{self.aws_port}"
        # Before moto loads: where its own Step Functions interpreter sends calls, and the
        # credentials our clients sign with (any value works against moto).
        os.environ.update(
            {
                "MOTO_PORT": str(self.aws_port),
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_METRICS_NAMESPACE": "EksJit",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            }
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
        os.environ.pop("AWS_PROFILE", None)
        import boto3
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from eks_jit.emulation import dynamodb_atomic, eks_access_entries, lambda_isolation
        from eks_jit.local import inbox
        from eks_jit.local.gateway import Gateway
        from eks_jit.local.resources import create_resources, register_handlers
        from eks_jit.local.scheduler import LocalScheduler
        from eks_jit.server import bootstrap
        from eks_jit.server.config import load_catalog, load_policies, read_environment
        from eks_jit.server.handlers import api

        eks_access_entries.register(propagation_delay=self.propagation_delay)
        dynamodb_atomic.register()
        lambda_isolation.register()  # the gateway calls the handlers from several threads at once
        register_handlers()
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        default_user_config["lambda"]["use_docker"] = False
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self._moto.start()
        catalog = load_catalog(self.config_path)
        (self.state_dir / "local.json").unlink(missing_ok=True)  # a crashed run's: not up until written
        (self.state_dir / inbox.STORE).unlink(missing_ok=True)  # links of that run's requests
        resources = create_resources(catalog, region=REGION, endpoint_url=endpoint)
        # Before any request: every approval message to a human lands in their inbox
        inboxes = inbox.create_inboxes(
            boto3.client("sqs", endpoint_url=endpoint),
            boto3.client("sns", endpoint_url=endpoint),
            resources.approvals_topic_arn,
            [p.name for p in catalog.principals if p.kind == "human"],
        )
        identities = load_identities(self.identities_path)
        gateway_identity = own_identity()  # the data-path gateway's, for POST /v1/holds only (not in local.json)
        self._gateway = Gateway(
            self.port,
            api.handler,
            {**identities, gateway_identity.access_key_id: gateway_identity},
            _context,
            region=REGION,
        )
        kube = None
        if any(c.gateway for c in catalog.clusters.values()):
            from botocore.credentials import Credentials

            from eks_jit.local import kube_gateway
            from eks_jit.server.adapters.dynamodb import DynamoGrantStore
            from eks_jit.server.adapters.holds_api import ApiHolds
            from eks_jit.server.adapters.session_log import DynamoSessionLog
            from eks_jit.server.logic.ports import SystemClock

            ddb = boto3.client("dynamodb", endpoint_url=endpoint)
            kube = self._kube = kube_gateway.start(
                catalog,
                DynamoGrantStore(ddb, resources.table),
                identities,
                SystemClock(),
                session_log=DynamoSessionLog(ddb, resources.table),
                policies=load_policies(self.config_path, catalog),
                port=self.kube_gateway_port,
                holds=ApiHolds(
                    lambda: self._gateway.url,
                    REGION,
                    lambda: Credentials(gateway_identity.access_key_id, gateway_identity.secret_access_key),
                ),
            )
        environment = resources.environment(
            self.config_path,
            public_url=self._gateway.url,
            endpoint_url=endpoint,
            gateway_endpoint=kube.url if kube else "",
            gateway_ca=kube.ca_b64 if kube else "",
            gateway_role_arn=gateway_identity.principal_arn if kube else "",
        )
        bootstrap.use(bootstrap.build(read_environment(environment)))
        self._gateway.start()
        self.port = self._gateway.port
        self._scheduler = LocalScheduler(
            boto3.client("scheduler", endpoint_url=endpoint),
            boto3.client("lambda", endpoint_url=endpoint),
            resources.schedule_group,
            resources.functions["sweeper"],
            sweep_every=self.sweep_every,
        )
        self._scheduler.start()
        state = {
            "api_endpoint": self._gateway.url,
            # the data-path gateway kubectl talks to for gateway clusters (its CA in gateway_ca, PEM)
            "gateway_endpoint": kube.url if kube else None,
            "gateway_ca": kube.server.ca_pem if kube else None,
            "aws_endpoint": endpoint,
            "region": REGION,
            "propagation_delay_seconds": self.propagation_delay,
            "config": str(self.config_path),
            "identities": [
                {
                    "name": i.name,
                    "access_key_id": i.access_key_id,
                    "secret_access_key": i.secret_access_key,
                    "principal_arn": i.principal_arn,
                }
                for i in identities.values()
            ],
            "resources": resources.to_json(),
            "inboxes": inboxes,
        }
        write_state(self.state_dir, state)
        return state

    def stop(self) -> None:
        for part in ("_scheduler", "_kube", "_gateway", "_moto"):
            if hasattr(self, part):
                getattr(self, part).stop()
        (self.state_dir / "local.json").unlink(missing_ok=True)
        (self.state_dir / "inbox.json").unlink(missing_ok=True)


def write_state(state_dir: Path, state: dict[str, Any]) -> Path:
    """``<state dir>/local.json``, readable by its owner only: it holds every identity's secret
    key. Taken to 0600 also when an earlier run (or anyone) left the file with another mode."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "local.json"
    write_private(path, json.dumps(state, indent=2))
    return path


def _context() -> Any:
    from eks_jit.emulation.lambda_dispatch import Context

    return Context("eks-jit-api")
