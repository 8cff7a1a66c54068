"""Cold-start import cost of each Lambda handler module, as a ratio to ``import boto3``
measured the same way in the same run (fresh interpreter per sample, median of N)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("eks_jit.server.handlers.api", "eks_jit.server.handlers.revoke", "eks_jit.server.handlers.sweeper")
# issue 16: the api function is cold on nearly every incident (its import time is the agent's time
# to access); revoke and the sweeper import less and are held tighter.
TARGETS = {"api": 1.5, "revoke": 1.3, "sweeper": 1.3}
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def sample(module: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True, cwd=ROOT
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def measure(runs: int = 9) -> list[dict[str, object]]:
    # interleave so that machine noise hits baseline and handlers alike
    sample("boto3", 1)  # warm the page cache and the .pyc files
    for module in HANDLERS:
        sample(module, 1)
    baseline = sample("boto3", runs)
    rows = []
    for module in HANDLERS:
        seconds = sample(module, runs)
        ratio = seconds / baseline
        target = TARGETS[module.rsplit(".", 1)[-1]]
        rows.append(
            {
                "figure": f"cold-start import {module.rsplit('.', 1)[-1]} / import boto3",
                "value": f"{ratio:.2f}x ({seconds * 1000:.0f} ms / {baseline * 1000:.0f} ms)",
                "target": f"<= {target}x",
                "pass": ratio <= target,
            }
        )
    return rows
