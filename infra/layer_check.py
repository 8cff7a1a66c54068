"""``make layer-check``: can the dependency layer be built, and does the function code run on it,
for the Python of the ``lambda_python`` setting?

1. Build the layer exactly as ``cdk synth`` does (``manylinux2014_aarch64``, ``--only-binary``, the
   lock file as constraint) and check that every compiled extension in it is built for that
   CPython on aarch64.
2. aarch64 extensions cannot be imported on an x86_64 machine, so build the same pins for
   ``manylinux2014_x86_64`` as a proxy, check both builds hold the same distributions at the same
   versions, and import every handler of the function bundle with that Python (``-I -S``: the
   interpreter's own site-packages are not looked at, only the proxy layer and the bundle), load the
   bundled configuration and take one Cedar decision.

``LAMBDA_PYTHON=3.12`` checks another allowed value than the setting's default. Needs
``python<version>`` (``LAYER_CHECK_PYTHON``, pyenv's, or on PATH). Not part of ``make test``: CI
promises Python 3.11 only. Prints what it checked; exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.bundling import PIP_PLATFORM, FunctionBundle, LambdaPython, layer_install_command
from infra.settings import load_deployment

PROXY_PLATFORM = "manylinux2014_x86_64"
HANDLERS = ("api", "revoke", "sweeper", "notify", "workflow")
_DIST = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.dist-info$")

SMOKE = """
import importlib, sys, time
sys.path[:0] = [{layer!r}, {bundle!r}]
started = time.perf_counter()
for name in {handlers!r}:
    module = importlib.import_module("eks_jit.server.handlers." + name)
    assert callable(module.handler), name
from eks_jit.server.config import load_config
catalog, policies = load_config({config!r})
import cedarpy
decision = cedarpy.is_authorized(
    {{"principal": 'User::"a"', "action": 'Action::"view"', "resource": 'Photo::"b"', "context": {{}}}},
    'permit(principal, action, resource);', [],
)
assert decision.allowed, decision
print(f"imported {{len({handlers!r})}} handlers, loaded {{len(catalog.clusters)}} clusters and "
      f"{{len(catalog.scopes)}} scopes, one Cedar decision: {{sys.version.split()[0]}}, "
      f"{{time.perf_counter() - started:.2f}} s")
"""


def distributions(layer: Path) -> dict[str, str]:
    found = {}
    for entry in layer.iterdir():
        match = _DIST.match(entry.name)
        if match:
            found[match["name"].lower().replace("_", "-")] = match["version"]
    return found


def foreign_extensions(layer: Path, python: LambdaPython, arch: str) -> list[str]:
    """Compiled extensions not built for ``python`` on ``arch`` (abi3 ones count as built for it)."""
    tag = f"cpython-{python.version.replace('.', '')}-{arch}-linux-gnu"
    return sorted(
        str(so.relative_to(layer))
        for so in layer.rglob("*.so")
        if tag not in so.name and not (".abi3." in so.name and arch in str(so))
    )


def build(target: Path, pip_target: list[str]) -> None:
    subprocess.run(layer_install_command(target, pip_target), check=True)  # noqa: S603 - fixed argv


def find_interpreter(python: LambdaPython) -> str | None:
    """``LAYER_CHECK_PYTHON``, else pyenv's newest ``3.X.*`` (its shim fails when that version is not
    the active one), else ``python3.X`` on PATH."""
    if os.environ.get("LAYER_CHECK_PYTHON"):
        return os.environ["LAYER_CHECK_PYTHON"]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
        found = sorted(Path(root).glob(f"versions/{python.version}.*/bin/{python.identifier}")) if root else []
        if found:
            return str(found[-1])
    return shutil.which(python.identifier)


def main() -> int:
    chosen = os.environ.get("LAMBDA_PYTHON")  # make layer-check LAMBDA_PYTHON=3.12: another allowed value
    deployment = load_deployment({"lambda_python": chosen} if chosen else {})
    python = LambdaPython(deployment.settings.lambda_python)
    interpreter = find_interpreter(python)
    if interpreter is None:
        print(f"layer-check: no {python.identifier} on PATH (or set LAYER_CHECK_PYTHON)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="eks-jit-layer-") as tmp:
        work = Path(tmp)
        target, proxy = work / "aarch64" / "python", work / "x86_64" / "python"
        build(target, python.pip_target())
        foreign = foreign_extensions(target, python, "aarch64")
        if foreign:
            print(f"layer-check: not built for {python.identifier}/aarch64: {foreign}", file=sys.stderr)
            return 1
        extensions = len(list(target.rglob("*.so")))
        print(
            f"layer ({PIP_PLATFORM}, {python.identifier}): {len(distributions(target))} distributions, "
            f"{extensions} compiled extensions, all cp{python.version.replace('.', '')}-aarch64"
        )
        build(proxy, [arg.replace(PIP_PLATFORM, PROXY_PLATFORM) for arg in python.pip_target()])
        if distributions(proxy) != distributions(target):
            print(
                f"layer-check: the proxy holds other versions: {distributions(proxy)} vs {distributions(target)}",
                file=sys.stderr,
            )
            return 1
        print(f"proxy ({PROXY_PLATFORM}): the same {len(distributions(proxy))} distributions at the same versions")
        bundle_dir = work / "bundle"
        bundle = FunctionBundle(deployment)
        for source, dest in bundle.files():
            (bundle_dir / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, bundle_dir / dest)
        smoke = SMOKE.format(
            layer=str(proxy),
            bundle=str(bundle_dir),
            handlers=HANDLERS,
            config=str(bundle_dir / bundle.config_in_bundle),
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_SERVICE_NAME": "eks-jit",
            "POWERTOOLS_METRICS_NAMESPACE": "EksJit",
        }
        done = subprocess.run(  # noqa: S603 - fixed argv
            [interpreter, "-I", "-S", "-W", "error::DeprecationWarning", "-c", smoke],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            print(f"layer-check: the handlers do not import under {interpreter}", file=sys.stderr)
            return 1
    print(f"layer-check: {python.identifier} OK ({interpreter})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
