"""A configuration that does not validate stops `cdk synth` with the loader's message, not a trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT, write_config

pytestmark = pytest.mark.infra


def test_policy_naming_an_unknown_scope_fails_synth_with_the_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    policies = tmp_path / "policies.cedar"
    policies.write_text(
        policies.read_text().replace('EksJit::Scope::"rollout-restart"', 'EksJit::Scope::"rollout-restrat"', 1)
    )
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"config": str(config), "aws:cdk:bundling-stacks": []}),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert "the configuration is not valid" in done.stderr
    assert "references unknown Scope 'rollout-restrat'" in done.stderr
    assert "policies.cedar" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()
