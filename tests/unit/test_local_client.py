"""The public helpers an agent script uses: local mode's identities and AWS endpoint, and the
kubeconfig of an active grant (the same builder the CLI uses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eks_jit.client import ApiError, Client, local_aws, local_client
from eks_jit.kubeconfig import GrantNotActive, kubeconfig

STATE = {
    "api_endpoint": "http://127.0.0.1:40001",
    "aws_endpoint": "http://127.0.0.1:40002",
    "region": "us-east-1",
    "identities": [
        {"name": "agent-oncall", "access_key_id": "AKIALOCALONCALL00001", "secret_access_key": "s1",
         "principal_arn": "arn:aws:iam::123456789012:role/agents/oncall-agent"},
        {"name": "approver-alice", "access_key_id": "AKIALOCALALICE000001", "secret_access_key": "s2",
         "principal_arn": "arn:aws:iam::123456789012:user/alice"},
    ],
}  # fmt: skip
ACTIVE = {
    "id": "0b9c1d2e-0000-4000-8000-000000000001",
    "status": "active",
    "namespaces": ["payments"],
    "connection": {
        "cluster": "demo",
        "region": "us-east-1",
        "endpoint": "https://demo.eks",
        "certificate_authority": "Q0E=",
    },
}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    (tmp_path / "local.json").write_text(json.dumps(STATE))
    return tmp_path


def test_local_client_signs_as_the_named_identity_against_local_modes_api(state_dir: Path) -> None:
    client = local_client("approver-alice", state_dir)
    assert (client.endpoint, client.region) == ("http://127.0.0.1:40001", "us-east-1")
    frozen = client._credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key) == ("AKIALOCALALICE000001", "s2")
    assert client.profile is None  # its kubeconfig never names the developer's own profile


def test_an_unknown_identity_or_no_local_mode_is_a_clear_error(state_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ApiError) as unknown:
        local_client("approver-zoe", state_dir)
    assert unknown.value.code == "unknown_identity"
    assert "agent-oncall, approver-alice" in unknown.value.message
    with pytest.raises(ApiError) as absent:
        local_client("agent-oncall", tmp_path / "nowhere")
    assert absent.value.code == "not_local_mode" and "local up" in absent.value.message


def test_local_aws_is_a_boto3_client_for_the_emulated_aws(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the Makefile's: local mode's region wins
    eks = local_aws("eks", state_dir)
    assert (eks.meta.endpoint_url, eks.meta.region_name) == ("http://127.0.0.1:40002", "us-east-1")


def _stub_grant(client: Client, grant: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(client, "grant", lambda grant_id: asked.append(grant_id) or grant)
    return asked


def test_client_kubeconfig_is_the_clis_for_the_grant(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-else")  # explicit local keys: never this profile
    client = local_client("agent-oncall", state_dir)
    asked = _stub_grant(client, ACTIVE, monkeypatch)
    config = client.kubeconfig(ACTIVE["id"])
    assert asked == [ACTIVE["id"]]
    assert config == kubeconfig(ACTIVE)
    assert config["clusters"][0]["cluster"]["server"] == "https://demo.eks"
    assert config["contexts"][0]["context"]["namespace"] == "payments"
    assert "--profile" not in config["users"][0]["user"]["exec"]["args"]


def test_client_kubeconfig_makes_tokens_with_the_profile_it_signs_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").write_text("[profile oncall]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text("[oncall]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    client = Client("https://api.example", profile="oncall")
    _stub_grant(client, ACTIVE, monkeypatch)
    exec_ = client.kubeconfig(ACTIVE["id"])["users"][0]["user"]["exec"]
    assert exec_["args"][:2] == ["--profile", "oncall"]
    assert exec_["env"] == [{"name": "AWS_PROFILE", "value": "oncall"}]


@pytest.mark.parametrize("status", ["pending_approval", "revoked", "expired"])
def test_no_kubeconfig_for_a_grant_that_gives_no_access(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    client = local_client("agent-oncall", state_dir)
    _stub_grant(client, ACTIVE | {"status": status, "connection": None}, monkeypatch)
    with pytest.raises(GrantNotActive) as refused:
        client.kubeconfig(ACTIVE["id"])
    assert (refused.value.grant_id, refused.value.status) == (ACTIVE["id"], status)
