"""The AWS resources the CDK stack creates, created against moto (tests, benchmarks, local
mode): the grant table (from the same definition the CDK storage construct uses), the
schedule group, topics, secrets, the Lambda functions (dispatched in-process to the real
handlers), the approval state machine from ``statemachines/``, and the clusters. Also what
the accounts hold before eks-jit is deployed: the IAM roles and users the configuration
registers (EKS refuses an access entry for a principal that does not exist at its ARN)."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3

from eks_jit.bundled import bundled
from eks_jit.server.adapters.table import create_table_kwargs
from eks_jit.server.domain.catalog import Catalog

# The deployed functions' Python: DeploySettings' default (infra/settings.py, not installed with the
# package; tests/unit/test_packaging.py holds the two equal).
LAMBDA_PYTHON = "3.13"
STATE_MACHINE = bundled("statemachines", "approval.asl.json")
TABLE = "eks-jit-grants"
SCHEDULE_GROUP = "eks-jit"
FUNCTIONS = {
    "api": "eks_jit.server.handlers.api.handler",
    "revoke": "eks_jit.server.handlers.revoke.handler",
    "sweeper": "eks_jit.server.handlers.sweeper.handler",
    "notify": "eks_jit.server.handlers.notify.handler",
    "workflow": "eks_jit.server.handlers.workflow.handler",
}


def render_definition(path: Path, substitutions: dict[str, str]) -> str:
    """The ASL file with ``${Name}`` placeholders filled, as CDK's definition substitutions do."""
    text = path.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"{path}: a placeholder was left unsubstituted")
    return text


@dataclass(frozen=True)
class Resources:
    """What was created: everything a function's environment names."""

    region: str
    account: str
    table: str
    schedule_group: str
    functions: dict[str, str]  # short name -> function ARN
    scheduler_role_arn: str
    state_machine_arn: str
    approvals_topic_arn: str
    outcomes_topic_arn: str
    link_key_secret: str
    slack_secret: str

    def environment(
        self,
        config_path: Path,
        public_url: str = "",
        endpoint_url: str | None = None,
        *,
        gateway_endpoint: str = "",
        gateway_ca: str = "",
        gateway_role_arn: str = "",
    ) -> dict[str, str]:
        """The functions' environment; ``gateway_endpoint``/``gateway_ca``: eks-jit's gateway, which
        grants on gateway clusters connect through (empty: none runs, so they answer no connection)."""
        env = {
            "EKS_JIT_TABLE": self.table,
            "EKS_JIT_CONFIG": str(config_path),
            "EKS_JIT_SCHEDULE_GROUP": self.schedule_group,
            "EKS_JIT_REVOKE_TARGET_ARN": self.functions["revoke"],
            "EKS_JIT_SCHEDULER_ROLE_ARN": self.scheduler_role_arn,
            "EKS_JIT_STATE_MACHINE_ARN": self.state_machine_arn,
            "EKS_JIT_APPROVALS_TOPIC_ARN": self.approvals_topic_arn,
            "EKS_JIT_OUTCOMES_TOPIC_ARN": self.outcomes_topic_arn,
            "EKS_JIT_LINK_KEY_SECRET": self.link_key_secret,
            "EKS_JIT_SLACK_SECRET": self.slack_secret,
            "EKS_JIT_PUBLIC_URL": public_url,
            "EKS_JIT_GATEWAY_ENDPOINT": gateway_endpoint,
            "EKS_JIT_GATEWAY_CA": gateway_ca,
            "EKS_JIT_GATEWAY_ROLE_ARN": gateway_role_arn,
            "AWS_REGION": self.region,
        }
        if endpoint_url:
            env["AWS_ENDPOINT_URL"] = endpoint_url
        return env

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "local mode runs the handlers in-process (eks_jit/emulation/lambda_dispatch.py)")
    return buffer.getvalue()


def registered_principals(catalog: Catalog) -> list[str]:
    """Every IAM role or user ARN the configuration names as a principal, admin or auditor."""
    settings = catalog.settings
    return list(dict.fromkeys([*(p.arn for p in catalog.principals), *settings.admins, *settings.auditors]))


def iam_client(account: str, *, region: str, endpoint_url: str | None = None, partition: str = "aws") -> Any:
    """An IAM client for ``account``: the caller's own, or reached by assuming a role in it
    (moto issues keys of the role's account), as an administrator would."""
    sts = boto3.client("sts", region_name=region, endpoint_url=endpoint_url)
    if sts.get_caller_identity()["Account"] == account:
        return boto3.client("iam", region_name=region, endpoint_url=endpoint_url)
    creds = sts.assume_role(
        RoleArn=f"arn:{partition}:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="eks-jit-local-setup",
    )["Credentials"]
    return boto3.client(
        "iam",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def create_principals(arns: Iterable[str], *, region: str, endpoint_url: str | None = None) -> None:
    """Create the IAM roles and users ``arns`` name, with their paths, each in its own account
    (moto keeps IAM per account: :func:`iam_client`). Idempotent."""
    clients: dict[str, Any] = {}
    for arn in arns:
        _, partition, _, _, account, resource = arn.split(":", 5)
        kind, _, rest = resource.partition("/")
        path, _, name = rest.rpartition("/")
        if account not in clients:
            clients[account] = iam_client(account, region=region, endpoint_url=endpoint_url, partition=partition)
        iam = clients[account]
        iam_path = f"/{path}/" if path else "/"
        try:
            if kind == "role":
                trust = {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
                iam.create_role(RoleName=name, Path=iam_path, AssumeRolePolicyDocument=json.dumps(trust))
            else:
                iam.create_user(UserName=name, Path=iam_path)
        except iam.exceptions.EntityAlreadyExistsException:
            pass


def create_resources(
    catalog: Catalog,
    *,
    region: str,
    endpoint_url: str | None = None,
    table: str = TABLE,
    schedule_group: str = SCHEDULE_GROUP,
    slack_signing_secret: str | None = None,
) -> Resources:
    def client(service: str, where: str = region) -> Any:
        return boto3.client(service, region_name=where, endpoint_url=endpoint_url)

    account = client("sts").get_caller_identity()["Account"]
    create_principals(registered_principals(catalog), region=region, endpoint_url=endpoint_url)
    client("dynamodb").create_table(**create_table_kwargs(table))
    client("scheduler").create_schedule_group(Name=schedule_group)
    iam = client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="eks-jit-local", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    lam = client("lambda")
    functions = {
        short: lam.create_function(
            FunctionName=f"eks-jit-{short}",
            Runtime=f"python{LAMBDA_PYTHON}",
            Role=role,
            Handler=handler,
            Code={"ZipFile": _zip()},
            Timeout=300,
        )["FunctionArn"]
        for short, handler in FUNCTIONS.items()
    }
    definition = render_definition(
        STATE_MACHINE, {"NotifyFunctionArn": functions["notify"], "WorkflowFunctionArn": functions["workflow"]}
    )
    machine = client("stepfunctions").create_state_machine(
        name="eks-jit-approval", definition=definition, roleArn=role
    )["stateMachineArn"]
    sns = client("sns")
    sm = client("secretsmanager")
    link_key = sm.create_secret(
        Name="eks-jit/approval-link-key", SecretString=json.dumps({"key": secrets.token_hex(32)})
    )
    slack = sm.create_secret(
        Name="eks-jit/slack",
        SecretString=json.dumps(
            {
                "bot_token": "xoxb-local-" + secrets.token_hex(8),
                "signing_secret": slack_signing_secret or secrets.token_hex(16),
            }
        ),
    )
    for name, cluster in catalog.clusters.items():
        client("eks", cluster.region).create_cluster(
            name=name,
            roleArn=f"arn:{cluster.partition}:iam::{cluster.account}:role/eks-cluster-role",
            resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]},
            accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"},
            logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
        )
        # EKS creates the control-plane log group when logging is on.
        client("logs", cluster.region).create_log_group(logGroupName=f"/aws/eks/{name}/cluster")
    return Resources(
        region=region,
        account=account,
        table=table,
        schedule_group=schedule_group,
        functions=functions,
        scheduler_role_arn=role,
        state_machine_arn=machine,
        approvals_topic_arn=sns.create_topic(Name="eks-jit-approvals")["TopicArn"],
        outcomes_topic_arn=sns.create_topic(Name="eks-jit-outcomes")["TopicArn"],
        link_key_secret=link_key["ARN"],
        slack_secret=slack["ARN"],
    )


def register_handlers() -> None:
    """Point moto's Lambda at the real handlers (see eks_jit/emulation/lambda_dispatch.py)."""
    import importlib

    from eks_jit.emulation import lambda_dispatch

    lambda_dispatch.register()
    for short, path in FUNCTIONS.items():
        module, attr = path.rsplit(".", 1)
        lambda_dispatch.add_handler(f"eks-jit-{short}", getattr(importlib.import_module(module), attr))
