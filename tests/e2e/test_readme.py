"""The README's local-mode quick start, run as written by bash on a shell like a fresh clone's:
no virtualenv active (so `eks-jit` is not on PATH until the block activates it), no AWS
credentials or config, and the Makefile's AWS_DEFAULT_REGION (eu-west-1, not local mode's).

The block is the ```sh fence after the README's `<!-- quickstart` marker. It runs in a folder
that looks like the clone (every top-level entry of the repo linked in) but has its own
`.eks-jit`, so it starts a local mode of its own; EKS_JIT_LOCAL_PORT=0 puts that on a free port
(the block's `eks-jit local up` would otherwise take 8765, which a developer's may hold)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- quickstart"
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
pytestmark = pytest.mark.e2e


def quickstart(readme: str) -> str:
    """The fenced ```sh block right after the marker (exactly one marker)."""
    assert readme.count(MARKER) == 1, f"README.md should mark one quick-start block with {MARKER}"
    after = readme.split(MARKER, 1)[1]
    found = re.match(r"[^\n]*-->\n```sh\n(.*?)\n```\n", after, re.DOTALL)
    assert found, "the marker must be followed by a ```sh block"
    return found.group(1)


def test_the_quick_start_block_is_found_where_the_readme_marks_it() -> None:
    block = quickstart("intro\n<!-- quickstart: x -->\n```sh\necho one\necho two\n```\nafter\n")
    assert block == "echo one\necho two"
    with pytest.raises(AssertionError):
        quickstart("```sh\necho unmarked\n```\n")


def clone_like(folder: Path) -> Path:
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".eks-jit"):
            (folder / entry.name).symlink_to(entry)
    return folder


def fresh_shell(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # no .venv/bin: the block must put eks-jit there
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_DEFAULT_REGION": "eu-west-1",  # what the Makefile exports
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "EKS_JIT_LOCAL_PORT": "0",
    }


def test_the_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    block = quickstart((ROOT / "README.md").read_text())
    (tmp_path / "clone").mkdir()
    clone = clone_like(tmp_path / "clone")
    env = fresh_shell(tmp_path)
    assert subprocess.run(["bash", "-c", "command -v eks-jit"], env=env, check=False).returncode != 0
    # its own session: whatever the block leaves running (local mode, if it fails halfway) is stopped below
    shell = subprocess.Popen(
        ["bash", "-e", "-c", block], cwd=clone, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = shell.communicate(timeout=300)
        assert shell.returncode == 0, out
        # the block's commands did what its comments say
        assert "eks-jit local mode is up" in out
        assert re.search(r"^status +active$", out, re.MULTILINE), out
        assert re.search(r"^status +pending_approval$", out, re.MULTILINE), out
        assert f"'{AGENT}'" in out  # the access entry EKS holds, printed by boto3
        assert re.search(r"^approver-alice +\S+ .*/v1/approval-links/\S+$", out, re.MULTILINE), out
        assert "grant_id,requester,cluster,namespaces,scope,reason,status" in out  # the auditor's CSV
        # and its last line stopped local mode: it removes its local.json on the way out
        deadline = time.monotonic() + 30
        while (clone / ".eks-jit" / "local.json").exists():
            assert time.monotonic() < deadline, "local mode kept running after the block"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGTERM)
