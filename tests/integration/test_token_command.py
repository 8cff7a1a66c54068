"""``eks-jit token`` and the kubeconfig of a gateway cluster, run as kubectl runs them: the exec
command of the written kubeconfig, as a process, whose ExecCredential is then checked the way the
gateway will check it (``parse_token`` offline, then the presigned URL's SigV4 against local mode's
identities with the cluster header the gateway sends). Compared with ``aws eks get-token`` where the
AWS CLI is installed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from eks_jit.client import Client, local_client
from eks_jit.kubeconfig import LocalIdentity, kubeconfig
from eks_jit.local.sigv4 import AuthError, Identity, verify_presigned
from eks_jit.server.domain.eks_token import CLUSTER_ID_HEADER, PRESIGNED_LIFETIME, parse_token

BIN = Path(sys.executable).parent
SECRET = "local-secret-of-the-oncall-agent"
ONCALL = Identity("agent-oncall", "AKIALOCALONCALL00001", SECRET, "arn:aws:iam::123456789012:role/agents/oncall-agent")
STATE = {
    "api_endpoint": "http://127.0.0.1:40001",
    "aws_endpoint": "http://127.0.0.1:40002",
    "region": "us-east-1",
    "identities": [
        {"name": ONCALL.name, "access_key_id": ONCALL.access_key_id, "secret_access_key": SECRET,
         "principal_arn": ONCALL.principal_arn},
    ],
}  # fmt: skip
GATEWAY_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
ACTIVE = {
    "id": "0b9c1d2e-0000-4000-8000-000000000001",
    "status": "active",
    "namespaces": ["payments"],
    "connection": {
        "cluster": "demo-gateway",
        "region": "us-east-1",
        "endpoint": "https://127.0.0.1:40003/clusters/demo-gateway",
        "certificate_authority": GATEWAY_CA,
        "access_mode": "gateway",
    },
}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    (tmp_path / "local.json").write_text(json.dumps(STATE))
    return tmp_path


def no_aws_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A process environment with no AWS credentials or profile of the machine's, only eks-jit on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        **extra,
    }


def run_exec(config: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What kubectl does with the user's exec section: run the command with its args and env."""
    spec = config["users"][0]["user"]["exec"]
    env = env | {e["name"]: e["value"] for e in spec.get("env") or []}
    return subprocess.run(
        [spec["command"], *spec["args"]], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def verified(token: str, cluster: str, now: datetime) -> Identity:
    """The gateway's check of a local token: offline parse, then SigV4 with the header it sends."""
    call = parse_token(token, partition="aws", now=now)
    return verify_presigned(
        "GET",
        call.url,
        {"host": call.host, CLUSTER_ID_HEADER: cluster},
        {ONCALL.access_key_id: ONCALL},
        now,
        service="sts",
        region=call.region,
        lifetime=PRESIGNED_LIFETIME,
    )


def _stub_grant(client: Client, grant: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "grant", lambda grant_id: grant)


def test_a_gateway_kubeconfig_in_local_mode_makes_tokens_as_the_local_identity(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = local_client("agent-oncall", state_dir)
    _stub_grant(client, ACTIVE, monkeypatch)
    config = client.kubeconfig(ACTIVE["id"])
    assert config["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:40003/clusters/demo-gateway",
        "certificate-authority-data": GATEWAY_CA,
    }
    spec = config["users"][0]["user"]["exec"]
    assert spec["command"] == "eks-jit" and spec["args"][:3] == ["token", "--cluster", "demo-gateway"]
    assert "env" not in spec  # never the developer's own AWS_PROFILE
    # from another folder, with no AWS credentials at all: only eks-jit and the local state
    done = run_exec(config, no_aws_env(tmp_path) | {"AWS_PROFILE": "someone-else"})
    assert done.returncode == 0, done.stderr
    credential = json.loads(done.stdout)
    assert (credential["kind"], credential["apiVersion"]) == ("ExecCredential", spec["apiVersion"])
    now = datetime.now(UTC)
    assert verified(credential["status"]["token"], "demo-gateway", now) == ONCALL
    with pytest.raises(AuthError):  # the token is good for its own cluster only
        verified(credential["status"]["token"], "demo", now)


def test_a_gateway_kubeconfig_with_a_profile_runs_eks_jit_token_with_that_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").write_text("[profile oncall]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text(
        f"[oncall]\naws_access_key_id = {ONCALL.access_key_id}\naws_secret_access_key = {SECRET}\n"
    )
    files = {"AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    for name, value in files.items():
        monkeypatch.setenv(name, value)
    client = Client("https://api.example", profile="oncall")
    _stub_grant(client, ACTIVE, monkeypatch)
    config = client.kubeconfig(ACTIVE["id"])
    spec = config["users"][0]["user"]["exec"]
    assert spec["args"][-2:] == ["--profile", "oncall"] and spec["env"] == [{"name": "AWS_PROFILE", "value": "oncall"}]
    done = run_exec(config, no_aws_env(tmp_path, **files))
    assert done.returncode == 0, done.stderr
    assert verified(json.loads(done.stdout)["status"]["token"], "demo-gateway", datetime.now(UTC)) == ONCALL


def test_an_entry_cluster_keeps_aws_eks_get_token(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = ACTIVE | {"connection": ACTIVE["connection"] | {"access_mode": "entry", "cluster": "demo"}}
    client = local_client("agent-oncall", state_dir)
    _stub_grant(client, entry, monkeypatch)
    spec = client.kubeconfig(entry["id"])["users"][0]["user"]["exec"]
    assert spec["command"] == "aws" and spec["args"][2:5] == ["eks", "get-token", "--cluster-name"]
    assert client.kubeconfig(entry["id"]) == kubeconfig(entry)  # as before: no local identity in it


def test_a_publicly_trusted_gateway_has_no_ca_data() -> None:
    grant = ACTIVE | {"connection": ACTIVE["connection"] | {"certificate_authority": ""}}
    config = kubeconfig(grant, local=LocalIdentity("agent-oncall", "/tmp/state"))
    assert config["clusters"][0]["cluster"] == {"server": ACTIVE["connection"]["endpoint"]}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "eks-jit"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_token_from_the_environment_is_the_token_aws_eks_get_token_makes(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, AWS_ACCESS_KEY_ID=ONCALL.access_key_id, AWS_SECRET_ACCESS_KEY=SECRET)
    done = cli("token", "--cluster", "demo-gateway", "--region", "eu-west-1", env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    ours = json.loads(done.stdout)
    assert verified(ours["status"]["token"], "demo-gateway", datetime.now(UTC)) == ONCALL
    if shutil.which("aws") is None:
        pytest.skip("no AWS CLI to compare with")
    theirs = subprocess.run(
        ["aws", "--region", "eu-west-1", "eks", "get-token", "--cluster-name", "demo-gateway", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    aws = json.loads(theirs.stdout)
    assert verified(aws["status"]["token"], "demo-gateway", datetime.now(UTC)) == ONCALL
    assert (aws["kind"], aws["apiVersion"]) == (ours["kind"], ours["apiVersion"])

    def shape(credential: dict[str, Any]) -> tuple[Any, ...]:
        encoded = credential["status"]["token"].removeprefix("k8s-aws-v1.")
        url = urlsplit(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode())
        query = parse_qs(url.query)
        return url.netloc, url.path, sorted(query), query["X-Amz-SignedHeaders"], query["X-Amz-Expires"]

    assert shape(ours) == shape(aws)


@pytest.mark.parametrize(
    ("args", "extra_env", "code"),
    [
        (["--cluster", "demo", "--profile", "nobody"], {}, "profile_not_found"),
        (["--cluster", "demo"], {}, "no_credentials"),
        (["--cluster", "not a cluster"], {}, "invalid_cluster"),
        (["--cluster", "demo", "--as", "agent-oncall"], {}, "not_local_mode"),
        (["--cluster", "demo", "--as", "agent-zoe", "--state-dir", "STATE"], {}, "unknown_identity"),
        ([], {}, "usage"),
    ],
)
def test_token_errors_exit_2_with_one_line(
    state_dir: Path, tmp_path: Path, args: list[str], extra_env: dict[str, str], code: str
) -> None:
    args = [str(state_dir) if a == "STATE" else a for a in args]
    if "--state-dir" not in args:
        args += ["--state-dir", str(tmp_path / "no-state")]  # not local mode
    done = cli("token", *args, "-o", "json", env=no_aws_env(tmp_path, **extra_env))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("eks-jit: ")
    assert json.loads(done.stdout)["code"] == code
