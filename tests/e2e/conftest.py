"""Local mode as a subprocess on free ports, driven only through the CLI and plain HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

BIN = Path(sys.executable).parent / "eks-jit"


class Local:
    def __init__(self, state_dir: Path, process: subprocess.Popen[str]) -> None:
        self.state_dir = state_dir
        self.process = process
        self.state: dict[str, Any] = json.loads((state_dir / "local.json").read_text())

    def identity(self, name: str) -> dict[str, str]:
        return next(i for i in self.state["identities"] if i["name"] == name)

    def cli(self, *args: str, who: str | None = None) -> subprocess.CompletedProcess[str]:
        extra = ["--as", who] if who else []
        command = [str(BIN), *args, *extra, "--state-dir", str(self.state_dir), "-o", "json"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["aws_endpoint"],
            region_name=self.state["region"],
            aws_access_key_id="e2e",
            aws_secret_access_key="e2e",
        )

    def entries(self) -> list[str]:
        return self.aws("eks").list_access_entries(clusterName="demo")["accessEntries"]


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state_dir = tmp_path_factory.mktemp("eks-jit-local")
    log = (state_dir / "local-mode.log").open("w")  # a file, not a pipe nobody reads (it would fill)
    process = subprocess.Popen(
        [str(BIN), "local", "up", "--port", "0", "--state-dir", str(state_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not (state_dir / "local.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"local mode did not start: {(state_dir / 'local-mode.log').read_text()}")
        time.sleep(0.1)
    time.sleep(0.2)
    yield Local(state_dir, process)
    process.terminate()
    process.wait(timeout=30)
    log.close()
