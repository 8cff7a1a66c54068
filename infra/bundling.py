"""The two Lambda assets, built on this machine without Docker (CDK local bundling).

- The function code: the ``lambdas`` package plus the configuration file and the Cedar policy
  file it names, copied side by side under ``eks-jit-config/`` so ``EKS_JIT_CONFIG`` finds both.
- One dependency layer shared by every function: ``pip install --target`` of the runtime
  dependencies pinned in ``pyproject.toml`` (constrained by ``requirements.lock``), resolved
  for the Lambda platform (``manylinux2014_aarch64``, CPython 3.11) with binary wheels only,
  so it builds the same on any laptop or CI runner.

Both assets carry a custom hash computed from their inputs: the hash, not a directory
fingerprint, decides when a new asset is uploaded. Synth tests skip bundling with the CDK
context ``aws:cdk:bundling-stacks = []``; pip never runs there.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.settings import ROOT, Deployment

RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.11"
TASK_ROOT = "/var/task"
BUNDLE_CONFIG_DIR = "eks-jit-config"
PACKAGE = ROOT / "lambdas"
LAYER_SOURCE = Path(__file__).resolve().parent / "layer"
LOCK_FILE = ROOT / "requirements.lock"
# Never run: every asset bundles locally. CDK insists on naming an image.
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.11")


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    sha = hashlib.sha256()
    for name, content in parts:
        sha.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return sha.hexdigest()


def runtime_requirements() -> list[str]:
    """The functions' dependencies, exactly as pinned in pyproject.toml."""
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


class FunctionBundle:
    """Where the configuration sits inside the function bundle."""

    def __init__(self, deployment: Deployment) -> None:
        self.config_file = deployment.config_path
        self.policy_file = deployment.config_path.parent / deployment.catalog.policies
        self.policy_in_bundle = Path(BUNDLE_CONFIG_DIR) / Path(deployment.catalog.policies)
        self.config_in_bundle = Path(BUNDLE_CONFIG_DIR) / self.config_file.name

    @property
    def config_env(self) -> str:
        """The value of ``EKS_JIT_CONFIG``: the configuration file's path in the running function."""
        return f"{TASK_ROOT}/{self.config_in_bundle.as_posix()}"

    def files(self) -> list[tuple[Path, Path]]:
        """(source, destination relative to the bundle root) for every file of the bundle."""
        copied = [(path, Path("lambdas") / path.relative_to(PACKAGE)) for path in _package_files()]
        return [*copied, (self.config_file, self.config_in_bundle), (self.policy_file, self.policy_in_bundle)]

    def asset_hash(self) -> str:
        return _digest((dest.as_posix(), src.read_bytes()) for src, dest in self.files())


@jsii.implements(ILocalBundling)
class _CopyFunctionSources:
    def __init__(self, bundle: FunctionBundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        out = Path(output_dir)
        for source, dest in self._bundle.files():
            (out / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / dest)
        return True


@jsii.implements(ILocalBundling)
class _PipInstallLayer:
    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--platform",
            PIP_PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--only-binary=:all:",
            "--target",
            str(Path(output_dir) / "python"),
            "--constraint",
            str(LOCK_FILE),
            *runtime_requirements(),
        ]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        return True


def function_code(bundle: FunctionBundle) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(PACKAGE),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundle.asset_hash(),
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=_CopyFunctionSources(bundle)),
    )


def layer_hash() -> str:
    inputs = "\n".join([*runtime_requirements(), PIP_PLATFORM, PYTHON_VERSION]).encode()
    return _digest([("requirements", inputs), ("lock", LOCK_FILE.read_bytes())])


def dependencies_layer(scope: Construct, construct_id: str) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        construct_id,
        description="eks-jit runtime dependencies: " + ", ".join(runtime_requirements()),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        code=lambda_.Code.from_asset(
            str(LAYER_SOURCE),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=layer_hash(),
            bundling=BundlingOptions(image=_UNUSED_IMAGE, local=_PipInstallLayer()),
        ),
    )
