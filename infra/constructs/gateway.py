"""The data-path gateway (issue 17): agents' kubectl talks to it, never to the EKS API server.

Created only when a cluster of the configuration has ``access_mode: gateway``. One Lambda function
(``eks_jit.server.handlers.gateway:app``, an ASGI app served by uvicorn) behind the AWS Lambda Web
Adapter, reached through its function URL in ``RESPONSE_STREAM`` mode so watches and ``logs -f``
stream (Python cannot stream from a Lambda handler natively; the adapter, an extension from an AWS
layer, runs the web server and relays its response as it comes). Why Lambda and not Fargate:
docs/decisions.md, "The gateway's runtime".

- **The function URL has no AWS auth (``NONE``)**: kubectl cannot SigV4-sign. The gateway
  authenticates every request itself with the standard EKS token (a presigned STS
  ``GetCallerIdentity`` it has STS answer), as the EKS public endpoint does, and refuses anything
  else with a Kubernetes 401. No CORS: no browser has a reason to call it. TLS is the function URL's
  own (``*.lambda-url.<region>.on.aws``, publicly trusted), so ``EKS_JIT_GATEWAY_CA`` is empty.
- **Its role** may read the caller's grants, record each command (``COMMAND#`` items only) and
  describe the gateway clusters (``infra/permissions.py``, ``gateway_statements``): no access-entry
  API, no other item.
- **Its access entry**: one static ``AWS::EKS::AccessEntry`` per gateway cluster for that role, type
  STANDARD, group ``eks-jit:gateway`` and no access policy: by itself it can do nothing in the
  cluster but impersonate what ``eks-jit rbac render`` lets that group impersonate (the per-grant
  users and the grants' groups). The entry is not tagged managed: the reconciler never touches it.
- **Streams** last at most the function timeout (15 minutes, Lambda's ceiling): the gateway is told
  to end a stream earlier (``EKS_JIT_GATEWAY_STREAM_LIMIT_SECONDS``) so the invocation ends cleanly
  and kubectl re-opens its watch, rather than being cut off as a timeout.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, Stack, Token
from aws_cdk import aws_eks as eks
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from eks_jit.server.config import ConfigError
from eks_jit.server.domain.impersonation import GATEWAY_GROUP
from infra import permissions
from infra.bundling import ARCHITECTURE, GATEWAY_SCRIPT, gateway_layer
from infra.functions import FunctionFactory, Made, env_var
from infra.settings import Deployment, safe_id

GATEWAY_HANDLER = "eks_jit.server.handlers.gateway:app"  # what infra/gateway/run.sh serves
WEB_ADAPTER_ACCOUNT = "753240598075"  # publishes the Lambda Web Adapter layers in the commercial regions
GATEWAY_TIMEOUT = Duration.minutes(15)  # Lambda's ceiling: the longest a watch can stay open
STREAM_MARGIN_SECONDS = 30  # the gateway ends a stream this long before the invocation would be cut off
APP_PORT = "8080"  # where uvicorn listens (127.0.0.1) and the adapter forwards


def web_adapter_layer_arn(deployment: Deployment) -> str:
    """The AWS Lambda Web Adapter layer for the functions' architecture, in the stack's region, or the
    operator's own ARN (``web_adapter_layer_arn``)."""
    settings = deployment.settings
    if settings.web_adapter_layer_arn:
        return settings.web_adapter_layer_arn
    name = "LambdaAdapterLayerArm64" if ARCHITECTURE.name == "arm64" else "LambdaAdapterLayerX86"
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{WEB_ADAPTER_ACCOUNT}:layer:{name}:"
        f"{settings.web_adapter_layer_version}"
    )


def adapter_environment() -> dict[str, str]:
    """The Lambda Web Adapter's settings (its guide, "Environment Variables")."""
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",  # the layer's wrapper: executes the handler script
        "AWS_LWA_INVOKE_MODE": "response_stream",  # must match the function URL's RESPONSE_STREAM
        "AWS_LWA_PORT": APP_PORT,
        # Ready once uvicorn accepts connections (it binds after the app's startup): no HTTP route of the
        # gateway has to answer an unauthenticated probe.
        "AWS_LWA_READINESS_CHECK_PROTOCOL": "tcp",
    }


def check_same_account_and_region(construct: Construct, deployment: Deployment) -> None:
    """CloudFormation creates an ``AWS::EKS::AccessEntry`` in the stack's own account and region: a gateway
    cluster elsewhere cannot get the gateway's entry from this stack. Checked when the stack's environment
    is known at synth (``cdk deploy`` with credentials sets it); otherwise the deploy fails on the entry."""
    stack = Stack.of(construct)
    for name, cluster in permissions.gateway_clusters(deployment.catalog).items():
        for what, mine, theirs in (
            ("account", stack.account, cluster.account),
            ("region", stack.region, cluster.region),
        ):
            if not Token.is_unresolved(mine) and mine != theirs:
                raise ConfigError(
                    f"cluster '{name}': access_mode gateway needs the cluster in this stack's {what} "
                    f"({mine}), but it is in {theirs}: the gateway's access entry is created by this stack"
                )


class Gateway(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        factory: FunctionFactory,
        table_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        check_same_account_and_region(self, deployment)
        settings = deployment.settings
        self.clusters = permissions.gateway_clusters(deployment.catalog)
        self.dependencies = gateway_layer(self, "Dependencies", factory.python)
        self.web_adapter = lambda_.LayerVersion.from_layer_version_arn(
            self, "WebAdapter", web_adapter_layer_arn(deployment)
        )
        self.handler: Made = factory.make(
            self,
            "Function",
            name="gateway",
            handler=GATEWAY_SCRIPT,  # a start script: the adapter's /opt/bootstrap executes it
            description="eks-jit data-path gateway: checks and records every kubectl request of a grant",
            timeout=GATEWAY_TIMEOUT,
            memory_size=512,  # TLS to the API server and streaming on the request path
            environment={
                **adapter_environment(),
                "EKS_JIT_GATEWAY_STREAM_LIMIT_SECONDS": str(int(GATEWAY_TIMEOUT.to_seconds()) - STREAM_MARGIN_SECONDS),
            },
            extra_layers=(self.dependencies, self.web_adapter),
            reserved_concurrency=settings.gateway_reserved_concurrency,
        )
        self.function = self.handler.function
        permissions.grant(self.handler.role, permissions.gateway_statements(table_arn, deployment.catalog))
        self.url = self.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
        )
        self.entries = {
            name: eks.CfnAccessEntry(
                self,
                f"AccessEntry{safe_id(name)}",
                cluster_name=name,
                principal_arn=self.handler.role.role_arn,
                type="STANDARD",
                kubernetes_groups=[GATEWAY_GROUP],
            )
            for name in self.clusters
        }

    @property
    def endpoint(self) -> str:
        """The URL without its trailing slash (``https://<id>.lambda-url.<region>.on.aws``): the base
        ``EKS_JIT_GATEWAY_ENDPOINT`` wants, below which each cluster is ``/clusters/<name>``."""
        return Fn.join("", ["https://", Fn.select(2, Fn.split("/", self.url.url))])

    @property
    def api_environment(self) -> dict[str, str]:
        """For the api function: where agents' kubeconfigs point (function URLs are publicly trusted: no CA)."""
        return {env_var("gateway_endpoint"): self.endpoint, env_var("gateway_ca"): ""}
