"""Check IAM statements against the Service Authorization Reference data shipped in parliament.

moto never evaluates IAM, so nothing else tells us that a statement means what it says. This
module renders a synthesized template's intrinsics into concrete ARNs and checks every statement
of every policy document in it (identity policies, trust policies, topic, queue, key and API
resource policies) for:

- unknown services and actions (parliament: ``UNKNOWN_PREFIX``, ``UNKNOWN_ACTION``);
- condition operators that do not exist, keys used with an operator of another type, ``Null``
  given anything but true/false (``UNKNOWN_OPERATOR``, ``MISMATCHED_TYPE*``);
- service condition keys that are not condition keys *of the action* (``UNKNOWN_CONDITION_FOR_ACTION``).
  A key listed only on a resource type (EKS lists ``eks:kubernetesGroups`` and ``eks:username``
  on ``access-entry``, whose descriptions speak of the *request*) is not counted: nothing
  documents that EKS evaluates it for an action whose row does not list it;
- resources that match no ARN format the action accepts (``RESOURCE_MISMATCH``, ``INVALID_ARN``),
  and, beyond parliament, any resource of a statement that no action of the statement accepts;
- beyond parliament: ``aws:RequestTag/*`` and ``aws:TagKeys`` only where the action lists them,
  ``aws:ResourceTag/*`` only where a resource type of the statement's resources lists it, and
  set operators (``ForAllValues:``/``ForAnyValue:``) exactly on multivalued (``ArrayOf*``) keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import parliament
from parliament.statement import get_arn_format, is_condition_key_match

DEFINITION = {service["prefix"]: service for service in parliament.iam_definition}
# What parliament reports that this check is about. Breadth (RESOURCE_STAR and friends) is
# cdk-nag's job, with a reason per accepted wildcard.
ISSUES = {
    "MALFORMED",
    "MALFORMED_JSON",
    "EXCEPTION",
    "INVALID_SID",
    "INVALID_ARN",
    "UNKNOWN_PREFIX",
    "UNKNOWN_ACTION",
    "UNKNOWN_OPERATOR",
    "UNKNOWN_PRINCIPAL",
    "UNKNOWN_CONDITION_FOR_ACTION",
    "MISMATCHED_TYPE",
    "MISMATCHED_TYPE_BUT_USABLE",
    "MISMATCHED_TYPE_OPERATION_TO_NULL",
    "RESOURCE_MISMATCH",
}
SET_OPERATOR = re.compile(r"^(ForAllValues|ForAnyValue):", re.IGNORECASE)
TAG_REQUEST_KEYS = ("aws:requesttag/", "aws:tagkeys")


@dataclass(frozen=True)
class Where:
    stack: str
    logical_id: str
    sid: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.logical_id}/{self.sid or '?'}"


@dataclass(frozen=True)
class FalsePositive:
    """A finding that is wrong about this statement, with the reason it is wrong."""

    sid: str  # the statement's Sid
    issue: str  # the finding's issue code
    detail: str  # a substring of the finding's detail
    reason: str


# ----------------------------------------------------------------- rendering the template


@dataclass(frozen=True)
class Renderer:
    """Intrinsics -> text: pseudo parameters as the stack's values, Ref/GetAtt as the ARN (or id)
    a resource of that type has."""

    resources: dict[str, Any]
    region: str
    account: str

    def arn_of(self, logical: str, attribute: str | None) -> str:
        kind = self.resources[logical]["Type"]
        props = self.resources[logical].get("Properties", {})
        r, a = self.region, self.account
        name = lambda key: self.render(props.get(key, logical))  # noqa: E731
        arns = {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{r}:{a}:table/{logical}",
            "AWS::SNS::Topic": f"arn:aws:sns:{r}:{a}:{name('TopicName')}",
            "AWS::KMS::Key": f"arn:aws:kms:{r}:{a}:key/0000aaaa-bb11-cc22-dd33-{logical[:12].lower():0>12}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{r}:{a}:secret:{logical}-AbCdEf",
            "AWS::IAM::Role": f"arn:aws:iam::{a}:role{self.render(props.get('Path', '/'))}{name('RoleName')}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{r}:{a}:function:{name('FunctionName')}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{logical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{name('LogGroupName')}:*",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{r}:{a}:stateMachine:{name('StateMachineName')}",
            "AWS::Events::Rule": f"arn:aws:events:{r}:{a}:rule/{logical}",
        }
        if kind in arns and attribute in (None, "Arn"):
            return arns[kind]
        return logical.lower()  # an id (a REST API's id, a queue's URL is never in a policy)

    def render(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                ref = value["Ref"]
                pseudo = {"AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account}
                pseudo |= {"AWS::URLSuffix": "amazonaws.com"}
                stack_id = f"arn:aws:cloudformation:{self.region}:{self.account}:stack/S/1a2b3c4d-0-0-0-0"
                pseudo |= {"AWS::StackId": stack_id}
                if ref in pseudo:
                    return pseudo[ref]
                return self.arn_of(ref, None)
            if "Fn::GetAtt" in value:
                logical, attribute = value["Fn::GetAtt"]
                return self.arn_of(logical, attribute)
            if "Fn::Join" in value:
                separator, parts = value["Fn::Join"]
                return separator.join(str(self.render(p)) for p in parts)
            if "Fn::Split" in value:
                separator, source = value["Fn::Split"]
                return str(self.render(source)).split(separator)
            if "Fn::Select" in value:
                index, source = value["Fn::Select"]
                return self.render(source)[int(index)]
            return {k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        return value


def _policy_documents(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        statements = value.get("Statement")
        if isinstance(statements, list) and all(isinstance(s, dict) and "Effect" in s for s in statements):
            yield value
            return
        for inner in value.values():
            yield from _policy_documents(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _policy_documents(inner)


def template_statements(stack: str, template: dict[str, Any], region: str, account: str) -> list[tuple[Where, dict]]:
    """Every statement of every policy document in ``template``, rendered, with where it is.
    A trust policy's statements (no Resource) are checked against the role they belong to; an
    API Gateway resource policy's short ``execute-api:/...`` resources are expanded to the ARN
    API Gateway expands them to."""
    resources = template["Resources"]
    renderer = Renderer(resources, region, account)
    found: list[tuple[Where, dict]] = []
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        for document in _policy_documents(props):
            for statement in renderer.render(document["Statement"]):
                statement = dict(statement)
                if resource["Type"] == "AWS::IAM::Role" and document is props.get("AssumeRolePolicyDocument"):
                    statement.setdefault("Resource", renderer.arn_of(logical, "Arn"))
                if resource["Type"] == "AWS::ApiGateway::RestApi":
                    api = f"arn:aws:execute-api:{region}:{account}:{logical.lower()}"
                    for key in ("Resource", "NotResource"):
                        if key in statement:
                            statement[key] = [
                                api + r.removeprefix("execute-api:") if r.startswith("execute-api:/") else r
                                for r in _listed(statement[key])
                            ]
                found.append((Where(stack, logical, statement.get("Sid", "")), statement))
    return found


# ----------------------------------------------------------------- checking one statement


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _privilege(action: str) -> dict[str, Any] | None:
    service, _, name = action.partition(":")
    for privilege in DEFINITION.get(service, {}).get("privileges", []):
        if privilege["privilege"].lower() == name.lower():
            return privilege
    return None


def _resource_types(service: str, privilege: dict[str, Any]) -> list[dict[str, Any]]:
    names = {rt["resource_type"].rstrip("*") for rt in privilege["resource_types"] if rt["resource_type"]}
    return [r for r in DEFINITION[service]["resources"] if r["resource"] in names]


def _matches(resource_type: dict[str, Any], arn: str) -> bool:
    arn_format = get_arn_format(resource_type["resource"], [resource_type])
    if len(arn.split(":")) < 6:  # not an ARN: parliament reports INVALID_ARN
        return True
    return bool(parliament.is_arn_strictly_valid(resource_type["resource"], arn_format, arn))


def _action_keys(privilege: dict[str, Any]) -> list[str]:
    return [k for rt in privilege["resource_types"] for k in rt["condition_keys"]]


def _key_type(service: str, key: str) -> str | None:
    for prefix in {service, key.split(":")[0]}:
        for condition in DEFINITION.get(prefix, {}).get("conditions", []):
            if is_condition_key_match(condition["condition"], key):
                return str(condition["type"])
    return None


def check_statement(statement: dict[str, Any]) -> list[str]:
    """Findings for one statement: ``"<ISSUE> <detail>"``; empty when it is sound."""
    policy = parliament.analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    findings = [f"{f.issue} {f.detail}" for f in policy.findings if f.issue in ISSUES]
    actions = [a for a in _listed(statement.get("Action", [])) if "*" not in a]
    resources = [r for r in _listed(statement.get("Resource", [])) if r != "*"]
    conditions: dict[str, dict[str, Any]] = statement.get("Condition", {})
    known = [(a, p) for a in actions if (p := _privilege(a)) is not None]
    # every resource is one that some action of the statement acts on
    if statement.get("Effect") == "Allow":
        for resource in resources:
            if not any(_matches(rt, resource) for a, p in known for rt in _resource_types(a.split(":")[0], p)):
                findings.append(f"RESOURCE_UNUSED {resource} matches no resource type of {actions}")
    for operator, block in conditions.items():
        for key in block:
            lowered = key.lower()
            for action, privilege in known:
                service = action.split(":")[0]
                if lowered.startswith(TAG_REQUEST_KEYS) and not any(
                    is_condition_key_match(k, key) for k in _action_keys(privilege)
                ):
                    findings.append(f"UNKNOWN_CONDITION_FOR_ACTION {key} for {action}")
                if lowered.startswith("aws:resourcetag/"):
                    types = [
                        rt
                        for rt in _resource_types(service, privilege)
                        if any(_matches(rt, r) for r in resources) or not resources
                    ]
                    if not any(is_condition_key_match(k, key) for rt in types for k in rt["condition_keys"]):
                        findings.append(f"UNKNOWN_CONDITION_FOR_RESOURCE {key} for {action} on {resources}")
                if operator.lower() == "null":
                    continue
                key_type = _key_type(service, key)
                if key_type is None:
                    continue
                multivalued = key_type.startswith("ArrayOf")
                if multivalued != bool(SET_OPERATOR.match(operator)):
                    findings.append(
                        f"SET_OPERATOR_MISMATCH {operator} on {key} ({key_type}) for {action}: "
                        + ("a multivalued key needs ForAllValues/ForAnyValue" if multivalued else "a single value")
                    )
    return sorted(set(findings))


def unexplained(
    statements: list[tuple[Where, dict[str, Any]]], false_positives: list[FalsePositive]
) -> tuple[list[str], set[FalsePositive]]:
    """The findings no false positive explains, and the false positives that were used."""
    problems, used = [], set()
    for where, statement in statements:
        for finding in check_statement(statement):
            issue, _, detail = finding.partition(" ")
            explained = [
                fp for fp in false_positives if fp.sid == where.sid and fp.issue == issue and fp.detail in detail
            ]
            if explained:
                used.update(explained)
            else:
                problems.append(f"{where}: {finding}")
    return problems, used
