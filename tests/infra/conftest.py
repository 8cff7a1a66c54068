"""One synth of the whole CDK app for every infrastructure test (synth takes seconds and ~1 GB).

The app is synthesized the way ``cdk synth`` does it (the context of ``cdk.json``), with:
- bundling skipped (``aws:cdk:bundling-stacks = []``): pip never runs in tests;
- the example configuration plus one cluster in another account (``shared-eks``), so the
  cross-account path and its ``EksJitClusterAccessStack`` are synthesized too;
- an organization restriction on the API, so the resource policy is synthesized.
"""

from __future__ import annotations

import json
import os
import shutil
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


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def write_config(directory: Path, **clusters: dict[str, Any]) -> Path:
    """The example configuration with extra clusters, in ``directory``."""
    raw = yaml.safe_load((EXAMPLE / "eks-jit.yaml").read_text())
    raw["clusters"].update(clusters)
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


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from aws_cdk import App

    from infra.app import build

    work = tmp_path_factory.mktemp("infra")
    (work / "config").mkdir()
    config = write_config(
        work / "config",
        **{
            "shared-eks": {
                "account": OTHER_ACCOUNT,
                "region": "eu-central-1",
                "environment": "staging",
                "namespaces": ["payments"],
                "role_arn": SHARED_ROLE,
            }
        },
    )
    context = {
        **cdk_json_context(),
        "config": str(config),
        "aws:cdk:bundling-stacks": [],
        "cluster_access": "shared-eks",
        "control_plane_account": ACCOUNT,
        "control_plane_region": "eu-west-1",
        "allowed_org_id": ORG,
    }
    app = App(context=context, outdir=str(work / "cdk.out"))
    deployment = build(app)
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    return Synth(outdir=work / "cdk.out", config=config, deployment=deployment)


def resolve(value: Any) -> Any:
    """Render the intrinsics used in policies as text: pseudo parameters as ``<AWS::X>``,
    ``Fn::GetAtt`` as ``<Logical.Attr>``, ``Ref`` as ``<Logical>``, ``Fn::Join`` joined."""
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return "<{}.{}>".format(*value["Fn::GetAtt"])
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(resolve(p)) for p in parts)
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
