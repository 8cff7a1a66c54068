"""The two Lambda assets, built on this machine without Docker (CDK local bundling).

- The function code: the repo's ``lambdas/`` folder as ``eks_jit/server/`` (the one module name it
  has, in the wheel and in a checkout) under the version-only ``eks_jit/__init__.py``, plus the
  configuration file and the Cedar policy file it names, copied side by side under
  ``eks-jit-config/`` so ``EKS_JIT_CONFIG`` finds both.
- The data-path gateway's start script (``infra/gateway/run.sh``) at the bundle's root as
  :data:`GATEWAY_SCRIPT`, executable: the Lambda Web Adapter's ``/opt/bootstrap`` executes it.
- One dependency layer shared by every function: ``pip install --target`` of the runtime
  dependencies pinned in ``pyproject.toml`` (the ``server`` extra; the default install is only the
  client and CLI) and constrained by ``requirements.lock``, resolved
  for the Lambda platform (``manylinux2014_aarch64``, CPython 3.11) with binary wheels only,
  so it builds the same on any laptop or CI runner.
- A second layer for the gateway alone, the same way, from the ``gateway`` extra (starlette,
  uvicorn, httpx2, anyio, and what they pull in, constrained by the same lock): the other functions
  never load it, so their layer and cold start stay as they were.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.settings import ROOT, Deployment

ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "manylinux2014_aarch64"
TASK_ROOT = "/var/task"
BUNDLE_CONFIG_DIR = "eks-jit-config"
PACKAGE = ROOT / "lambdas"
PACKAGE_IN_BUNDLE = Path("eks_jit") / "server"
PARENT_INIT = ROOT / "eks_jit" / "__init__.py"  # only __version__: the bundle carries nothing else of eks_jit
LAYER_SOURCE = Path(__file__).resolve().parent / "layer"
LOCK_FILE = ROOT / "requirements.lock"
GATEWAY_SCRIPT_SOURCE = Path(__file__).resolve().parent / "gateway" / "run.sh"
GATEWAY_SCRIPT = "eks-jit-gateway.sh"  # in the bundle's root: the gateway function's handler
EXECUTABLE = 0o755


@dataclass(frozen=True)
class LambdaPython:
    """Everything that names the Python of the functions, derived from one version (``"3.13"``)."""

    version: str

    @property
    def runtime(self) -> lambda_.Runtime:
        """The Lambda runtime ``python<version>``, as CDK knows it (``Runtime.PYTHON_3_13``)."""
        runtime: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_" + self.version.replace(".", "_"))
        return runtime

    @property
    def identifier(self) -> str:
        return f"python{self.version}"

    @property
    def build_image(self) -> DockerImage:
        """Never run: every asset bundles locally. CDK insists on naming an image."""
        return DockerImage.from_registry(f"public.ecr.aws/sam/build-{self.identifier}")

    def pip_target(self) -> list[str]:
        """pip's options that resolve wheels for the Lambda platform and this Python."""
        return ["--platform", PIP_PLATFORM, "--implementation", "cp", "--python-version", self.version]


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    sha = hashlib.sha256()
    for name, content in parts:
        sha.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return sha.hexdigest()


def _extra(name: str) -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][name])


def runtime_requirements() -> list[str]:
    """The functions' dependencies, exactly as pinned in pyproject.toml's ``server`` extra."""
    return _extra("server")


def gateway_requirements() -> list[str]:
    """What the gateway needs beyond the server extra: pyproject.toml's ``gateway`` extra without its
    ``eks-jit[server]`` (that is the shared layer; pip would look for eks-jit itself on the index).
    What these pull in is pinned by requirements.lock, the layer build's constraint."""
    return [r for r in _extra("gateway") if not r.startswith("eks-jit[")]


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
        copied = [(path, PACKAGE_IN_BUNDLE / path.relative_to(PACKAGE)) for path in _package_files()]
        copied.append((PARENT_INIT, PACKAGE_IN_BUNDLE.parent / "__init__.py"))
        copied.append((GATEWAY_SCRIPT_SOURCE, Path(GATEWAY_SCRIPT)))
        return [*copied, (self.config_file, self.config_in_bundle), (self.policy_file, self.policy_in_bundle)]

    def copy_to(self, out: Path) -> None:
        """Write the bundle into ``out``; the gateway's start script executable (git may not say so,
        and ``copyfile`` copies no mode)."""
        for source, dest in self.files():
            (out / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / dest)
        (out / GATEWAY_SCRIPT).chmod(EXECUTABLE)

    def asset_hash(self) -> str:
        return _digest((dest.as_posix(), src.read_bytes()) for src, dest in self.files())


@jsii.implements(ILocalBundling)
class _CopyFunctionSources:
    def __init__(self, bundle: FunctionBundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        self._bundle.copy_to(Path(output_dir))
        return True


def layer_install_command(target: Path, pip_target: list[str], requirements: list[str] | None = None) -> list[str]:
    """``pip install`` of ``requirements`` (the runtime dependencies unless told) into ``target`` (a
    layer's ``python/``) for the platform ``pip_target`` names: the layers' build, and
    ``infra/layer_check.py``'s proxies."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        *pip_target,
        "--only-binary=:all:",
        "--target",
        str(target),
        "--constraint",
        str(LOCK_FILE),
        *(runtime_requirements() if requirements is None else requirements),
    ]


@jsii.implements(ILocalBundling)
class _PipInstallLayer:
    def __init__(self, python: LambdaPython, requirements: list[str]) -> None:
        self._python = python
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        command = layer_install_command(Path(output_dir) / "python", self._python.pip_target(), self._requirements)
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        return True


def function_code(bundle: FunctionBundle, python: LambdaPython) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(PACKAGE),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundle.asset_hash(),
        bundling=BundlingOptions(image=python.build_image, local=_CopyFunctionSources(bundle)),
    )


def layer_hash(python: LambdaPython, requirements: list[str] | None = None) -> str:
    wanted = runtime_requirements() if requirements is None else requirements
    inputs = "\n".join([*wanted, *python.pip_target()]).encode()
    return _digest([("requirements", inputs), ("lock", LOCK_FILE.read_bytes())])


def _layer(
    scope: Construct, construct_id: str, python: LambdaPython, requirements: list[str], what: str
) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        construct_id,
        description=f"eks-jit {what}: " + ", ".join(requirements),
        compatible_runtimes=[python.runtime],
        compatible_architectures=[ARCHITECTURE],
        code=lambda_.Code.from_asset(
            str(LAYER_SOURCE),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=layer_hash(python, requirements),
            bundling=BundlingOptions(image=python.build_image, local=_PipInstallLayer(python, requirements)),
        ),
    )


def dependencies_layer(scope: Construct, construct_id: str, python: LambdaPython) -> lambda_.LayerVersion:
    return _layer(scope, construct_id, python, runtime_requirements(), "runtime dependencies")


def gateway_layer(scope: Construct, construct_id: str, python: LambdaPython) -> lambda_.LayerVersion:
    return _layer(scope, construct_id, python, gateway_requirements(), "gateway dependencies")
