"""Cost on paper (issue 16): the AWS units a grant lifecycle consumes, measured under moto through
the real handlers, times us-east-1 on-demand list prices -> dollars per 1,000 grants, the fixed
monthly cost, and an always-on gateway beside it. Prints the tables of docs/performance.md,
"Cost on paper". Not part of ``bench/run``: it has no target, and its prices are typed in here.

What is measured here (moto, in-process, the handlers of ``lambdas/handlers``):
  - every AWS call a function makes, attributed to the function that made it (a thread-local set
    around each handler; calls of the harness itself are not counted);
  - DynamoDB request units of each call, from the sizes of the items it read or wrote (DynamoDB's
    item-size rules; the item before and after each write is read back outside the count), with
    the GSI writes of the two ALL-projection indexes;
  - log bytes each function writes (powertools' JSON lines and the EMF metric documents);
  - Step Functions states entered, from the execution's history;
  - each function's own time (its wall time minus the time inside AWS calls).
What is estimated (each named where it is used, ``ASSUMED`` below): the time an AWS call takes
on AWS, Lambda's platform log lines, API Gateway's access-log line, the approval workflow's log
events, KMS requests behind SNS, and the revoke function's wait for ``expires_at`` (60 s on
average: the schedule fires 119-1 s early, docs/performance.md "Revocation lag").

``bench/aws_calls.py``'s counts (the logic layer, no API) are printed beside these: the API path
adds the idempotency record of the client's ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EksJit")

from bench.aws_calls import count_lifecycle  # noqa: E402

MINUTES_PER_MONTH = 730 * 60  # AWS prices a month as 730 hours
MB_PER_FUNCTION = {"api": 512, "revoke": 256, "sweeper": 256, "notify": 256, "workflow": 256}  # infra/


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str  # where the figure was read; "not verified here" when no stored page showed it


AWS, THIRD = "aws.amazon.com", "third-party page quoting us-east-1"
PRICES = {
    "ddb_wru": Price(
        0.625 / 1e6, "write request unit", f"{THIRD}: airbyte.com/data-engineering-resources/dynamodb-pricing"
    ),
    "ddb_rru": Price(
        0.125 / 1e6, "read request unit", f"{THIRD}: airbyte.com/data-engineering-resources/dynamodb-pricing"
    ),
    "lambda_request": Price(0.20 / 1e6, "invocation", f"{THIRD}: git.mcrn.ar lambda-13-cost.md; cloudchipr.com"),
    "lambda_gbs_arm": Price(0.0000133334, "GB-second (arm64)", f"{THIRD}: cloudchipr.com/blog/aws-lambda-pricing"),
    "apigw_rest": Price(
        3.50 / 1e6, "REST API request", "docs.aws.amazon.com whitepaper 'Best practices ... private APIs', Table 4"
    ),
    "apigw_http": Price(
        1.00 / 1e6, "HTTP API request", "docs.aws.amazon.com whitepaper 'Best practices ... private APIs', Table 4"
    ),
    "sfn_transition": Price(0.025 / 1000, "state transition (Standard)", f"{AWS}/step-functions/pricing/"),
    "scheduler": Price(
        1.00 / 1e6, "Scheduler invocation (14 M/month free)", f"{THIRD}: cloudburn.io eventbridge pricing"
    ),
    "sns_publish": Price(0.50 / 1e6, "SNS publish", f"{THIRD}: factualminds.com sns pricing"),
    "sns_email": Price(2.00 / 1e5, "SNS email delivery", f"{THIRD}: factualminds.com sns pricing"),
    "kms_request": Price(
        0.03 / 1e4, "KMS request", f"{THIRD}: wring.co kms pricing (20,000/month free: {AWS}/kms/pricing/)"
    ),
    "kms_key": Price(1.00, "customer managed key-month", f"{AWS}/kms/pricing/"),
    "logs_ingest": Price(0.50, "GB ingested (Standard class)", f"{THIRD}: c3x.dev cloudwatch-logs-cost-optimization"),
    "logs_store": Price(0.03, "GB-month stored", f"{THIRD}: c3x.dev cloudwatch-logs-cost-optimization"),
    "xray_trace": Price(5.00 / 1e6, "trace recorded (100,000/month free)", f"{AWS}/de/xray/pricing/"),
    "secret": Price(0.40, "secret-month", f"{THIRD}: hivebook.wiki aws-secrets-manager"),
    "secret_call": Price(0.05 / 1e4, "Secrets Manager API call", f"{THIRD}: hivebook.wiki aws-secrets-manager"),
    "cw_metric": Price(0.30, "custom metric-month", f"{THIRD}: cal53.calculator.city cloudwatch custom metrics"),
    "cw_alarm": Price(0.10, "standard alarm-month (10 free per account)", "not verified here"),
    "cw_dashboard": Price(3.00, "dashboard-month (3 free per account)", "not verified here"),
    "ddb_storage": Price(0.25, "GB-month stored", "not verified here"),
    "ddb_pitr": Price(0.20, "GB-month of PITR", "not verified here"),
    "fargate_vcpu_x86": Price(0.04048, "vCPU-hour (Linux/x86)", f"{THIRD}: vantage.sh/blog/fargate-pricing"),
    "fargate_gb_x86": Price(0.004445, "GB-hour (Linux/x86)", f"{THIRD}: vantage.sh/blog/fargate-pricing"),
    "fargate_vcpu_arm": Price(0.03238, "vCPU-hour (Linux/ARM)", f"{THIRD}: vantage.sh/blog/fargate-pricing"),
    "fargate_gb_arm": Price(0.00356, "GB-hour (Linux/ARM)", f"{THIRD}: vantage.sh/blog/fargate-pricing"),
    "alb_hour": Price(
        0.0225, "ALB-hour", "api-evangelist transcription of aws.amazon.com/elasticloadbalancing/pricing/"
    ),
    "alb_lcu": Price(0.008, "LCU-hour", "api-evangelist transcription of aws.amazon.com/elasticloadbalancing/pricing/"),
    "ipv4": Price(0.005, "public IPv4 address-hour", "not verified here"),
}

# Estimates, not measurements: say them where they are used.
LATENCY_MS = {  # milliseconds an AWS call takes from a Lambda function in the same region (others: 50)
    "dynamodb": 8,
    "eks": 150,
    "scheduler": 40,
    "sns": 25,
    "stepfunctions": 40,
    "secretsmanager": 25,
    "logs": 80,
}
ASSUMED: dict[str, float] = {
    "revoke_wait_s": 60.0,  # mean wait for expires_at after the schedule fires (fires 119..1 s early)
    "platform_log_bytes": 330,  # START, END and REPORT lines Lambda writes per invocation
    "access_log_bytes": 650,  # one API Gateway access-log line (infra/constructs/api.py ACCESS_LOG, filled)
    "sfn_log_bytes_per_event": 350,  # a Step Functions history event as logged, without execution data
    "kms_per_publish": 1,  # SNS with a customer managed key: a data key per publish (no reuse assumed)
    "kms_per_delivery": 1,  # and a decrypt per delivery
}


# -- DynamoDB request units from item sizes -------------------------------------------------------


def value_size(value: dict[str, Any]) -> int:
    """DynamoDB's item-size rules (developer guide, "Item sizes and formats"), wire format."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum((len(s) + 1) // 2 + 1 for s in v)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in v.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + value_size(v) for k, v in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


INDEX_KEYS = (("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk"))  # lambdas/adapters/table.py, projection ALL


def index_writes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """Writes DynamoDB makes to the GSIs for one item change: a put, a delete, or both when the
    index key changes (standard writes; we assume a transaction does not double them)."""
    units = 0
    for keys in INDEX_KEYS:
        old = tuple((before or {}).get(k) for k in keys) if before and all(k in before for k in keys) else None
        new = tuple((after or {}).get(k) for k in keys) if after and all(k in after for k in keys) else None
        if new is not None and old is not None and new == old:
            units += write_units(item_size(after)) if after != before else 0
        else:
            units += write_units(item_size(before)) if old is not None else 0
            units += write_units(item_size(after)) if new is not None else 0
    return units


# -- the recorder ---------------------------------------------------------------------------------


@dataclass
class Usage:
    """What one phase of a lifecycle consumed, per function (``platform``: moto's own threads)."""

    invocations: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)  # wall time in the handler (Counter of floats)
    aws_seconds: Counter[str] = field(default_factory=Counter)  # of which inside AWS calls
    calls: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    wru: float = 0.0
    rru: float = 0.0
    log_bytes: Counter[str] = field(default_factory=Counter)
    api_requests: int = 0
    sfn_states: int = 0
    sfn_events: int = 0

    def all_calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for fn, counted in self.calls.items():
            if fn != "platform":
                total.update(counted)
        return total

    def __add__(self, other: Usage) -> Usage:
        out = Usage()
        for mine in (self, other):
            out.invocations.update(mine.invocations)
            out.seconds.update(mine.seconds)
            out.aws_seconds.update(mine.aws_seconds)
            for fn, counted in mine.calls.items():
                out.calls[fn].update(counted)
            out.wru += mine.wru
            out.rru += mine.rru
            out.log_bytes.update(mine.log_bytes)
            out.api_requests += mine.api_requests
            out.sfn_states += mine.sfn_states
            out.sfn_events += mine.sfn_events
        return out

    def scaled(self, factor: float) -> Usage:
        out = Usage()
        out.invocations = Counter({k: v * factor for k, v in self.invocations.items()})  # type: ignore[misc]
        out.seconds = Counter({k: v * factor for k, v in self.seconds.items()})  # type: ignore[misc]
        out.aws_seconds = Counter({k: v * factor for k, v in self.aws_seconds.items()})  # type: ignore[misc]
        for fn, counted in self.calls.items():
            out.calls[fn] = Counter({k: v * factor for k, v in counted.items()})  # type: ignore[misc]
        out.wru, out.rru = self.wru * factor, self.rru * factor
        out.log_bytes = Counter({k: v * factor for k, v in self.log_bytes.items()})  # type: ignore[misc]
        out.api_requests = self.api_requests * factor  # type: ignore[assignment]
        out.sfn_states, out.sfn_events = self.sfn_states * factor, self.sfn_events * factor  # type: ignore[assignment]
        return out

    def minus(self, other: Usage) -> Usage:
        out = self + other.scaled(-1)
        for counter in (out.invocations, *out.calls.values()):
            for key in [k for k, v in counter.items() if abs(v) < 1e-9]:
                del counter[key]
        return out


class Recorder:
    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.usage = Usage()
        self.main = threading.get_ident()
        self.original: Callable[..., Any] | None = None

    def function(self) -> str | None:
        return getattr(self.local, "function", None)

    @contextmanager
    def phase(self) -> Iterator[Usage]:
        with self.lock:
            self.usage = Usage()
        yield self.usage

    def run_handler(self, name: str, handler: Callable[[Any, Any], Any], event: Any, context: Any) -> Any:
        self.local.function, self.local.aws = name, 0.0
        started = time.perf_counter()
        try:
            return handler(event, context)
        finally:
            elapsed = time.perf_counter() - started
            with self.lock:
                self.usage.invocations[name] += 1
                self.usage.seconds[name] += elapsed  # type: ignore[assignment]
                self.usage.aws_seconds[name] += self.local.aws  # type: ignore[assignment]
            self.local.function = None

    def read_item(self, client: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        assert self.original is not None
        answer = self.original(client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
        return answer.get("Item")

    def api_call(self, client: Any, operation: str, params: dict[str, Any]) -> Any:
        assert self.original is not None
        fn = self.function()
        if fn is None and threading.get_ident() == self.main:
            return self.original(client, operation, params)  # the harness looking: not counted
        service = client.meta.service_model.service_name
        before = self._before(client, operation, params) if fn and service == "dynamodb" else None
        started = time.perf_counter()
        answer: Any = None
        try:
            answer = self.original(client, operation, params)
            return answer
        finally:
            elapsed = time.perf_counter() - started
            with self.lock:
                self.usage.calls[fn or "platform"][f"{service}:{operation}"] += 1
            if fn:
                self.local.aws += elapsed
            if fn and service == "dynamodb":
                self._units(client, operation, params, answer, before)

    def _keys(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        def key_of(item: dict[str, Any]) -> dict[str, Any]:
            return {k: item[k] for k in ("pk", "sk")}

        if operation == "PutItem":
            return [(params["TableName"], key_of(params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"])]
        if operation == "TransactWriteItems":
            keys = []
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                keys.append((body["TableName"], key_of(body["Item"]) if kind == "Put" else body["Key"]))
            return keys
        return []

    def _before(self, client: Any, operation: str, params: dict[str, Any]) -> list[dict[str, Any] | None]:
        return [self.read_item(client, t, k) for t, k in self._keys(operation, params)]

    def _units(self, client: Any, operation: str, params: dict[str, Any], answer: Any, before: Any) -> None:
        wru = rru = 0.0
        if operation == "GetItem":
            rru = read_units(item_size((answer or {}).get("Item")), params.get("ConsistentRead", False))
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                found = {
                    json.dumps({k: i[k] for k in ("pk", "sk")}, sort_keys=True): i
                    for i in ((answer or {}).get("Responses", {}).get(table, []))
                }
                for key in request["Keys"]:
                    item = found.get(json.dumps(key, sort_keys=True))
                    rru += read_units(item_size(item), request.get("ConsistentRead", False))
        elif operation == "Query":
            items = (answer or {}).get("Items", [])
            size = sum(item_size(i) for i in items)
            scanned = (answer or {}).get("ScannedCount", len(items))
            if scanned > len(items) and items:  # filtered out: charged too, at the average size
                size = size * scanned // len(items)
            consistent = params.get("ConsistentRead", False) and "IndexName" not in params
            rru = read_units(size, consistent)
        elif before is not None:
            after = [self.read_item(client, t, k) for t, k in self._keys(operation, params)]
            factor = 2 if operation == "TransactWriteItems" else 1
            for old, new in zip(before, after, strict=True):
                wru += factor * write_units(max(item_size(old), item_size(new))) + index_writes(old, new)
        with self.lock:
            self.usage.wru += wru
            self.usage.rru += rru

    def log_write(self, text: str) -> None:
        fn = self.function()
        if fn is not None:
            with self.lock:
                self.usage.log_bytes[fn] += len(text.encode())


class CountingStream:
    """What a function writes to stdout is what CloudWatch Logs ingests: count it, print nothing."""

    def __init__(self, recorder: Recorder, real: Any) -> None:
        self.recorder, self.real = recorder, real

    def write(self, text: str) -> int:
        if self.recorder.function() is None:
            return self.real.write(text)  # type: ignore[no-any-return]
        self.recorder.log_write(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()


# -- the lifecycles -------------------------------------------------------------------------------


@dataclass
class Measured:
    auto: dict[str, Usage]
    manual: dict[str, Usage]
    poll: Usage  # one GET /v1/grants/{id}: what an agent's `eks-jit wait` costs per second of waiting
    sweep_idle: Usage  # a sweeper minute with nothing managed and nothing in the look-back
    sweep_one: Usage  # one managed principal, one closed grant in the look-back
    sweep_two: Usage  # one managed principal, two closed grants in the look-back
    stored_bytes_per_grant: float  # GRANT# and SIDE# items: the grant, its events, its side records
    grant_item_bytes: float  # the grant item alone: what the sweeper's look-back Query returns per grant
    lookback_minutes: float
    logic_counts: dict[str, Counter[str]]


def measure() -> Measured:
    """Two runs of the same story in two fresh emulated worlds: the first warms every code path
    (imports, Cedar, caches: a cold start is per container, not per grant), the second is kept."""
    import botocore.client

    import tests.conftest  # noqa: F401  (registers the EKS emulation and the handlers on moto's Lambda)
    from eks_jit.emulation import lambda_dispatch
    from eks_jit.server.observability import logger

    recorder = Recorder()
    recorder.original = botocore.client.BaseClient._make_api_call
    handlers = dict(lambda_dispatch._HANDLERS)
    for name, handler in handlers.items():
        short = name.removeprefix("eks-jit-")
        lambda_dispatch._HANDLERS[name] = _counted(recorder, short, handler)
    log_handler = logger.registered_handler
    real_stdout, real_stream = sys.stdout, log_handler.stream  # type: ignore[attr-defined]
    counting = CountingStream(recorder, real_stdout)
    botocore.client.BaseClient._make_api_call = (  # type: ignore[method-assign]
        lambda self, op, params: recorder.api_call(self, op, params)
    )
    sys.stdout = counting  # type: ignore[assignment]
    log_handler.setStream(counting)  # type: ignore[attr-defined]
    try:
        _story(recorder, handlers)
        measured = _story(recorder, handlers)
    finally:
        botocore.client.BaseClient._make_api_call = recorder.original  # type: ignore[method-assign]
        sys.stdout = real_stdout
        log_handler.setStream(real_stream)  # type: ignore[attr-defined]
        lambda_dispatch._HANDLERS.update(handlers)
    measured.logic_counts = count_lifecycle()  # bench/aws_calls.py: the logic layer alone
    return measured


def _counted(recorder: Recorder, short: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda event, context: recorder.run_handler(short, handler, event, context)


def _story(recorder: Recorder, handlers: dict[str, Any]) -> Measured:
    import boto3
    from moto import mock_aws

    from eks_jit.emulation import lambda_dispatch
    from eks_jit.local.resources import create_resources
    from eks_jit.server import bootstrap
    from eks_jit.server.config import load_config
    from eks_jit.server.logic.approvals import link_for
    from tests.conftest import GROUP, MOTO_CONFIG, SLACK_SIGNING_SECRET, TABLE, make_deps, quiesce
    from tests.support import BOB, EXAMPLE_CONFIG, ONCALL_SESSION, REGION, FakeClock, api_event

    def invoke(short: str, event: Any) -> Any:
        context = lambda_dispatch.Context(f"eks-jit-{short}")
        return recorder.run_handler(short, handlers[f"eks-jit-{short}"], event, context)

    def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with recorder.lock:
            recorder.usage.api_requests += 1
        return invoke("api", api_event(method, path, **kwargs))  # type: ignore[no-any-return]

    def settle(check: Callable[[], bool] = lambda: True, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while lambda_dispatch.in_flight() or not check():
            if time.monotonic() > deadline:
                raise RuntimeError("the emulated world did not settle")
            time.sleep(0.02)

    catalog, _ = load_config(EXAMPLE_CONFIG)
    with mock_aws(config=MOTO_CONFIG):
        resources = create_resources(
            catalog, region=REGION, table=TABLE, schedule_group=GROUP, slack_signing_secret=SLACK_SIGNING_SECRET
        )
        clock = FakeClock()
        deps = make_deps(resources, clock)
        bootstrap.use(deps)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)

        def request(body: dict[str, Any]) -> dict[str, Any]:
            headers = {"Idempotency-Key": str(uuid.uuid4())}  # what eks_jit.client sends
            response = call("POST", "/v1/grants", body=body, caller=ONCALL_SESSION, headers=headers)
            assert response["statusCode"] == 201, response
            return json.loads(response["body"])  # type: ignore[no-any-return]

        def expire(grant: dict[str, Any], duration: timedelta) -> None:
            clock.advance(duration)  # the schedule fired at expires_at; the wait before it is ASSUMED
            answer = invoke("revoke", {"grant_id": grant["id"]})
            assert answer["status"] == "expired", answer

        def sweep_after_close() -> tuple[Usage, Usage]:
            clock.advance(deps.timing.audit_delay + timedelta(minutes=1))
            with recorder.phase() as first:  # writes the closed grant's activity report
                invoke("sweeper", {})
            with recorder.phase() as steady:
                invoke("sweeper", {})
            return first.minus(steady), steady

        try:
            with recorder.phase() as sweep_idle:
                invoke("sweeper", {})

            auto: dict[str, Usage] = {}
            body = {
                "cluster": "prod-eks",
                "namespace": "payments",
                "scope": "rollout-restart",
                "duration": "15m",
                "reason": "readiness probe failing",
            }
            with recorder.phase() as auto["request"]:
                grant = request(body)
            assert grant["status"] == "active", grant
            with recorder.phase() as poll:
                assert call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL_SESSION)["statusCode"] == 200
            with recorder.phase() as auto["expiry"]:
                expire(grant, timedelta(minutes=15))
            auto["report"], sweep_one = sweep_after_close()

            manual: dict[str, Usage] = {}
            body = {
                "cluster": "prod-eks",
                "namespace": "payments",
                "scope": "edit",
                "duration": "30m",
                "reason": "fix a ConfigMap",
            }
            with recorder.phase() as manual["request"]:
                grant = request(body)
                assert grant["status"] == "pending_approval", grant
                settle(lambda: deps.store.get_side(grant["id"], "task_token") is not None)
            arn = resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{grant['id']}"
            link = link_for(deps, deps.store.get(grant["id"]), BOB)
            path = link.removeprefix("https://eks-jit.example.com/prod")
            with recorder.phase() as manual["approval"]:
                assert call("GET", path, caller=None)["statusCode"] == 200  # the confirm page
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                decided = call("POST", path, raw_body="decision=approve", headers=form, caller=None)
                assert decided["statusCode"] == 200, decided
                settle(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")
            assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
            history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            manual["approval"].sfn_states = sum(e["type"].endswith("StateEntered") for e in history)
            manual["approval"].sfn_events = len(history)
            with recorder.phase() as manual["expiry"]:
                expire(grant, timedelta(minutes=30))
            manual["report"], sweep_two = sweep_after_close()

            items = ddb.scan(TableName=TABLE)["Items"]
            stored = [i for i in items if i["pk"]["S"].startswith(("GRANT#", "SIDE#"))]
            grants = [i for i in items if i["pk"]["S"].startswith("GRANT#") and i["sk"]["S"] == "GRANT"]
        finally:
            settle()
            quiesce(resources)
            bootstrap.use(None)
    lookback = deps.timing.audit_lookback + catalog.settings.max_duration
    return Measured(
        auto=auto,
        manual=manual,
        poll=poll,
        sweep_idle=sweep_idle,
        sweep_one=sweep_one,
        sweep_two=sweep_two,
        stored_bytes_per_grant=sum(item_size(i) for i in stored) / len(grants),
        grant_item_bytes=sum(item_size(i) for i in grants) / len(grants),
        lookback_minutes=lookback.total_seconds() / 60,
        logic_counts={},
    )


# -- pricing --------------------------------------------------------------------------------------


def billed_seconds(usage: Usage, fn: str) -> float:
    """On AWS: the function's own time (measured here) plus its AWS calls at ASSUMED latencies."""
    own = usage.seconds[fn] - usage.aws_seconds[fn]
    latency = sum(LATENCY_MS.get(op.split(":")[0], 50) * n for op, n in usage.calls[fn].items()) / 1000
    return max(0.0, own + latency)


@dataclass
class Line:
    item: str
    units: float
    unit: str
    price: str  # key of PRICES
    note: str = ""

    @property
    def usd(self) -> float:
        return self.units * PRICES[self.price].usd


def lines_for(
    usage: Usage, *, revokes: int = 0, executions: int = 0, emails: int = 0, secret_reads: float | None = None
) -> list[Line]:
    """The priced lines of one usage. ``secret_reads`` replaces the measured count (the functions
    share one process and one secrets cache here; on AWS each has its own)."""
    calls = usage.all_calls()
    invocations = sum(usage.invocations.values())
    log_bytes = sum(usage.log_bytes.values()) + invocations * ASSUMED["platform_log_bytes"]
    log_bytes += (
        usage.api_requests * ASSUMED["access_log_bytes"] + usage.sfn_events * ASSUMED["sfn_log_bytes_per_event"]
    )
    durations, gbs = [], 0.0
    for fn in sorted({*usage.invocations, *usage.seconds}):
        seconds = billed_seconds(usage, fn) + (ASSUMED["revoke_wait_s"] * revokes if fn == "revoke" else 0.0)
        gbs += seconds * MB_PER_FUNCTION[fn] / 1024
        durations.append(f"{fn} {seconds:.3g} s x {MB_PER_FUNCTION[fn]} MB")
    publishes, schedules = calls["sns:Publish"], calls["scheduler:CreateSchedule"]
    secrets = calls["secretsmanager:GetSecretValue"] if secret_reads is None else secret_reads
    ddb_calls = sum(v for k, v in calls.items() if k.startswith("dynamodb:"))
    kms = publishes * ASSUMED["kms_per_publish"] + emails * ASSUMED["kms_per_delivery"]
    own = ", ".join(f"{k} {v:,.0f} B" for k, v in sorted(usage.log_bytes.items()) if v)
    own_lines = f"the functions' own lines {own}; the rest estimated" if own else "estimated (platform, access log)"
    candidates = [
        Line("API Gateway REST requests", usage.api_requests, "requests", "apigw_rest"),
        Line(
            "Lambda invocations",
            invocations,
            "invocations",
            "lambda_request",
            ", ".join(f"{k} {v:g}" for k, v in sorted(usage.invocations.items())),
        ),
        Line("Lambda duration, arm64", gbs, "GB-s", "lambda_gbs_arm", "; ".join(durations)),
        Line("DynamoDB writes", usage.wru, "WRU", "ddb_wru", f"{ddb_calls:g} DynamoDB calls"),
        Line("DynamoDB reads", usage.rru, "RRU", "ddb_rru"),
        Line("Scheduler invocations", schedules, "invocations", "scheduler", "one per grant; 14 M/month free"),
        Line("Step Functions transitions", usage.sfn_states, "transitions", "sfn_transition", "states entered"),
        Line("X-Ray traces of the workflow", executions, "traces", "xray_trace", "100,000/month free"),
        Line("SNS publishes", publishes, "publishes", "sns_publish"),
        Line("SNS email deliveries", emails, "emails", "sns_email", "one per notified approver"),
        Line(
            "KMS requests behind SNS (estimate)",
            kms,
            "requests",
            "kms_request",
            "a data key per publish, a decrypt per delivery; 20,000/month free",
        ),
        Line("Secrets Manager GetSecretValue", secrets, "calls", "secret_call", "5-minute cache: an upper bound"),
        Line(
            "CloudWatch Logs ingested",
            log_bytes / 1e9,
            "GB",
            "logs_ingest",
            f"{log_bytes:,.0f} B: {own_lines}",
        ),
    ]
    return [line for line in candidates if line.units > 1e-12]


def total(lines: list[Line]) -> float:
    return sum(line.usd for line in lines)


def lookback_per_minute(m: Measured) -> Usage:
    """One closed grant in the sweeper's look-back, for one minute: the measured difference of a
    sweep with two and with one (its activity-report GetItem), plus its share of the look-back
    Query, which that difference hides when both answers round up to the same 4 KB."""
    per_minute = m.sweep_two.minus(m.sweep_one)
    per_minute.rru += m.grant_item_bytes / 4096 * 0.5  # Query on gsi1: eventually consistent
    return per_minute


def lifecycle_lines(m: Measured, which: str) -> list[Line]:
    phases = m.auto if which == "auto" else m.manual
    usage = sum(phases.values(), Usage())
    manual = which == "manual"
    lines = lines_for(usage, revokes=1, executions=int(manual), emails=2 * manual, secret_reads=2 if manual else None)
    per_minute = lookback_per_minute(m)
    lookback = per_minute.scaled(m.lookback_minutes)
    lines += [
        Line(
            "sweeper look-back, DynamoDB reads",
            lookback.rru,
            "RRU",
            "ddb_rru",
            f"{per_minute.rru:.3g} RRU a minute for {m.lookback_minutes:,.0f} minutes",
        ),
        Line(
            "sweeper look-back, Lambda duration",
            billed_seconds(lookback, "sweeper") * 256 / 1024,
            "GB-s",
            "lambda_gbs_arm",
            f"{billed_seconds(per_minute, 'sweeper') * 1000:.2g} ms a minute",
        ),
    ]
    return lines


def per_principal_minute(m: Measured) -> Usage:
    """What one managed principal adds to a sweeper run: (one principal + one closed grant) minus
    nothing, minus the closed grant."""
    return m.sweep_one.minus(m.sweep_idle).minus(m.sweep_two.minus(m.sweep_one))


def fixed_lines(m: Measured, principals: int) -> list[Line]:
    sweeps = m.sweep_idle.scaled(MINUTES_PER_MONTH) + per_principal_minute(m).scaled(MINUTES_PER_MONTH * principals)
    out = lines_for(sweeps)
    for line in out:
        line.item = f"sweeper: {line.item}"
    out += [
        Line("KMS customer managed keys", 4, "keys", "kms_key", "3 topics and the workflow log; rotation adds more"),
        Line("Secrets Manager secret", 1, "secrets", "secret", "the approval-link key; +1 with Slack"),
        Line("CloudWatch custom metrics (EMF)", 8, "metrics", "cw_metric", "8 metric names, dimension service"),
        Line("CloudWatch alarms", 10, "alarms", "cw_alarm", "infra/constructs/monitoring.py"),
        Line("CloudWatch dashboard", 1, "dashboards", "cw_dashboard"),
    ]
    return out


def gateway_lines(replicas: int, arm: bool, alb: bool) -> list[Line]:
    arch = "arm" if arm else "x86"
    hours = 730 * replicas
    out = [
        Line(f"Fargate 0.5 vCPU, Linux/{arch}", 0.5 * hours, "vCPU-h", f"fargate_vcpu_{arch}", f"{replicas} x 730 h"),
        Line(f"Fargate 1 GiB, Linux/{arch}", 1 * hours, "GB-h", f"fargate_gb_{arch}", f"{replicas} x 730 h"),
    ]
    if alb:
        out += [
            Line("Application Load Balancer", 730, "hours", "alb_hour"),
            Line("ALB capacity", 730, "LCU-h", "alb_lcu", "1 LCU all month: light traffic uses less"),
            Line("public IPv4 of an internet-facing ALB", 2 * 730, "address-h", "ipv4", "2 AZs"),
        ]
    return out


GATEWAY_MODE = {  # issue 17 preview: every kubectl request through a Lambda function URL (ESTIMATE)
    "requests": 30,  # per grant: kubectl discovery on a cold cache (~20) + the commands (rollout restart: GET, PATCH)
    "ms": 150,  # per request: verify the token (STS), check the grant, forward to the API server, mask
    "mb": 512,
    "watch_s": 60,  # one `kubectl rollout status` WATCH held open through a streaming function URL
    "log_bytes": 1000,  # one record per request
}


def gateway_mode_lines() -> list[Line]:
    g = GATEWAY_MODE
    seconds = g["requests"] * g["ms"] / 1000 + g["watch_s"]
    return [
        Line(
            "Lambda invocations (function URL)",
            g["requests"],
            "invocations",
            "lambda_request",
            f"{g['requests']} kubectl requests",
        ),
        Line(
            "Lambda duration, arm64",
            seconds * g["mb"] / 1024,
            "GB-s",
            "lambda_gbs_arm",
            f"{g['requests']} x {g['ms']} ms + a {g['watch_s']} s watch, {g['mb']} MB",
        ),
        Line(
            "DynamoDB reads (grant check per request)", g["requests"] * 0.5, "RRU", "ddb_rru", "eventually consistent"
        ),
        Line("CloudWatch Logs (a record per request)", g["requests"] * g["log_bytes"] / 1e9, "GB", "logs_ingest"),
    ]


def table(lines: list[Line], scale: float, unit_label: str) -> str:
    rows = ["| item | units | x price | = $ |", "|---|---:|---|---:|"]
    for line in lines:
        price = PRICES[line.price]
        note = f" ({line.note})" if line.note else ""
        rows.append(
            f"| {line.item}{note} | {line.units * scale:,.6g} {line.unit} | ${price.usd:.6g} / {price.unit} | "
            f"{line.usd * scale:,.4f} |"
        )
    rows.append(f"| **total {unit_label}** | | | **{total(lines) * scale:,.2f}** |")
    return "\n".join(rows)


def calls_text(usage: Usage) -> str:
    counted = usage.all_calls()
    return f"{sum(counted.values()):g}: " + ", ".join(f"{k} {v:g}" for k, v in sorted(counted.items()))


def report(m: Measured, principals: int = 10) -> str:
    out = [
        "bench/aws_calls.py, the logic layer: " + "; ".join(f"{k} {sum(v.values())}" for k, v in m.logic_counts.items())
    ]
    for which, label in (("auto", "(a) auto-approved"), ("manual", "(b) approved by a human with the email link")):
        lines = lifecycle_lines(m, which)
        phases = m.auto if which == "auto" else m.manual
        out.append(f"\n{label}")
        for phase, used in phases.items():
            out.append(f"  {phase}: AWS calls {calls_text(used)}; DynamoDB {used.wru:g} WRU, {used.rru:g} RRU")
        out.append(table(lines, 1000, "per 1,000 grants"))
    out.append("\nan agent waiting with `eks-jit wait` (a GET a second), per 1,000 grants and minute of waiting")
    out.append(f"  one GET: AWS calls {calls_text(m.poll)}; DynamoDB {m.poll.rru:g} RRU")
    out.append(table(lines_for(m.poll), 60 * 1000, "per 1,000 grants per minute waited"))
    out.append(
        f"\nthe sweeper, idle: AWS calls {calls_text(m.sweep_idle)}; DynamoDB {m.sweep_idle.wru:g} WRU, "
        f"{m.sweep_idle.rru:g} RRU"
    )
    each = per_principal_minute(m)
    out.append(f"  + each managed principal: AWS calls {calls_text(each)}; DynamoDB {each.wru:g} WRU, {each.rru:g} RRU")
    for count in (1, principals):
        out.append(f"\nfixed, a month, {count} managed principal(s), sweeper every minute ({MINUTES_PER_MONTH:,} runs)")
        out.append(table(fixed_lines(m, count), 1, "a month"))
    storage = m.stored_bytes_per_grant * 1000 / 1e9
    out.append(
        f"\nstored per grant, kept: {m.stored_bytes_per_grant:,.0f} B (grant item {m.grant_item_bytes:,.0f} B); "
        f"1,000 grants = {storage:.6f} GB: ${storage * PRICES['ddb_storage'].usd:.5f} + "
        f"${storage * PRICES['ddb_pitr'].usd:.5f} PITR a month, accumulating"
    )
    for replicas, arm, alb in ((1, False, False), (1, True, False), (2, True, True)):
        label = f"{replicas} replica{'s' if replicas > 1 else ''}, {'arm' if arm else 'x86'}{' + ALB' if alb else ''}"
        out.append(f"\nalways-on gateway, {label}, a month")
        out.append(table(gateway_lines(replicas, arm, alb), 1, "a month"))
    out.append(f"\ngateway mode on Lambda function URLs (ESTIMATE, issue 17), per 1,000 grants: {GATEWAY_MODE}")
    out.append(table(gateway_mode_lines(), 1000, "per 1,000 grants"))
    replica = total(gateway_lines(1, False, False))
    for which in ("auto", "manual"):
        per_grant = total(lifecycle_lines(m, which))
        out.append(f"\n{which}: one x86 replica (${replica:.2f} a month) pays for {replica / per_grant:,.0f} grants")
    g = GATEWAY_MODE
    per_request = PRICES["lambda_request"].usd + g["ms"] / 1000 * g["mb"] / 1024 * PRICES["lambda_gbs_arm"].usd
    out.append(
        f"gateway mode: a {g['ms']} ms request costs ${per_request * 1e6:.2f} per million; one replica pays for "
        f"{replica / per_request / 1e6:,.1f} M requests a month"
    )
    return "\n".join(out)


if __name__ == "__main__":
    print(report(measure()))
