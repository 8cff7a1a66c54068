"""The one place that makes a Lambda function: shared defaults set once.

Every function gets the same code bundle and dependency layer, the Python of the
``lambda_python`` setting on arm64 (Graviton: about 20% cheaper per GB-second than x86_64, and every dependency ships a
``manylinux2014_aarch64`` wheel), its own retained log group (named per stack instance:
:func:`log_group_name`), and its own IAM role that holds
nothing but the right to write to that log group until the caller grants what the function
uses (``infra/permissions.py``). Roles and functions have stable names so a cluster role in
another account can trust exactly these roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from eks_jit.server.config import Environment
from eks_jit.server.observability import SERVICE
from infra.bundling import ARCHITECTURE, FunctionBundle, LambdaPython, dependencies_layer, function_code
from infra.nag import acknowledge
from infra.settings import Deployment

METRICS_NAMESPACE = "EksJit"


def env_var(field: str) -> str:
    """The environment variable ``eks_jit.server.config.Environment`` reads ``field`` from: the names the
    functions read are the names the app sets, by construction."""
    alias = Environment.model_fields[field].alias
    assert alias, field
    return alias


def function_name(prefix: str, name: str) -> str:
    return f"{prefix}-{name}"


def stack_instance() -> str:
    """The first 8 hex digits of the stack's id (``arn:...:stack/EksJit/<uuid>``): the same for every
    update of one stack, new for a stack created again after ``cdk destroy``."""
    return Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))


def log_group_name(base: str) -> str:
    """``<base>-<stack instance>``. Log groups are retained on destroy (the audit trail outlives the
    deployment), so a fixed name would make the next deployment's ``CreateLogGroup`` fail ("already
    exists"); with the stack instance in it, the next deployment writes to new groups beside the old."""
    return f"{base}-{stack_instance()}"


def role_name(prefix: str, name: str, region: str = Aws.REGION) -> str:
    """Roles are global to an account: the region keeps two regional deployments apart."""
    return f"{prefix}-{name}-{region}"


@dataclass(frozen=True)
class Made:
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


class FunctionFactory:
    def __init__(self, scope: Construct, deployment: Deployment, *, table_name: str) -> None:
        self._deployment = deployment
        settings = deployment.settings
        bundle = FunctionBundle(deployment)
        self.python = LambdaPython(settings.lambda_python)
        self._code = function_code(bundle, self.python)
        self._layer = dependencies_layer(scope, "Dependencies", self.python)
        self._retention = logs.RetentionDays[settings.log_retention]
        self.environment = {
            env_var("table_name"): table_name,
            env_var("config_path"): bundle.config_env,
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": "INFO",
        }

    def make(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        handler: str,
        description: str,
        timeout: Duration,
        memory_size: int = 256,
        environment: dict[str, str] | None = None,
        retry_attempts: int | None = None,
        max_event_age: Duration | None = None,
        on_failure: lambda_.IDestination | None = None,
        extra_layers: tuple[lambda_.ILayerVersion, ...] = (),
        reserved_concurrency: int | None = None,
    ) -> Made:
        prefix = self._deployment.settings.prefix
        fn_name = function_name(prefix, name)
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            role_name=role_name(prefix, name),
            description=f"eks-jit {name} function: only what eks_jit.server.handlers.{name} uses",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            log_group_name=log_group_name(f"/aws/lambda/{fn_name}"),  # the function's LoggingConfig names it
            retention=self._retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.Function(
            scope,
            construct_id,
            function_name=fn_name,
            description=description,
            runtime=self.python.runtime,
            architecture=ARCHITECTURE,
            handler=handler,
            code=self._code,
            layers=[self._layer, *extra_layers],
            role=role,
            timeout=timeout,
            memory_size=memory_size,
            environment={**self.environment, **(environment or {})},
            log_group=log_group,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
            on_failure=on_failure,
            reserved_concurrent_executions=reserved_concurrency,
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"{self.python.identifier} on purpose (the lambda_python setting): the newest runtime whose layer "
            "this project builds and import-checks (`make layer-check`: cp3XX aarch64 wheels, every handler "
            "imported under that Python); a newer one is adopted once that check runs for it.",
        )
        return Made(function=function, role=role, log_group=log_group)
