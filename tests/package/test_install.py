"""The package as a newcomer installs it: the wheel built from the project, pip-installed into a
fresh virtualenv (pinned by requirements.lock), used from an empty folder, far from the repo.

About 50 s in all on 2 cores with a warm pip cache (wheel 7 s; light install 5 s; local 15 s;
rbac 5 s; local mode's start): the venvs are made without pip and filled by this venv's pip
(``pip --python``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "EKS_JIT_ENDPOINT")}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what pyproject.toml names (no build/ left in the checkout to go stale)."""
    source = tmp_path_factory.mktemp("source")
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in ["eks_jit", *tool["package-dir"].values()]:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / folder, source / folder, symlinks=True, ignore=ignore)  # eks_jit/server stays a link
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / file, source / file)
    out = tmp_path_factory.mktemp("wheel")
    built = run([*PIP, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)], cwd=out)
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("eks_jit-*.whl")
    return found


def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path, extras: str = "") -> Path:
    """A fresh virtualenv with the wheel (and ``extras``) installed; returns its bin folder."""
    home = tmp_path_factory.mktemp("venv")
    made = run([sys.executable, "-m", "venv", "--without-pip", str(home)], cwd=home)
    assert made.returncode == 0, made.stderr
    install(home / "bin", wheel, extras)
    return home / "bin"


def install(bin_dir: Path, wheel: Path, extras: str) -> None:
    target = f"eks-jit[{extras}] @ {wheel.as_uri()}" if extras else str(wheel)
    command = [*PIP, "--python", str(bin_dir / "python"), "install", "--quiet", "-c", str(ROOT / "requirements.lock")]
    done = run([*command, target], cwd=bin_dir)
    assert done.returncode == 0, done.stderr


def top_level(bin_dir: Path) -> set[str]:
    (site,) = bin_dir.parent.glob("lib/python3*/site-packages")
    record = next(site.glob("eks_jit-*.dist-info")) / "RECORD"
    paths = [line.split(",")[0] for line in record.read_text().splitlines()]
    return {path.split("/")[0] for path in paths if "/" in path and not path.startswith("..")}  # ../bin/eks-jit


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return venv(tmp_path_factory, wheel)


def test_pip_install_is_the_client_and_the_cli_only(light: Path, tmp_path: Path) -> None:
    assert run([str(light / "eks-jit"), "--help"], cwd=tmp_path).returncode == 0
    client = run([str(light / "python"), "-c", "from eks_jit.client import Client"], cwd=tmp_path)
    assert client.returncode == 0, client.stderr
    for heavy in ("pydantic", "cedarpy", "aws_lambda_powertools", "slack_sdk", "moto"):
        assert run([str(light / "python"), "-c", f"import {heavy}"], cwd=tmp_path).returncode == 1, heavy


def test_the_wheel_installs_no_generic_top_level_name(light: Path, tmp_path: Path) -> None:
    assert top_level(light) == {"eks_jit", "eks_jit-0.1.0.dist-info"}
    assert run([str(light / "python"), "-c", "import lambdas"], cwd=tmp_path).returncode == 1


def test_the_wheel_carries_the_functions_code_as_eks_jit_server(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    for file in (f for f in (ROOT / "lambdas").rglob("*") if f.is_file() and "__pycache__" not in f.parts):
        assert f"eks_jit/server/{file.relative_to(ROOT / 'lambdas').as_posix()}" in shipped, file


def test_the_wheel_carries_every_file_of_the_mapped_folders(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    for folder in ("config", "statemachines"):
        for file in (f for f in (ROOT / folder).rglob("*") if f.is_file()):
            assert f"eks_jit/_bundled/{file.relative_to(ROOT).as_posix()}" in shipped, file


@pytest.mark.parametrize(("argv", "extra"), [(["local", "up", "--port", "0"], "local"), (["rbac", "render"], "rbac")])
def test_a_command_of_an_extra_not_installed_exits_2_naming_it(
    light: Path, tmp_path: Path, argv: list[str], extra: str
) -> None:
    done = run([str(light / "eks-jit"), *argv], cwd=tmp_path)

    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and f"pip install 'eks-jit[{extra}]'" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


EMULATED_KUBE_API = """
import json, ssl, urllib.request
from eks_jit.emulation import kube_api
with kube_api.serve() as api:
    context = ssl.create_default_context(cadata=api.ca_pem)
    def get(path):
        return json.load(urllib.request.urlopen(api.url + path, context=context, timeout=10))
    listed = get("/apis/apps/v1/namespaces/payments/deployments")
    names = [d["metadata"]["name"] for d in listed["items"]]
    print(json.dumps({"version": get("/version")["gitVersion"], "deployments": names}))
"""


def test_local_mode_then_rbac_render_run_from_an_empty_folder(
    tmp_path_factory: pytest.TempPathFactory, wheel: Path, tmp_path: Path
) -> None:
    bin_dir = venv(tmp_path_factory, wheel, "local")
    log = (tmp_path.parent / f"{tmp_path.name}-local.log").open("w")
    up = subprocess.Popen(
        [str(bin_dir / "eks-jit"), "local", "up", "--port", "0"], cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        state_file, deadline = tmp_path / ".eks-jit" / "local.json", time.monotonic() + 90
        while not state_file.exists():
            assert up.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        time.sleep(0.3)
        state = json.loads(state_file.read_text())
        assert "site-packages" in state["config"]  # the wheel's copy of config/local, not the repo's
        whoami = run([str(bin_dir / "eks-jit"), "--as", "agent-oncall", "-o", "json", "whoami"], cwd=tmp_path)
        assert whoami.returncode == 0, whoami.stderr
        assert json.loads(whoami.stdout)["principal"]
    finally:
        up.terminate()
        up.wait(timeout=30)
        log.close()
    assert up.returncode == 0, Path(log.name).read_text()
    # the emulated Kubernetes API behind local mode's gateway runs on the local extra alone
    served = run([str(bin_dir / "python"), "-c", EMULATED_KUBE_API], cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout) == {"version": "v1.31.0-eks-jit-emulated", "deployments": ["payments-api"]}

    install(bin_dir, wheel, "rbac")
    rendered = run([str(bin_dir / "eks-jit"), "rbac", "render", "--out", "rbac"], cwd=tmp_path)

    assert rendered.returncode == 0, rendered.stderr
    written = rendered.stdout.split()
    assert written and all((tmp_path / path).is_file() for path in written)
    assert "kind: RoleBinding" in (tmp_path / written[0]).read_text()
