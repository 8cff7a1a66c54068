"""Files holding credentials or cluster access are written 0600, also over an existing file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from eks_jit.files import write_private
from eks_jit.local.stack import write_state


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_created_owner_only(tmp_path) -> None:
    path = tmp_path / "kubeconfig"
    write_private(path, "apiVersion: v1\n")
    assert mode(path) == 0o600 and path.read_text() == "apiVersion: v1\n"


def test_an_existing_world_readable_file_is_taken_to_0600_and_replaced(tmp_path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("a much longer stale content than what replaces it\n")
    path.chmod(0o666)
    write_private(path, "new\n")
    assert mode(path) == 0o600 and path.read_text() == "new\n"


def test_local_json_is_owner_only_even_when_an_earlier_one_was_not(tmp_path) -> None:
    (tmp_path / "local.json").write_text("{}")
    (tmp_path / "local.json").chmod(0o644)
    path = write_state(tmp_path, {"identities": [{"secret_access_key": "s3cret"}]})
    assert mode(path) == 0o600
    assert json.loads(path.read_text())["identities"][0]["secret_access_key"] == "s3cret"


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="O_NOFOLLOW is POSIX")
def test_a_symlink_planted_at_the_path_is_not_followed(tmp_path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "local.json").symlink_to(target)
    with pytest.raises(OSError):
        write_state(tmp_path, {"identities": []})
    assert target.read_text() == "keep"
