"""`make demo` prints the commands it runs so they can be pasted: each transcript line splits
(as a shell would) into the argv the demo ran, less the two flags it adds for itself."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from eks_jit import demo

ARGS = [
    ("request", "--cluster", "demo", "--namespace", "payments", "--scope", "edit", "--duration", "2m",
     "--reason", "payments-api needs a corrected feature flag"),
    ("revoke", "0b9c1d2e", "--reason", "it's fixed; \"really\" $HOME *"),
    ("status", "0b9c1d2e"),
]  # fmt: skip


@pytest.mark.parametrize("args", ARGS)
def test_each_transcript_line_splits_into_the_argv_the_demo_runs(args: tuple[str, ...], tmp_path: Path) -> None:
    line, argv = demo.command(args, "agent-oncall", tmp_path / "state dir")
    typed = shlex.split(line)
    assert typed == ["eks-jit", *args, "--as", "agent-oncall"]
    assert argv == [str(demo.BIN), *typed[1:], "--state-dir", str(tmp_path / "state dir"), "-o", "json"]


def test_the_demo_prints_the_line_of_the_command_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[list[str]] = []

    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout='{"status": "active"}', stderr="")

    monkeypatch.setattr(demo.subprocess, "run", run)
    story = demo.Demo(tmp_path)
    for args in ARGS:
        assert story.cli(*args, who="approver-alice") == {"status": "active"}
    printed = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in capsys.readouterr().out.splitlines()]
    lines = [line.removeprefix("$ ") for line in printed if line.startswith("$ ")]
    assert len(lines) == len(ran) == len(ARGS)
    for line, argv in zip(lines, ran, strict=True):
        assert [str(demo.BIN), *shlex.split(line)[1:], "--state-dir", str(tmp_path), "-o", "json"] == argv


def test_the_aws_line_runs_as_printed_in_local_modes_region() -> None:
    state = {"region": "us-east-1", "aws_endpoint": "http://127.0.0.1:40002"}
    line = demo.aws_cli_line(state, "eks", "describe-access-entry", "--principal-arn", "arn:aws:iam::1:role/a b")
    words = shlex.split(line)
    assert words[:2] == ["AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"]
    assert words[2:7] == ["aws", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:40002"]
    assert words[-1] == "arn:aws:iam::1:role/a b"
