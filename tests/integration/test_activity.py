"""Activity reports from the EKS audit log (realistic audit.k8s.io/v1 events in moto's
CloudWatch Logs), and the auditor's listing as CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from eks_jit.cli import AUDIT_COLUMNS, audit_rows
from eks_jit.server.handlers import revoke as revoke_handler
from eks_jit.server.logic.sweeper import sweep
from tests.support import (
    ADMIN,
    ALICE,
    ONCALL,
    ONCALL_SESSION,
    OTHER_AGENT,
    REGION,
    ROOT,
    LambdaContextStub,
    recreate_cluster,
)

FIXTURES = ROOT / "tests" / "fixtures" / "audit"
RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "probe",
}


FIXTURE_BASE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # the fixtures' minute of activation


def shifted(text: str, offset: timedelta) -> str:
    return (datetime.fromisoformat(text) + offset).isoformat().replace("+00:00", "Z")


def put_audit_events(world, *names: str, cluster: str = "prod-eks") -> None:
    """The fixture events, moved so that their 10:00 is the test clock's start minute."""
    offset = world.clock.start.replace(second=0) - FIXTURE_BASE
    logs = boto3.client("logs", region_name=REGION)
    stream = "kube-apiserver-audit-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    group = f"/aws/eks/{cluster}/cluster"
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.create_log_stream(logGroupName=group, logStreamName="authenticator-0a1b2c3d")
    events: list[dict[str, Any]] = []
    for name in names:
        for event in json.loads((FIXTURES / name).read_text()):
            event["requestReceivedTimestamp"] = shifted(event["requestReceivedTimestamp"], offset)
            event["stageTimestamp"] = shifted(event["stageTimestamp"], offset)
            at = datetime.fromisoformat(event["requestReceivedTimestamp"])
            events.append({"timestamp": int(at.timestamp() * 1000), "message": json.dumps(event)})
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=sorted(events, key=lambda e: e["timestamp"])
    )
    # an authenticator line mentioning the agent must not be mistaken for an API request
    logs.put_log_events(
        logGroupName=group,
        logStreamName="authenticator-0a1b2c3d",
        logEvents=[
            {
                "timestamp": events[0]["timestamp"],
                "message": 'level=info msg="access granted" arn="arn:aws:iam::111122223333:role/oncall-agent"',
            }
        ],
    )


def the_day_of(when: datetime) -> dict[str, str]:
    """The audit query for the whole UTC day that holds ``when``: [00:00, next 00:00)."""
    start = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"since": f"{start:%Y-%m-%dT%H:%M:%SZ}", "until": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"}


ALL = (
    "rollout_restart_patch.json",
    "watch_pods.json",
    "forbidden_secret_read.json",
    "other_principal.json",
    "before_the_grant.json",
)


def test_the_report_lists_exactly_the_grants_requests_and_flags_the_forbidden_one(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    put_audit_events(world, *ALL)
    world.clock.set(datetime.fromisoformat(grant["expires_at"]))
    revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())
    world.clock.advance(timedelta(minutes=6))  # past the audit log's delivery delay
    assert sweep(world.deps).activity_reports == [grant["id"]]

    status, report = world.call("GET", f"/v1/grants/{grant['id']}/activity")
    assert status == 200 and report["status"] == "complete"
    assert report["total"] == 3  # not alice's, not the one before the window, not the RequestReceived stage
    assert report["summary"] == [
        {"verb": "get", "resource": "secrets", "namespace": "payments", "count": 1, "codes": {"403": 1}},
        {"verb": "patch", "resource": "deployments", "namespace": "payments", "count": 1, "codes": {"200": 1}},
        {"verb": "watch", "resource": "pods", "namespace": "payments", "count": 1, "codes": {"200": 1}},
    ]
    assert [(f["verb"], f["resource"], f["name"], f["code"]) for f in report["forbidden"]] == [
        ("get", "secrets", "db-password", 403)
    ]
    assert [r["verb"] for r in report["requests"]] == ["patch", "watch", "get"]
    assert report["requests"][0]["user_agent"].startswith("kubectl/")
    # stored once: a second sweep writes nothing
    assert sweep(world.deps).activity_reports == []


def test_a_cluster_without_audit_logging_says_so(world) -> None:
    recreate_cluster("staging-eks", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})  # no audit logging
    body = {"cluster": "staging-eks", "namespace": "payments", "scope": "view", "duration": "30m", "reason": "look"}
    _, grant = world.call("POST", "/v1/grants", body=body, caller=ALICE)
    assert grant["status"] == "active"
    world.call("POST", f"/v1/grants/{grant['id']}/revoke", caller=ALICE)
    world.clock.advance(timedelta(minutes=6))
    _, report = world.call("GET", f"/v1/grants/{grant['id']}/activity", caller=ALICE)
    assert report["status"] == "audit_logging_off" and report["total"] == 0
    assert "does not send control-plane audit logs" in report["note"]


def test_activity_of_an_active_grant_is_partial_and_not_stored(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    put_audit_events(world, "rollout_restart_patch.json")
    world.clock.advance(timedelta(minutes=3))
    _, report = world.call("GET", f"/v1/grants/{grant['id']}/activity")
    assert report["status"] == "partial" and report["total"] == 1
    assert world.deps.store.get_side(grant["id"], "activity") is None


def test_only_the_grants_people_and_auditors_may_read_its_activity(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    status, error = world.call("GET", f"/v1/grants/{grant['id']}/activity", caller=OTHER_AGENT)
    assert (status, error["code"]) == (403, "forbidden")
    status, error = world.call("GET", "/v1/audit", query=the_day_of(world.clock.start), caller=ONCALL_SESSION)
    assert (status, error["code"]) == (403, "forbidden")


def test_audit_csv_for_a_day_with_several_grants(world) -> None:
    # 1: auto-approved, used, expired; 2: denied by policy; 3: needs a human, approved by alice? (no
    # workflow wait here: revoke it while pending is refused) -> cancelled; 4: revoked early
    _, first = world.call("POST", "/v1/grants", body=RESTART)
    put_audit_events(world, "rollout_restart_patch.json", "forbidden_secret_read.json")
    world.call("POST", "/v1/grants", body={**RESTART, "scope": "view"}, caller=OTHER_AGENT)
    world.clock.advance(timedelta(minutes=1))
    _, third = world.call("POST", "/v1/grants", body={**RESTART, "scope": "edit"})
    world.call("POST", f"/v1/grants/{third['id']}/cancel", body={"reason": "fixed by restart"})
    world.clock.set(datetime.fromisoformat(first["expires_at"]))
    revoke_handler.handler({"grant_id": first["id"]}, LambdaContextStub())
    _, fourth = world.call("POST", "/v1/grants", body={**RESTART, "scope": "view", "duration": "10m"})
    world.call("POST", f"/v1/grants/{fourth['id']}/revoke", body={"reason": "done"})
    world.clock.advance(timedelta(minutes=6))
    sweep(world.deps)

    status, listing = world.call("GET", "/v1/audit", query=the_day_of(world.clock.start), caller=ADMIN)
    assert status == 200, listing
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(audit_rows(listing["rows"]))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(AUDIT_COLUMNS)
    assert len(rows) == 4
    by_scope = {(r["scope"], r["requester"].rsplit("/", 1)[-1]): r for r in rows}
    restart = by_scope[("rollout-restart", "oncall-agent")]
    assert restart["requester"] == ONCALL and restart["cluster"] == "prod-eks" and restart["namespaces"] == "payments"
    assert restart["status"] == "expired" and restart["approved_by"] == "policy:oncall-agent-payments-auto"
    assert restart["reason"] == "probe" and restart["ended_how"] == ""
    assert restart["activated_at"] and restart["expires_at"] == restart["ended_at"]
    assert restart["forbidden"] == "1"
    assert restart["activity"] == "get secrets payments x1 [403]; patch deployments payments x1 [200]"
    denied = by_scope[("view", "report-agent")]
    assert denied["status"] == "denied" and denied["activated_at"] == "" and "no policy allows" in denied["ended_how"]
    assert denied["activity"] == "never active"
    cancelled = by_scope[("edit", "oncall-agent")]
    assert cancelled["status"] == "cancelled" and cancelled["ended_how"] == "fixed by restart"
    revoked = by_scope[("view", "oncall-agent")]
    assert revoked["status"] == "revoked" and revoked["ended_how"] == "done" and revoked["activity"] == "no requests"
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)


def test_a_grant_asked_for_at_23_59_50_belongs_to_that_day_though_it_ends_the_next(world) -> None:
    # Given a request ten seconds before midnight UTC (test clock), for 15 minutes
    world.clock.set(world.clock.start.replace(hour=23, minute=59, second=50))
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    world.clock.set(datetime.fromisoformat(grant["expires_at"]))
    revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())
    assert world.clock.now().date() > world.clock.start.date()
    # Then the audit of the day it was asked for lists it, expired, and the next day's does not
    _, that_day = world.call("GET", "/v1/audit", query=the_day_of(world.clock.start), caller=ADMIN)
    _, next_day = world.call("GET", "/v1/audit", query=the_day_of(world.clock.now()), caller=ADMIN)
    assert [(r["grant_id"], r["status"]) for r in audit_rows(that_day["rows"])] == [(grant["id"], "expired")]
    assert next_day["rows"] == []
