"""One synth of the whole CDK app for every infrastructure test (synth takes seconds and ~1 GB).

The app is synthesized the way ``cdk synth`` does it (the context of ``cdk.json``), with:
- bundling skipped (``aws:cdk:bundling-stacks = []``): pip never runs in tests;
- the example configuration plus one cluster in another account (``shared-eks``), so the
  cross-account path and its ``EksJitClusterAccessStack`` are synthesized too;
- plus one gateway cluster (``gateway-eks``, ``access_mode: gateway``), so the data-path gateway
  (function, URL, role, access entry) is judged by every test here, cdk-nag, checkov and the IAM
  reference included; ``synth_with_account_role`` has none (what a catalog without one gets);
- Slack approvals enabled, so the Slack secret, route and grants are synthesized too;
- an organization restriction on the API, so the resource policy is synthesized.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
SHARED_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/platform/eks-jit-cluster-access"
ORG = "o-exampleorg01"
STACK = "EksJit"
CLUSTER_STACK = "EksJitClusterAccess-shared-eks"
GATEWAY_CLUSTER = "gateway-eks"
GATEWAY_CLUSTER_CONFIG = {
    "account": ACCOUNT,
    "region": "eu-west-1",
    "environment": "staging",
    "namespaces": ["payments", "orders"],
    "access_mode": "gateway",
}
STACK_INSTANCE = "split(-,split(/,<AWS::StackId>)[2])[0]"  # infra.functions.stack_instance, as resolve() renders it


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def write_config(directory: Path, *, clusters: dict[str, Any] | None = None, slack: bool = False) -> Path:
    """The example configuration with extra clusters, and Slack approvals on or off, in ``directory``."""
    raw = yaml.safe_load((EXAMPLE / "eks-jit.yaml").read_text())
    raw["clusters"].update(clusters or {})
    raw["slack"]["enabled"] = slack
    shutil.copy(EXAMPLE / raw["policies"], directory / raw["policies"])
    path = directory / "eks-jit.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass(frozen=True)
class Synth:
    outdir: Path
    config: Path
    deployment: Any

    def template(self, stack: str) -> dict[str, Any]:
        return json.loads((self.outdir / f"{stack}.template.json").read_text())

    def resources(self, stack: str, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template(stack)["Resources"].items() if v["Type"] == kind}

    def logical(self, prefix: str, kind: str, stack: str = STACK) -> str:
        """The logical id of the one resource of ``kind`` whose id starts with ``prefix``."""
        (found,) = [k for k in self.resources(stack, kind) if k.startswith(prefix)]
        return found

    def functions(self) -> dict[str, dict[str, Any]]:
        """Function properties by short name (api, revoke, sweeper, notify, workflow)."""
        return {
            props["Properties"]["FunctionName"].removeprefix("eks-jit-"): props["Properties"]
            for props in self.resources(STACK, "AWS::Lambda::Function").values()
        }

    def function_logical(self, name: str) -> str:
        (found,) = [
            k
            for k, v in self.resources(STACK, "AWS::Lambda::Function").items()
            if v["Properties"]["FunctionName"] == f"eks-jit-{name}"
        ]
        return found

    def statements_by_role(self, stack: str = STACK) -> dict[str, list[dict[str, Any]]]:
        """Every statement of every inline policy, rendered with :func:`resolve`, by role logical id."""
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        policies = {**self.resources(stack, "AWS::IAM::Policy"), **self.resources(stack, "AWS::IAM::ManagedPolicy")}
        for policy in policies.values():  # managed ones: what CDK splits off a role's policy past its size limit
            for role in policy["Properties"].get("Roles", []):
                found[role["Ref"]] += resolve(policy["Properties"]["PolicyDocument"]["Statement"])
        return found

    def function_statements(self) -> dict[str, list[dict[str, Any]]]:
        by_role = self.statements_by_role()
        return {name: by_role[props["Role"]["Fn::GetAtt"][0]] for name, props in self.functions().items()}


def synthesize(work: Path, *, gateway: bool = True, **extra: Any) -> Synth:
    """The app of this module's docstring, in ``work``, with ``extra`` CDK context on top (and without
    the gateway cluster if ``gateway`` is false)."""
    from aws_cdk import App

    from infra.app import build

    (work / "config").mkdir()
    config = write_config(
        work / "config",
        clusters={
            "shared-eks": {
                "account": OTHER_ACCOUNT,
                "region": "eu-central-1",
                "environment": "staging",
                "namespaces": ["payments"],
                "role_arn": SHARED_ROLE,
            },
            **({GATEWAY_CLUSTER: GATEWAY_CLUSTER_CONFIG} if gateway else {}),
        },
        slack=True,
    )
    context = {
        **cdk_json_context(),
        "config": str(config),
        "aws:cdk:bundling-stacks": [],
        "cluster_access": "shared-eks",
        "control_plane_account": ACCOUNT,
        "control_plane_region": "eu-west-1",
        "allowed_org_id": ORG,
        **extra,
    }
    app = App(context=context, outdir=str(work / "cdk.out"))
    deployment = build(app)
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    return Synth(outdir=work / "cdk.out", config=config, deployment=deployment)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("infra"))


@pytest.fixture(scope="session")
def synth_with_account_role(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same app with ``api_gateway_cloudwatch_role`` on and no gateway cluster (a second synth: about
    10 s): the account-role tests, and what a catalog without a gateway cluster gets."""
    return synthesize(tmp_path_factory.mktemp("infra-account-role"), gateway=False, api_gateway_cloudwatch_role="true")


def resolve(value: Any) -> Any:
    """Render the intrinsics used in policies as text: pseudo parameters as ``<AWS::X>``,
    ``Fn::GetAtt`` as ``<Logical.Attr>``, ``Ref`` as ``<Logical>``, ``Fn::Join`` joined,
    ``Fn::Split``/``Fn::Select`` as ``split(<sep>,<value>)[<index>]``."""
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return "<{}.{}>".format(*value["Fn::GetAtt"])
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(resolve(p)) for p in parts)
        if "Fn::Split" in value:
            separator, source = value["Fn::Split"]
            return f"split({separator},{resolve(source)})"
        if "Fn::Select" in value:
            index, source = value["Fn::Select"]
            return f"{resolve(source)}[{index}]"
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statement: dict[str, Any]) -> list[str]:
    return listed(statement["Action"])


def allowed(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The Allow statements that name ``action``."""
    return [s for s in statements if s["Effect"] == "Allow" and action in actions(s)]
