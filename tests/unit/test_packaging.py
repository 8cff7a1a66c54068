"""What the package promises about its installs, checked without installing anything: the light
default is the client and CLI, extras carry the rest, the Lambda layer is the server extra, the
local lock is the full lock cut down, and a missing extra is one line naming it. The installs
themselves, in fresh venvs from an empty folder: tests/package/test_install.py."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from eks_jit import cli
from eks_jit.bundled import bundled

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def names(requirements: list[str], expand: bool = True) -> dict[str, str]:
    """{distribution name: exact version}, following ``eks-jit[...]`` into the extras it names."""
    found: dict[str, str] = {}
    for line in requirements:
        req = Requirement(line)
        if req.name == "eks-jit":
            for extra in req.extras:
                found |= names(EXTRAS[extra]) if expand else {}
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: not an exact pin"
        found[canonical(req.name)] = spec.version
    return found


def canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def lock(path: str) -> dict[str, str]:
    pins = [line.split("==") for line in (ROOT / path).read_text().splitlines() if line and not line.startswith("#")]
    return {canonical(name): version for name, version in pins}


# The data-path gateway's own files: they run in the gateway function only, whose bundle adds the
# gateway extra (ASGI server and HTTP client) to the server extra.
GATEWAY_ONLY = ("handlers/gateway.py", "handlers/upgrades.py", "adapters/kube_upstream.py")


def third_party_imports(folder: Path, *, skip: tuple[str, ...] = ()) -> set[str]:
    """Top-level modules ``folder``'s code imports that are not the project's or the standard library's."""
    found = set()
    for source in folder.rglob("*.py"):
        if source.relative_to(folder).as_posix() in skip:
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("lambdas", "eks_jit", "__future__")}


def test_the_default_install_is_the_client_and_the_cli() -> None:
    assert set(names(PROJECT["dependencies"])) == {"boto3", "pyyaml"}


def test_the_lambda_layer_is_the_server_extra_and_holds_every_module_the_functions_import() -> None:
    from infra.bundling import runtime_requirements

    assert runtime_requirements() == EXTRAS["server"]
    layer = set(names(runtime_requirements()))
    distributions = packages_distributions()
    for module in third_party_imports(ROOT / "lambdas", skip=GATEWAY_ONLY):
        provided_by = {canonical(d) for d in distributions[module]}
        # botocore comes with boto3 (its own pin in requirements.lock constrains the layer)
        assert provided_by & layer or module == "botocore", f"lambdas imports {module}: not in the server extra"
    gateway = layer | set(names(EXTRAS["gateway"]))
    for module in third_party_imports(ROOT / "lambdas"):
        provided_by = {canonical(d) for d in distributions[module]}
        assert provided_by & gateway or module == "botocore", f"lambdas imports {module}: in no extra of the gateway"


def test_the_client_and_the_cli_import_nothing_an_extra_brings() -> None:
    code = "import sys, eks_jit.client, eks_jit.cli; eks_jit.cli.parser(); print(' '.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {module.split(".")[0] for module in run.stdout.split()}
    light = set(names(PROJECT["dependencies"]))
    extras = {name for extra in EXTRAS.values() for name in names(extra)} - light
    brought = {m for m, dists in packages_distributions().items() if {canonical(d) for d in dists} & extras}
    assert {"pydantic", "cedarpy", "moto"} <= brought
    assert loaded & brought == set()


def test_every_extra_is_pinned_exactly_at_the_lock_s_version() -> None:
    full = lock("requirements.lock")
    for extra, requirements in EXTRAS.items():
        for name, version in names(requirements).items():
            assert full.get(name) == version, f"[{extra}] pins {name}=={version}, requirements.lock {full.get(name)}"


def test_the_local_lock_is_the_full_lock_cut_down_to_what_local_mode_needs() -> None:
    full, local = lock("requirements.lock"), lock("requirements-local.lock")
    assert {n: v for n, v in local.items() if full.get(n) != v} == {}, "same versions as requirements.lock"
    assert set(names(EXTRAS["local"])) <= set(local)
    assert not {"aws-cdk-lib", "playwright", "schemathesis", "pytest", "kubernetes-validate", "cfn-lint"} & set(local)


def test_local_mode_runs_the_functions_on_the_python_they_deploy_with() -> None:
    from eks_jit.local.resources import LAMBDA_PYTHON
    from infra.settings import DeploySettings

    assert DeploySettings.model_fields["lambda_python"].default == LAMBDA_PYTHON


def test_the_wheel_lists_every_package_of_eks_jit_and_lambdas_and_nothing_else_at_the_top() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    code = {p for p in setuptools["packages"] if not p.startswith("eks_jit._bundled.")}
    own = {".".join(i.parent.relative_to(ROOT).parts) for i in (ROOT / "eks_jit").rglob("__init__.py")}
    server = {
        ".".join(("eks_jit", "server", *i.parent.relative_to(ROOT / "lambdas").parts))
        for i in (ROOT / "lambdas").rglob("__init__.py")
    }
    assert code == {p for p in own if not p.startswith("eks_jit.server")} | server  # a new subpackage must be listed
    assert {p.split(".")[0] for p in code} == {"eks_jit"}
    for package, folder in setuptools["package-dir"].items():
        assert package.startswith("eks_jit.") and (ROOT / folder).is_dir()
    assert setuptools["package-dir"]["eks_jit.server"] == "lambdas"


def test_in_a_checkout_eks_jit_server_is_the_lambdas_folder_itself() -> None:
    link = ROOT / "eks_jit" / "server"
    assert link.is_symlink() and link.resolve() == (ROOT / "lambdas").resolve()


def test_inside_lambdas_every_import_of_its_own_code_is_relative() -> None:
    """The deployed bundle and the wheel name the folder eks_jit.server; an absolute import of
    either name inside it would tie the code to one of them (or load a module twice)."""
    absolute = []
    for source in (ROOT / "lambdas").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            absolute += [f"{source.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("lambdas", "eks_jit")]
    assert absolute == []


def test_local_mode_and_a_handler_load_each_module_under_one_name_only() -> None:
    code = (
        "import sys, eks_jit.local.resources, eks_jit.server.handlers.api, eks_jit.server.handlers.revoke;"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] == 'lambdas'))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.strip() == ""


def test_in_a_checkout_the_bundled_files_are_the_repo_s_own() -> None:
    assert bundled("config", "local", "eks-jit.yaml") == ROOT / "config" / "local" / "eks-jit.yaml"
    assert cli.DEFAULT_CONFIG == ROOT / "config" / "example" / "eks-jit.yaml"


def without(module: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter where ``module`` cannot be imported, as when it is not installed."""
    code = f"import sys; sys.modules[{module!r}] = None; from eks_jit.cli import main; sys.exit(main({argv!r}))"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("argv", "missing", "extra"),
    [
        (["local", "up", "--port", "0", "--state-dir", "state"], "moto", "local"),
        (["rbac", "render", "--out", "state"], "kubernetes_validate", "rbac"),
        (["rbac", "render", "--out", "state"], "cedarpy", "rbac"),
        (["mcp", "--endpoint", "https://abc.execute-api.eu-west-1.amazonaws.com/prod"], "mcp", "mcp"),
    ],
)
def test_a_command_whose_extra_is_missing_says_which_in_one_line(
    argv: list[str], missing: str, extra: str, tmp_path: Path
) -> None:
    run = without(missing, argv, tmp_path)

    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and f"pip install 'eks-jit[{extra}]'" in run.stderr and missing in run.stderr
    assert not (tmp_path / "state").exists()


def test_a_missing_extra_is_a_json_error_with_o_json(tmp_path: Path) -> None:
    run = without("kubernetes_validate", ["-o", "json", "rbac", "render", "--out", "state"], tmp_path)

    assert run.returncode == 2 and json.loads(run.stdout)["code"] == "missing_extra"


def test_a_bug_in_the_project_s_own_imports_is_not_blamed_on_an_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "eks_jit.rbac", None)

    with pytest.raises(ModuleNotFoundError):
        cli.main(["rbac", "render", "--out", "unused"])
