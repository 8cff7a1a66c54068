"""Cold start of each Lambda function, as a ratio to ``import boto3`` measured the same way in the
same run (fresh interpreter per sample, median of N, the samples of every figure interleaved).

Two kinds of figure:

- **import**: ``import eks_jit.server.handlers.<name>`` (issue 16's targets).
- **cold request** (the api): import *and* the first request, a decided ``POST /v1/grants``
  (Cedar auto-approves it, the access entry is created and the revocation scheduled) handled
  by the handler in the fresh interpreter against local mode's emulated AWS in another process.
  That is what an agent waits for after idle or scale-out: an import moved to first use, or a
  boto3 client built on the first call, shows here and not in the import figure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "eks-jit"
HANDLERS = ("eks_jit.server.handlers.api", "eks_jit.server.handlers.revoke", "eks_jit.server.handlers.sweeper")
# issue 16: the api function is cold on nearly every incident (its import time is the agent's time
# to access); revoke and the sweeper import less and are held tighter.
TARGETS = {"api": 1.5, "revoke": 1.3, "sweeper": 1.3}
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
# One fresh interpreter: the invocation event exists before the clock starts (Lambda hands it in);
# then import the handler and handle the request, as the first invocation of a new environment
# does. The grant is revoked afterwards, off the clock, so every sample starts from the same state.
FIRST_REQUEST = """
import json, time, uuid
def event(method, path, body):
    identity = {"sourceIp": "127.0.0.1", "accountId": "123456789012", "userArn": AGENT}
    return {"resource": path, "path": path, "httpMethod": method, "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"Content-Type": ["application/json"]}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": path, "httpMethod": method, "path": path, "stage": "prod",
                               "requestId": str(uuid.uuid4()), "identity": identity},
            "body": json.dumps(body), "isBase64Encoded": False}
class Context:
    function_name, function_version, memory_limit_in_mb = "eks-jit-api", "$LATEST", 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:eks-jit-api"
    aws_request_id, log_group_name, log_stream_name = str(uuid.uuid4()), "/aws/lambda/eks-jit-api", "bench"
    def get_remaining_time_in_millis(self): return 30_000
request = event("POST", "/v1/grants", {"cluster": "demo", "namespace": "payments", "scope": "rollout-restart",
                                       "duration": "5m", "reason": "bench: cold request"})
t = time.perf_counter()
from eks_jit.server.handlers import api
answer = api.handler(request, Context())
elapsed = time.perf_counter() - t
grant = json.loads(answer["body"])
assert answer["statusCode"] == 201 and grant["status"] == "active", answer
api.handler(event("POST", f"/v1/grants/{grant['id']}/revoke", {"reason": "bench"}), Context())
print("COLD", elapsed)
""".replace("AGENT", repr(AGENT))


def _run(code: str, env: dict[str, str] | None = None) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    ).stdout
    return float(out.strip().splitlines()[-1].split()[-1])  # the handler logs to stdout before it


def import_probe(module: str) -> Callable[[], float]:
    return lambda: _run(PROBE.format(module=module))


def sample(module: str, runs: int) -> float:
    probe = import_probe(module)
    return statistics.median(probe() for _ in range(runs))


def interleaved(probes: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """Median per probe, one sample of each in turn, so machine noise hits all of them alike."""
    for probe in probes.values():
        probe()  # warm the page cache and the .pyc files
    times: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(runs):
        for name, probe in probes.items():
            times[name].append(probe())
    return {name: statistics.median(values) for name, values in times.items()}


class LocalAws:
    """``eks-jit local up`` in a child process: the emulated AWS (moto with the EKS access-entry
    emulation) and every resource the stack creates. Yields the api function's environment."""

    def __enter__(self) -> dict[str, str]:
        from eks_jit.local.resources import Resources

        self._tmp = tempfile.TemporaryDirectory(prefix="eks-jit-cold-")
        state_dir = Path(self._tmp.name)
        self._plane = subprocess.Popen(
            [str(BIN), "local", "up", "--port", "0", "--state-dir", str(state_dir)],
            env={**os.environ, "EKS_JIT_LOCAL_PROPAGATION_SECONDS": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not (state_dir / "local.json").exists():
            if self._plane.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("eks-jit local up did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        state = json.loads((state_dir / "local.json").read_text())
        resources = Resources(**state["resources"])
        function_env = resources.environment(
            Path(state["config"]), public_url=state["api_endpoint"], endpoint_url=state["aws_endpoint"]
        )
        # what the deployed function's environment holds besides eks-jit's own (infra/functions.py)
        return {
            "PATH": os.environ.get("PATH", ""),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": state["region"],
            "AWS_DEFAULT_REGION": state["region"],
            "POWERTOOLS_SERVICE_NAME": "eks-jit",
            "POWERTOOLS_METRICS_NAMESPACE": "EksJit",
            **function_env,
        }

    def __exit__(self, *_: Any) -> None:
        self._plane.terminate()
        try:
            self._plane.wait(timeout=30)
        except subprocess.TimeoutExpired:  # seen once after a full run; the figures are taken by then
            self._plane.kill()
            self._plane.wait()
        self._tmp.cleanup()


def measure(runs: int = 9) -> list[dict[str, object]]:
    with LocalAws() as env:
        probes = {module: import_probe(module) for module in ("boto3", *HANDLERS)}
        probes["cold request api"] = lambda: _run(FIRST_REQUEST, env)
        medians = interleaved(probes, runs)
    baseline = medians["boto3"]
    rows = []
    for module in HANDLERS:
        seconds = medians[module]
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
    cold = medians["cold request api"]
    rows.append(
        {
            "figure": "cold request api (import + first POST /v1/grants) / import boto3",
            "value": f"{cold / baseline:.2f}x ({cold * 1000:.0f} ms / {baseline * 1000:.0f} ms)",
            "target": "report",
            "pass": True,
        }
    )
    return rows


if __name__ == "__main__":
    for row in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 9):
        print(row)
