"""The data-path gateway as deployed (infra/constructs/gateway.py): a function URL that streams, the
Lambda Web Adapter in front of uvicorn, a role that reads grants and records commands and nothing
else, one static access entry per gateway cluster, and the api function pointing agents at it. The
shared synth has one gateway cluster (``gateway-eks``); ``synth_with_account_role`` has none. cdk-nag,
checkov, cfn-lint and the IAM reference judge the gateway through the shared synth (test_quality.py,
test_template_scan.py, test_iam_reference.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App, Environment, Stack
from packaging.requirements import Requirement

from eks_jit.server.config import ConfigError
from eks_jit.server.domain.catalog import MANAGED_TAG
from eks_jit.server.domain.impersonation import GATEWAY_GROUP
from infra.bundling import GATEWAY_SCRIPT, FunctionBundle, gateway_requirements
from infra.constructs.gateway import check_same_account_and_region
from infra.functions import env_var
from infra.settings import load_deployment
from tests.infra.conftest import (
    ACCOUNT,
    GATEWAY_CLUSTER,
    GATEWAY_CLUSTER_CONFIG,
    OTHER_ACCOUNT,
    ROOT,
    STACK,
    Synth,
    actions,
    listed,
    resolve,
    write_config,
)

pytestmark = pytest.mark.infra
ADAPTER = "arn:<AWS::Partition>:lambda:<AWS::Region>:753240598075:layer:LambdaAdapterLayerArm64:30"
URL = "GatewayFunctionFunctionUrl"


def _one(synth: Synth, kind: str, prefix: str = "Gateway") -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in synth.resources(STACK, kind).items() if k.startswith(prefix)]
    return found


def test_the_gateway_streams_through_its_function_url_behind_the_web_adapter(synth: Synth) -> None:
    gateway = synth.functions()["gateway"]
    assert gateway["Handler"] == GATEWAY_SCRIPT == "eks-jit-gateway.sh"  # the adapter's bootstrap runs it
    assert (gateway["Runtime"], gateway["Architectures"], gateway["Timeout"]) == ("python3.13", ["arm64"], 900)
    shared, own, adapter = gateway["Layers"]
    assert shared == synth.functions()["api"]["Layers"][0]  # the same dependency layer as every function
    layers = synth.resources(STACK, "AWS::Lambda::LayerVersion")
    assert "starlette==" in layers[own["Ref"]]["Properties"]["Description"]
    assert resolve(adapter) == ADAPTER
    env = gateway["Environment"]["Variables"]
    assert {k: v for k, v in env.items() if k.startswith(("AWS_", "EKS_JIT_GATEWAY"))} == {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_PORT": "8080",
        "AWS_LWA_READINESS_CHECK_PROTOCOL": "tcp",
        "EKS_JIT_GATEWAY_STREAM_LIMIT_SECONDS": "870",  # ends a watch before the invocation is cut off
    }
    assert set(env) - set(env_var(f) for f in ("table_name", "config_path", "api_url")) == {
        *(k for k in env if k.startswith(("AWS_", "EKS_JIT_GATEWAY"))),
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
    }
    assert "ReservedConcurrentExecutions" not in gateway  # the default: no cap, no reservation

    _, url = _one(synth, "AWS::Lambda::Url")
    assert url["Properties"]["AuthType"] == "NONE" and url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    assert "Cors" not in url["Properties"]
    assert url["Properties"]["TargetFunctionArn"] == {"Fn::GetAtt": [synth.function_logical("gateway"), "Arn"]}
    # Both permissions a function URL needs since October 2025, anyone's (the gateway authenticates), and
    # the plain invoke only through the URL.
    permissions = {
        p["Properties"]["Action"]: p["Properties"]
        for k, p in synth.resources(STACK, "AWS::Lambda::Permission").items()
        if k.startswith("GatewayFunction")
    }
    assert set(permissions) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert permissions["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    assert {p["Principal"] for p in permissions.values()} == {"*"}


def test_the_gateway_role_reads_grants_records_commands_and_describes_its_clusters_and_nothing_else(
    synth: Synth,
) -> None:
    statements = {s["Sid"]: s for s in synth.function_statements()["gateway"]}
    assert {sid: sorted(actions(s)) for sid, s in statements.items()} == {
        "WriteOwnLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "ReadActiveGrants": ["dynamodb:BatchGetItem", "dynamodb:GetItem"],
        "RecordCommands": ["dynamodb:PutItem"],
        "DescribeGatewayClusters": ["eks:DescribeCluster"],
        "AskForHeldCommands": ["execute-api:Invoke"],
    }
    api = synth.logical("ApiRestApi", "AWS::ApiGateway::RestApi")
    # one method of one stage: it cannot request, approve, revoke or read a grant through the API
    assert [resolve(r) for r in listed(statements["AskForHeldCommands"]["Resource"])] == [
        f"arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{api}>/prod/POST/v1/holds"
    ]
    table = f"<{synth.logical('StorageGrants', 'AWS::DynamoDB::Table')}.Arn>"
    assert statements["ReadActiveGrants"]["Condition"] == {
        # the grants, and the active-grant index items of the gateway clusters only
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["GRANT#*", f"ACCESS#{GATEWAY_CLUSTER}#*"]},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }
    assert statements["RecordCommands"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["COMMAND#*"]},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }
    for sid in ("ReadActiveGrants", "RecordCommands"):
        assert listed(statements[sid]["Resource"]) == [table]
    assert listed(statements["DescribeGatewayClusters"]["Resource"]) == [
        f"arn:<AWS::Partition>:eks:eu-west-1:{ACCOUNT}:cluster/{GATEWAY_CLUSTER}"
    ]
    everything = {a for s in statements.values() for a in actions(s)}
    assert not {a for a in everything if "AccessEntry" in a or "AccessPolic" in a or a.startswith(("sts:", "iam:"))}
    assert not everything & {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"}
    assert not [a for a in everything if a.startswith("dynamodb:Transact") or a.endswith("*")]
    # the cross-account role stack trusts only the functions that change access
    assert "eks-jit-gateway" not in str(synth.template("EksJitClusterAccess-shared-eks"))


def test_one_static_access_entry_per_gateway_cluster_in_the_gateway_group_alone(synth: Synth) -> None:
    entries = synth.resources(STACK, "AWS::EKS::AccessEntry")
    assert [e["Properties"]["ClusterName"] for e in entries.values()] == [GATEWAY_CLUSTER]
    (entry,) = entries.values()
    role = synth.functions()["gateway"]["Role"]
    assert entry["Properties"] == {
        "ClusterName": GATEWAY_CLUSTER,
        "PrincipalArn": role,  # the gateway function's own role
        "Type": "STANDARD",
        "KubernetesGroups": [GATEWAY_GROUP],  # eks-jit:gateway: only what rbac render lets it impersonate
    }
    assert "AccessPolicies" not in entry["Properties"]  # nothing of its own in the cluster
    assert MANAGED_TAG not in str(entry)  # the reconciler never takes it for one of its own


def test_the_api_function_points_agents_at_the_gateway_and_the_stack_says_where_it_is(synth: Synth) -> None:
    env = synth.functions()["api"]["Environment"]["Variables"]
    url = f"<{synth.logical(URL, 'AWS::Lambda::Url')}.FunctionUrl>"
    # https://<id>.lambda-url.<region>.on.aws/ without its trailing slash: kubeconfigs add /clusters/<name>
    assert resolve(env[env_var("gateway_endpoint")]) == f"https://split(/,{url})[2]"
    assert env[env_var("gateway_ca")] == ""  # function URLs are publicly trusted
    outputs = synth.template(STACK)["Outputs"]
    assert resolve(outputs["GatewayUrl"]["Value"]) == f"https://split(/,{url})[2]"
    assert resolve(outputs["GatewayRoleArn"]["Value"]) == f"<{role_of(synth)}.Arn>"
    alarms = [a["Properties"] for a in synth.resources(STACK, "AWS::CloudWatch::Alarm").values()]
    gateway_alarms = {
        a["MetricName"]
        for a in alarms
        if a.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": synth.function_logical("gateway")}}]
    }
    assert gateway_alarms == {"Errors", "Throttles"}


def test_the_gateway_and_the_api_know_each_other_for_held_commands(synth: Synth) -> None:
    api = synth.functions()["api"]["Environment"]["Variables"]
    gateway = synth.functions()["gateway"]["Environment"]["Variables"]
    assert api[env_var("gateway_role_arn")] == {"Fn::GetAtt": [role_of(synth), "Arn"]}  # its only caller
    rest_api = synth.logical("ApiRestApi", "AWS::ApiGateway::RestApi")
    assert resolve(gateway[env_var("api_url")]) == (
        f"https://<{rest_api}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/prod"
    )


def role_of(synth: Synth) -> str:
    return str(synth.functions()["gateway"]["Role"]["Fn::GetAtt"][0])


def test_a_catalog_without_a_gateway_cluster_gets_none_of_it(synth_with_account_role: Synth) -> None:
    synth = synth_with_account_role
    assert "gateway" not in synth.functions()
    for kind in ("AWS::Lambda::Url", "AWS::EKS::AccessEntry"):
        assert synth.resources(STACK, kind) == {}, kind
    assert not [k for k in synth.template(STACK)["Resources"] if k.startswith("Gateway")]
    assert len(synth.resources(STACK, "AWS::Lambda::LayerVersion")) == 1
    env = synth.functions()["api"]["Environment"]["Variables"]
    assert env_var("gateway_endpoint") not in env and env_var("gateway_ca") not in env
    assert env_var("gateway_role_arn") not in env  # POST /v1/holds refuses every caller (403)
    holds = [m for m in synth.resources(STACK, "AWS::ApiGateway::Method").values() if "holds" in str(m)]
    assert holds == []  # nor is the route deployed
    assert not [o for o in synth.template(STACK)["Outputs"] if o.startswith("Gateway")]


def _config(tmp_path: Path, **cluster: Any) -> Path:
    return write_config(tmp_path, clusters={GATEWAY_CLUSTER: {**GATEWAY_CLUSTER_CONFIG, **cluster}})


def test_a_gateway_cluster_in_another_account_is_refused_naming_it(tmp_path: Path) -> None:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/eks-jit-cluster-access"
    config = _config(tmp_path, account=OTHER_ACCOUNT, role_arn=role)
    with pytest.raises(ConfigError, match=f"cluster '{GATEWAY_CLUSTER}': access_mode gateway is not supported"):
        load_deployment({"config": str(config)})
    # the same cluster as an entry-mode cluster is fine
    raw = yaml.safe_load(config.read_text())
    raw["clusters"][GATEWAY_CLUSTER]["access_mode"] = "entry"
    config.write_text(yaml.safe_dump(raw))
    assert not load_deployment({"config": str(config)}).catalog.clusters[GATEWAY_CLUSTER].gateway


@pytest.mark.parametrize(
    ("account", "region", "what"), [(ACCOUNT, "eu-central-1", "region"), (OTHER_ACCOUNT, "eu-west-1", "account")]
)
def test_a_gateway_cluster_outside_the_stack_s_account_or_region_is_refused_when_synth_knows_them(
    tmp_path: Path, account: str, region: str, what: str
) -> None:
    deployment = load_deployment({"config": str(_config(tmp_path))})
    stack = Stack(App(), "Where", env=Environment(account=account, region=region))
    with pytest.raises(ConfigError, match=f"cluster '{GATEWAY_CLUSTER}': .* needs the cluster in this stack's {what}"):
        check_same_account_and_region(stack, deployment)
    check_same_account_and_region(Stack(App(), "Agnostic"), deployment)  # unknown at synth: deploy decides
    same = Stack(App(), "Same", env=Environment(account=ACCOUNT, region="eu-west-1"))
    check_same_account_and_region(same, deployment)


def test_the_gateway_layer_is_the_gateway_extra_and_everything_it_pulls_in_is_pinned_by_the_lock() -> None:
    """The layer is ``pip install <gateway extra> --constraint requirements.lock`` for Lambda's Linux: every
    package that resolves to, on each ``lambda_python`` choice, must have a pin there, or pip would pick
    whatever version the index has that day."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gateway"]
    assert gateway_requirements() == [r for r in extra if not r.startswith("eks-jit[")]
    assert {Requirement(r).name for r in gateway_requirements()} >= {"starlette", "uvicorn", "httpx2"}

    def canonical(name: str) -> str:
        return name.lower().replace("_", "-")

    pinned = {canonical(line.split("==")[0]) for line in (ROOT / "requirements.lock").read_text().splitlines() if line}
    for python in ("3.11", "3.12", "3.13"):
        where = {"sys_platform": "linux", "python_version": python, "platform_python_implementation": "CPython"}
        todo = [Requirement(r) for r in gateway_requirements()]
        seen: set[str] = set()
        while todo:
            requirement = todo.pop()
            name = canonical(requirement.name)
            if name in seen or (requirement.marker and not requirement.marker.evaluate({**where, "extra": ""})):
                continue
            seen.add(name)
            assert name in pinned, (name, python)
            todo += [Requirement(r) for r in requires(name) or []]
        assert {"httpcore2", "h11", "truststore", "idna"} <= seen  # it did walk the tree


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STUB = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": __file__.encode()})
"""


def test_the_start_script_is_executable_and_serves_the_bundle_s_gateway_on_the_adapter_s_port(tmp_path: Path) -> None:
    """What /opt/bootstrap does with it: executes ``$LAMBDA_TASK_ROOT/$_HANDLER``. The bundle's gateway
    module is replaced by a stub here: this checks the script, the bundle layout and the port."""
    bundle = tmp_path / "task"
    FunctionBundle(load_deployment({})).copy_to(bundle)
    script = bundle / GATEWAY_SCRIPT
    assert os.access(script, os.X_OK)
    module = bundle / "eks_jit" / "server" / "handlers" / "gateway.py"
    module.write_text(STUB)
    port = _free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LAMBDA_TASK_ROOT": str(bundle),
        "AWS_LWA_PORT": str(port),
    }
    server = subprocess.Popen([str(script)], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    served = answer.read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.2)
        assert served == str(module)  # the bundle's copy, not the checkout's
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_gateway_module_the_script_serves_imports_from_the_bundle_alone(tmp_path: Path) -> None:
    """The real ``eks_jit.server.handlers.gateway`` (its app is built on first use, from the environment:
    importing needs none), from the bundle's copy, as the script's PYTHONPATH puts it first."""
    bundle = tmp_path / "task"
    FunctionBundle(load_deployment({})).copy_to(bundle)
    code = (
        "import eks_jit.server.handlers.gateway as gateway\n"
        f"assert gateway.__file__.startswith({str(bundle)!r}), gateway.__file__\n"
        "assert callable(gateway.create_app)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(bundle)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
