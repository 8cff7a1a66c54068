"""The HTTP API: API Gateway REST in front of the api function, SigV4 (``AWS_IAM``) on every route
but the three that verify a credential of their own.

Routes are a table: adding one is one line in ``ROUTES``. Every route proxies to the same function,
whose resolver owns field-level validation and its stable error codes; the gateway checks what it
can without duplicating that (the request is signed, path parameters present, a JSON object where a
JSON body is required) and answers its own errors in the same JSON shape (``code``, ``message``).

The self-verifying routes (``signed=False``) carry no IAM identity: an approver's browser opening
their emailed link (GET shows a confirm page, only the page's form POST decides) and Slack's
interactivity requests. The handler verifies the link's HMAC (single use, bound to one approver,
expiring) or Slack's request signature before anything else. Their bodies are form-encoded, so they
get no body model and a validator that checks path parameters only; their HTML pages come from the
function and pass through untouched (only the gateway's own errors are JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import FunctionFactory, Made
from infra.nag import acknowledge
from infra.permissions import gateway_clusters
from infra.settings import Deployment

STAGE = "prod"  # the version lives in the path (/v1/...), the stage names the deployment


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: bool = False  # a JSON object body is required
    signed: bool = True  # False: no SigV4; the handler verifies an approval link's HMAC or Slack's signature
    slack: bool = False  # only deployed when Slack approvals are enabled
    gateway: bool = False  # only deployed with a gateway cluster (its only caller is the gateway's role)


ROUTES = (
    Route("POST", "/v1/grants", body=True),
    Route("GET", "/v1/grants"),
    Route("GET", "/v1/grants/{grant_id}"),
    Route("POST", "/v1/grants/{grant_id}/revoke"),  # the body (a reason) is optional
    Route("POST", "/v1/grants/{grant_id}/extend", body=True),
    Route("POST", "/v1/grants/{grant_id}/approve"),  # the body (a comment) is optional
    Route("POST", "/v1/grants/{grant_id}/deny"),
    Route("POST", "/v1/grants/{grant_id}/cancel"),
    Route("GET", "/v1/grants/{grant_id}/activity"),
    Route("GET", "/v1/grants/{grant_id}/session"),  # query string limit/after: validated by the function
    Route("GET", "/v1/approvals"),
    Route("GET", "/v1/whoami"),
    Route("GET", "/v1/catalog"),
    Route("GET", "/v1/audit"),  # query string since/until: validated by the function
    Route("GET", "/v1/approval-links/{token}", signed=False),  # shows a confirm page, decides nothing
    Route("POST", "/v1/approval-links/{token}", signed=False),  # the page's form (urlencoded) decides
    Route("POST", "/v1/slack/interactions", signed=False, slack=True),  # Slack's signed, urlencoded payload
    Route("POST", "/v1/holds", body=True, gateway=True),  # the gateway asks for one held command's approval
)
SELF_VERIFYING = (
    "This method carries no AWS identity by design: its caller is an approver's browser following the "
    "single-use link emailed to them, or Slack's interactivity service. The handler verifies the link's "
    "HMAC (Secrets Manager key; bound to one grant and one approver, expiring, single use; GET only "
    "renders a confirm page) or Slack's v0 request signature and timestamp before reading anything "
    "else, and refuses otherwise; the stage is throttled."
)


def routes_for(deployment: Deployment) -> tuple[Route, ...]:
    gateway = bool(gateway_clusters(deployment.catalog))
    return tuple(r for r in ROUTES if (deployment.catalog.slack.enabled or not r.slack) and (gateway or not r.gateway))


def invoke_resource(route: Route) -> str:
    """The route in a REST API resource policy: ``execute-api:/<stage>/<method>/<path>``."""
    return f"execute-api:/*/{route.method}{re.sub(r'{[^}]+}', '*', route.path)}"


# The gateway's own refusals, in the API's error shape. Everything else is the function's answer.
GATEWAY_ERRORS = {
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN: "unauthenticated",  # unsigned, or no such route
    apigw.ResponseType.INVALID_SIGNATURE: "invalid_signature",
    apigw.ResponseType.EXPIRED_TOKEN: "expired_credentials",
    apigw.ResponseType.ACCESS_DENIED: "forbidden",
    apigw.ResponseType.THROTTLED: "throttled",
    apigw.ResponseType.BAD_REQUEST_BODY: "malformed_json",
    apigw.ResponseType.BAD_REQUEST_PARAMETERS: "invalid_request",
    apigw.ResponseType.DEFAULT_4_XX: "gateway_error",
    apigw.ResponseType.DEFAULT_5_XX: "gateway_error",
}

# No "$context.path": on /v1/approval-links/{token} the path is the approver's credential until it is
# used. The route template (resourcePath) is logged; the function logs the grant id where it acts on one.
ACCESS_LOG = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "callerArn": "$context.identity.userArn",
    "callerAccount": "$context.identity.accountId",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "responseLatency": "$context.responseLatency",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
}


def resource_policy(deployment: Deployment, routes: Iterable[Route]) -> iam.PolicyDocument | None:
    """Who may call at all (SigV4 still required, Cedar still decides): an organization and/or
    a list of accounts. None: the API's own account only (IAM authorization's default).
    The self-verifying routes stay open to anyone: their callers (browsers, Slack) have no AWS
    identity, and API Gateway needs an explicit allow for them once a resource policy exists."""
    settings = deployment.settings
    if not settings.allowed_org_id and not settings.allowed_account_ids:
        return None
    invoke = "execute-api:/*"
    open_routes = [invoke_resource(r) for r in routes if not r.signed]
    allow: list[iam.PolicyStatement] = []
    deny_unless: dict[str, dict[str, object]] = {}
    if settings.allowed_org_id:
        allow.append(
            iam.PolicyStatement(
                sid="InvokeFromOrganization",
                principals=[iam.AnyPrincipal()],
                actions=["execute-api:Invoke"],
                resources=[invoke],
                conditions={"StringEquals": {"aws:PrincipalOrgID": settings.allowed_org_id}},
            )
        )
        deny_unless["StringNotEquals"] = {"aws:PrincipalOrgID": settings.allowed_org_id}
    if settings.allowed_account_ids:
        accounts = sorted(set(settings.allowed_account_ids))
        allow.append(
            iam.PolicyStatement(
                sid="InvokeFromAccounts",
                principals=[iam.AccountPrincipal(a) for a in accounts],
                actions=["execute-api:Invoke"],
                resources=[invoke],
            )
        )
        # The API's own account keeps working through its identity policies.
        deny_unless.setdefault("StringNotEquals", {})["aws:PrincipalAccount"] = [*accounts, Aws.ACCOUNT_ID]
    if open_routes:
        allow.append(
            iam.PolicyStatement(
                sid="InvokeSelfVerifyingRoutes",
                principals=[iam.AnyPrincipal()],
                actions=["execute-api:Invoke"],
                resources=open_routes,
            )
        )
    deny = iam.PolicyStatement(
        sid="DenyEveryoneElse",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["execute-api:Invoke"],
        conditions=deny_unless,
    )
    if open_routes:  # everything but the self-verifying routes
        deny.add_not_resources(*open_routes)
    else:
        deny.add_resources(invoke)
    return iam.PolicyDocument(statements=[*allow, deny])


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        factory: FunctionFactory,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        settings = deployment.settings
        self.routes = routes_for(deployment)
        self.handler: Made = factory.make(
            self,
            "Function",
            name="api",
            handler="eks_jit.server.handlers.api.handler",
            description="eks-jit HTTP API: request, list, describe, revoke and decide grants",
            timeout=Duration.seconds(29),  # API Gateway's integration limit
            memory_size=512,  # Cedar evaluation and in-process activation on the request path
            environment=environment,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays[settings.log_retention],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{settings.prefix}-api",
            description="eks-jit: just-in-time EKS access grants (SigV4; approval links and Slack self-verify)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            policy=resource_policy(deployment, self.routes),
            # Account-wide: see DeploySettings.api_gateway_cloudwatch_role and _account_role().
            cloud_watch_role=settings.api_gateway_cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if settings.api_gateway_cloudwatch_role else None,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG)),
            ),
        )
        self.stage = self.rest_api.deployment_stage
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        # Routes without a JSON body model (optional bodies, form posts): nothing to check the body
        # against, so say so rather than rely on how an unmatched content type is treated.
        parameters_only = self.rest_api.add_request_validator(
            "ParametersValidator", validate_request_body=False, validate_request_parameters=True
        )
        json_object = self.rest_api.add_model(
            "JsonObject",
            content_type="application/json",
            description="Any JSON object: the function validates the fields and names the one at fault",
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
        )
        integration = apigw.LambdaIntegration(self.handler.function, allow_test_invoke=False)
        for route in self.routes:
            self._add(route, integration, validator if route.body else parameters_only, json_object)
        for response_type, code in GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                f"Gateway{response_type.response_type}",
                type=response_type,
                templates={"application/json": f'{{"code": "{code}", "message": $context.error.messageString}}'},
            )
        self._acknowledge()
        if settings.api_gateway_cloudwatch_role:
            self._acknowledge_account_role()

    def _add(
        self, route: Route, integration: apigw.Integration, validator: apigw.RequestValidator, body: apigw.Model
    ) -> None:
        resource = self.rest_api.root.resource_for_path(route.path)
        parameters = {
            f"method.request.path.{part[1:-1]}": True for part in route.path.split("/") if part.startswith("{")
        }
        method = resource.add_method(
            route.method,
            integration,
            authorization_type=apigw.AuthorizationType.IAM if route.signed else apigw.AuthorizationType.NONE,
            request_validator=validator,
            request_parameters=parameters or None,
            request_models={"application/json": body} if route.body else None,
        )
        if route.signed:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Callers are IAM roles (agents) and people with IAM credentials, authenticated by SigV4 "
                "(AWS_IAM authorization on this method); there is no Cognito user pool by design.",
            )
        else:
            acknowledge(method, "AwsSolutions-APIG4", SELF_VERIFYING)
            acknowledge(method, "AwsSolutions-COG4", SELF_VERIFYING)

    def invoke_arn(self, method: str, path: str) -> str:
        """One method of the stage, as an identity policy names it for ``execute-api:Invoke``."""
        return self.rest_api.arn_for_execute_api(method, path, STAGE)

    @property
    def public_url(self) -> str:
        """The stage's base URL, built from the API's id: what approval links start with. (The
        stage's own url would make the notify function depend on the deployment, hence on every
        method, hence on the api function, which names the state machine that invokes notify.)"""
        return f"https://{self.rest_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{STAGE}"

    def _acknowledge_account_role(self) -> None:
        """``api_gateway_cloudwatch_role``: CDK's ``CloudWatchRole`` and ``AWS::ApiGateway::Account``
        (the stage depends on it, so logging is configured before the stage is created), both
        retained: the setting is account-wide, and deleting the role would break every API that logs."""
        role = self.rest_api.node.find_child("CloudWatchRole")
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-wide API Gateway logging role (api_gateway_cloudwatch_role): every REST and WebSocket "
            "API of this account and region logs through it, into log groups this stack cannot name "
            "(API-Gateway-Execution-Logs_<api id>/<stage>, other APIs' access logs), so a policy scoped to "
            "eks-jit's log groups would silently break their logging. AWS's managed policy is the one the "
            "API Gateway guide names for this role: CloudWatch Logs actions only, assumable by API Gateway only.",
        )

    def _acknowledge(self) -> None:
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "Every route but the self-verifying approval-link and Slack ones requires SigV4 (AWS_IAM), so "
            "anonymous traffic is refused by API Gateway before any code runs; those three verify an HMAC "
            "link or Slack's signature first thing. The stage is throttled and the resource policy can "
            "restrict SigV4 callers to an organization or accounts. A WAF web ACL can be associated by "
            "the account's firewall manager.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG6",
            "Execution logging needs the account-wide API Gateway CloudWatch role, shared state this stack "
            "must not own or overwrite. Every request is recorded in the JSON access log (caller ARN, status, "
            "error type) and every invocation in the function's own log.",
        )
