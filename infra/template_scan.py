"""The second template scanner: checkov's CloudFormation checks over the synthesized templates.

cdk-nag judges constructs; checkov judges the templates CloudFormation receives, with rules of
its own. It runs in ``make test`` (``tests/infra/test_template_scan.py``) from its own virtualenv
(``.venv-scan``, pinned by ``requirements-scan.lock``): checkov pins boto3 1.35, packaging 23 and
networkx 2, which conflict with ``requirements.lock``.

Every check this project does not follow is accepted below, one :class:`Skip` each: which check,
on which resources, and why a reviewer can live with it. The test fails on a finding no skip
accepts, and on a skip that no longer matches any finding (so a fixed finding takes its skip away).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.constructs.api import SELF_VERIFYING
from infra.settings import ROOT

CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"


@dataclass(frozen=True)
class Skip:
    check: str  # a checkov check id, CKV_AWS_...
    resource_type: str  # the CloudFormation type it is accepted on
    reason: str
    only: tuple[str, ...] = ()  # logical id prefixes; empty: every resource of the type

    def accepts(self, finding: Finding) -> bool:
        return (
            finding.check == self.check
            and finding.resource_type == self.resource_type
            and (not self.only or finding.logical_id.startswith(self.only))
        )


@dataclass(frozen=True)
class Finding:
    check: str
    resource_type: str
    logical_id: str
    template: str
    name: str

    def __str__(self) -> str:
        return f"{self.check} {self.template}:{self.resource_type}.{self.logical_id} ({self.name})"


FUNCTION = "AWS::Lambda::Function"
SKIPS = (
    Skip(
        "CKV_AWS_117",  # Lambda inside a VPC
        FUNCTION,
        "The functions reach only AWS service APIs (DynamoDB, EKS, STS, Scheduler, SNS, Secrets Manager, "
        "Logs, Step Functions) and Slack, never a private network resource; IAM is their boundary. A VPC "
        "would add NAT or interface endpoints and cold-start time and protect nothing. The data-path "
        "gateway also reaches its clusters' public EKS API endpoints, authenticated by its own EKS token "
        "(a cluster with a private endpoint only is not supported: docs/deploy.md).",
    ),
    Skip(
        "CKV_AWS_116",  # Lambda dead-letter queue
        FUNCTION,
        "checkov reads only DeadLetterConfig. revoke and sweeper, the asynchronously invoked ones, have an "
        "on-failure destination (the AsyncFailures queue, alarmed), which carries more than a DLQ would; "
        "api is invoked synchronously by API Gateway, notify and workflow synchronously by Step Functions, "
        "which retries and fails the execution (alarmed), the gateway synchronously by its function URL "
        "(kubectl sees the failure and retries): nothing is left to dead-letter.",
    ),
    Skip(
        "CKV_AWS_115",  # reserved concurrency
        FUNCTION,
        "Reserved concurrency would be taken from the account pool and cap the revoke and sweeper paths: "
        "a cap on revocation could hold access past its window, which is the one thing eks-jit must never "
        "do. Request volume is bounded at the API stage's throttle instead. The gateway's is the operator's "
        "choice (gateway_reserved_concurrency): a cap there refuses kubectl requests (429), never revocation.",
    ),
    Skip(
        "CKV_AWS_173",  # environment variables encrypted with a customer-managed key
        FUNCTION,
        "The environment holds names and ARNs only (table, topics, schedule group, secret ARNs, the bundled "
        "config path), never a secret value: secrets are read from Secrets Manager at run time. Lambda "
        "encrypts the environment at rest with its AWS-managed key.",
    ),
    Skip(
        "CKV_AWS_158",  # log group encrypted with KMS
        "AWS::Logs::LogGroup",
        "The function logs and the API access log hold no secret (the access log records the route "
        "template, never the path, so an approval link's token is not in it; functions log grant ids). "
        "CloudWatch Logs encrypts them at rest. The approval workflow's log, where a task token could "
        "appear, has its own KMS key. The gateway logs requests by grant id, verb and path, never a token "
        "or a body (bodies go to the grant's recording in the table).",
        only=(
            "GatewayFunctionLogs",
            "ApiFunctionLogs",
            "ApiAccessLogs",
            "RevocationRevokeLogs",
            "RevocationSweeperLogs",
            "ApprovalsNotifyLogs",
            "ApprovalsWorkflowLogs",
        ),
    ),
    Skip(
        "CKV_AWS_119",  # DynamoDB with a customer-managed key
        "AWS::DynamoDB::Table",
        "The grant table is encrypted with the AWS-managed key (SSEEnabled, aws/dynamodb; every use in "
        "CloudTrail). It holds the audit record, no secret (task tokens and link nonces are hashed or "
        "short-lived SIDE# items); a customer key would add a key policy whose mistake or deletion makes "
        "the record unreadable.",
    ),
    Skip(
        "CKV_AWS_27",  # SQS encryption
        "AWS::SQS::Queue",
        "Both dead-letter queues are encrypted with SQS-managed keys (SqsManagedSseEnabled: true, asserted "
        "by the test); checkov 3.3.30's check recognises only KmsMasterKeyId. They hold revoke payloads "
        "(grant ids), which a customer key would not make more secret.",
    ),
    Skip(
        "CKV_AWS_149",  # Secrets Manager with a customer-managed key
        "AWS::SecretsManager::Secret",
        "The approval-link key and the Slack secret use the aws/secretsmanager key; only the functions' "
        "roles may read them (by ARN, in their identity policies), and a customer key would add a second "
        "policy to keep in step without narrowing who reads them.",
    ),
    Skip(
        "CKV_AWS_73",  # X-Ray on the API stage
        "AWS::ApiGateway::Stage",
        "The stage's JSON access log records every request with its latency, integration latency, "
        "status and caller; the functions are not X-Ray traced, so a stage trace would stop at the "
        "integration and add cost without showing more.",
    ),
    Skip(
        "CKV_AWS_120",  # API caching
        "AWS::ApiGateway::Stage",
        "Every answer depends on the signed caller and on the grant's current state (pending, active, "
        "expired): a cache would serve one caller's grants to another or a stale status to an agent "
        "deciding whether it still has access.",
    ),
    Skip(
        "CKV_AWS_258",  # a function URL with AuthType NONE
        "AWS::Lambda::Url",
        "The data-path gateway's URL is called by kubectl, which cannot sign with SigV4; it sends the standard "
        "EKS bearer token (a presigned STS GetCallerIdentity), and the gateway verifies it on every request, "
        "as the EKS public endpoint does, and answers 401 otherwise. Everything past that is checked against "
        "the caller's active grants; the function's role can read grants and record commands, nothing more.",
        only=("GatewayFunctionFunctionUrl",),
    ),
    Skip(
        "CKV_AWS_59",  # a method without authorization
        "AWS::ApiGateway::Method",
        SELF_VERIFYING,
        only=(
            "ApiRestApiv1approvallinkstokenGET",
            "ApiRestApiv1approvallinkstokenPOST",
            "ApiRestApiv1slackinteractionsPOST",
        ),
    ),
)


def scan(templates: Iterable[Path], checkov: Path = CHECKOV) -> list[Finding]:
    """Every failed check of checkov's CloudFormation framework in ``templates`` (no network:
    ``--skip-download`` keeps it from fetching guidelines or external checks)."""
    paths = [str(t) for t in templates]
    command = [str(checkov), "--framework", "cloudformation", "-o", "json", "--skip-download", "--quiet", "--compact"]
    for path in paths:
        command += ["-f", path]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if done.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr[-2000:]}")
    reports: Any = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    findings = []
    for report in reports:
        if report.get("summary", {}).get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse a template: {report['summary']}")
        for failed in report.get("results", {}).get("failed_checks", []):
            resource_type, _, logical = failed["resource"].partition(".")
            template = Path(failed["file_path"]).name
            findings.append(Finding(failed["check_id"], resource_type, logical, template, failed["check_name"]))
    return findings


def unaccepted(findings: Iterable[Finding], skips: Iterable[Skip] = SKIPS) -> list[Finding]:
    rules = tuple(skips)
    return [f for f in findings if not any(s.accepts(f) for s in rules)]


def unused(findings: Iterable[Finding], skips: Iterable[Skip] = SKIPS) -> list[Skip]:
    found = tuple(findings)
    return [s for s in skips if not any(s.accepts(f) for f in found)]
