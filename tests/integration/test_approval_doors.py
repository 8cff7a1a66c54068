"""The other two doors into the same decision: Slack (signature-verified, user-mapped) and
the approval link (signed, single use, GET never decides)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest
from slack_sdk.signature import SignatureVerifier

from eks_jit.server import bootstrap
from eks_jit.server.logic.approvals import link_for
from tests.conftest import SLACK_SIGNING_SECRET, World, make_deps
from tests.fakes import FakeSlack
from tests.integration.test_approval_workflow import finished, notified, request_edit
from tests.support import ALICE, BOB, EXAMPLE_CONFIG, ONCALL, FakeClock, wait_until


@pytest.fixture
def slack_world(aws, tmp_path: Path) -> Iterator[tuple[World, FakeSlack]]:
    config = tmp_path / "eks-jit.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace("  enabled: false", "  enabled: true"))
    (tmp_path / "policies.cedar").write_text((EXAMPLE_CONFIG.parent / "policies.cedar").read_text())
    slack = FakeSlack()
    clock = FakeClock()
    deps = make_deps(aws, clock, config_path=config, slack_url=slack.url)
    bootstrap.use(deps)
    world = World(deps, clock, boto3.client("eks"), boto3.client("dynamodb"), boto3.client("scheduler"))
    yield world, slack
    bootstrap.use(None)
    slack.close()


def slack_click(
    world: World,
    grant_id: str,
    user: str,
    action: str = "approve",
    *,
    secret: str = SLACK_SIGNING_SECRET,
    age: int = 0,
    signed: bool = True,
):
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone"},
        "container": {"channel_id": "C0APPROVALS", "message_ts": "1700000000.000001"},
        "actions": [{"action_id": action, "value": grant_id, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(world.clock.now().timestamp()) - age)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers |= {
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body),
        }
    return world.call("POST", "/v1/slack/interactions", raw_body=body, headers=headers, caller=None)


def test_the_request_is_posted_to_slack_with_everything_an_approver_needs(slack_world) -> None:
    world, slack = slack_world
    grant = request_edit(world)
    method, message = slack.calls[0]
    assert method == "chat.postMessage" and message["channel"] == "#eks-jit-approvals"
    assert message["_auth"].startswith("Bearer xoxb-local-")
    text = json.dumps(message["blocks"])
    for shown in (ONCALL, "prod-eks", "payments", "edit", "30m", "hotfix config"):
        assert shown in text
    buttons = message["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["approve", "deny"]
    assert all("confirm" in b for b in buttons)  # one tap needs a second, deliberate one
    assert world.deps.store.get_side(grant["id"], "chat") == {"channel": "C0APPROVALS", "ts": "1700000000.000001"}


def test_a_signed_click_from_a_mapped_approver_decides_and_updates_the_message(slack_world) -> None:
    world, slack = slack_world
    grant = request_edit(world)
    status, body = slack_click(world, grant["id"], "U0BOB0001")
    assert status == 200, body
    assert finished(world, grant["id"])["status"] == "SUCCEEDED"
    stored = world.deps.store.get(grant["id"])
    assert stored.status.value == "active" and stored.approved_by == (BOB,)
    assert world.deps.store.events(grant["id"])[2].detail["via"] == "slack"
    _, update = wait_until(lambda: [c for c in slack.calls if c[0] == "chat.update"])[0]
    assert update["ts"] == "1700000000.000001" and "APPROVED" in json.dumps(update["blocks"])
    assert "actions" not in [b["type"] for b in update["blocks"]]  # no buttons left to press


@pytest.mark.parametrize(
    ("why", "kwargs"),
    [
        ("unsigned", {"signed": False}),
        ("wrong secret", {"secret": "not-the-signing-secret"}),
        ("stale: replayed after 6 minutes", {"age": 6 * 60}),
    ],
)
def test_requests_without_a_valid_fresh_signature_are_refused(slack_world, why, kwargs) -> None:
    world, _ = slack_world
    grant = request_edit(world)
    status, error = slack_click(world, grant["id"], "U0BOB0001", **kwargs)
    assert (status, error["code"]) == (403, "forbidden"), why
    assert world.deps.store.get(grant["id"]).status.value == "pending_approval"


def test_a_click_just_inside_the_five_minutes_is_accepted(slack_world) -> None:
    world, _ = slack_world
    grant = request_edit(world)
    status, _ = slack_click(world, grant["id"], "U0BOB0001", action="deny", age=4 * 60)
    assert status == 200
    assert world.deps.store.get(grant["id"]).status.value == "denied"


def test_an_unknown_slack_user_is_refused(slack_world) -> None:
    world, _ = slack_world
    grant = request_edit(world)
    status, error = slack_click(world, grant["id"], "U0MALLORY1")
    assert (status, error["code"]) == (403, "unknown_slack_user")
    assert world.deps.store.get(grant["id"]).status.value == "pending_approval"


def test_the_requester_clicking_in_slack_is_still_self_approval(slack_world) -> None:
    world, _ = slack_world
    status, grant = world.call(
        "POST",
        "/v1/grants",
        body={"cluster": "prod-eks", "namespace": "orders", "scope": "edit", "duration": "30m", "reason": "fix"},
        caller=ALICE,
    )
    notified(world, grant["id"])
    status, error = slack_click(world, grant["id"], "U0ALICE01")
    assert (status, error["code"]) == (403, "self_approval")


# -- approval links --------------------------------------------------------------------------------


def header(response: dict, name: str) -> str:
    return response["multiValueHeaders"][name][0]


def link_path(world: World, grant_id: str, approver: str) -> str:
    url = link_for(world.deps, world.deps.store.get(grant_id), approver)
    return url.removeprefix("https://eks-jit.example.com/prod")


def test_get_shows_the_summary_and_decides_nothing(world) -> None:
    grant = request_edit(world)
    path = link_path(world, grant["id"], BOB)
    for _ in range(3):  # a link scanner, a chat preview, the approver
        page = world.raw("GET", path, caller=None)
        assert page["statusCode"] == 200 and header(page, "Content-Type").startswith("text/html")
    assert "Nothing happens until you press a button" in page["body"] and "hotfix config" in page["body"]
    assert header(page, "Referrer-Policy") == "no-referrer"
    assert "form-action 'self'" in header(page, "Content-Security-Policy")
    assert world.deps.store.get(grant["id"]).status.value == "pending_approval"


def test_post_decides_once_and_the_link_then_says_it_was_used(world) -> None:
    grant = request_edit(world)
    path = link_path(world, grant["id"], BOB)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    page = world.raw("POST", path, raw_body="decision=approve&comment=looks+fine", headers=form, caller=None)
    assert page["statusCode"] == 200 and "You approved this request" in page["body"]
    assert finished(world, grant["id"])["status"] == "SUCCEEDED"
    assert world.deps.store.get(grant["id"]).status.value == "active"
    again = world.raw("POST", path, raw_body="decision=deny", headers=form, caller=None)
    assert again["statusCode"] == 410 and "already used" in again["body"]
    assert world.raw("GET", path, caller=None)["statusCode"] == 410
    approved = world.deps.store.events(grant["id"])[2]
    assert (approved.actor, approved.detail["via"], approved.detail["comment"]) == (BOB, "link", "looks fine")


def test_tampered_and_expired_links_change_nothing(world) -> None:
    grant = request_edit(world)
    path = link_path(world, grant["id"], BOB)
    body, signature = path.rsplit("/", 1)[1].split(".")
    alice_claims = link_path(world, grant["id"], ALICE).rsplit("/", 1)[1].split(".")[0]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for bad in (f"{alice_claims}.{signature}", f"{body}.{signature[:-2]}xx", "not.a-link"):
        page = world.raw("POST", f"/v1/approval-links/{bad}", raw_body="decision=approve", headers=form, caller=None)
        assert page["statusCode"] == 403 and "not valid" in page["body"], bad
    world.clock.advance(timedelta(hours=1, seconds=1))
    page = world.raw("POST", path, raw_body="decision=approve", headers=form, caller=None)
    assert page["statusCode"] == 410 and "expired" in page["body"]
    assert world.deps.store.get(grant["id"]).status.value == "pending_approval"


def test_a_link_of_a_cancelled_request_says_so(world) -> None:
    grant = request_edit(world)
    path = link_path(world, grant["id"], BOB)
    world.call("POST", f"/v1/grants/{grant['id']}/cancel")
    page = world.raw("GET", path, caller=None)
    assert page["statusCode"] == 409 and "cancelled" in page["body"]


def test_approvers_get_one_email_each_with_only_their_own_link(world) -> None:
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queues = {}
    for name in ("approver-alice", "approver-bob"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=world.deps.notifier._approvals,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps({"approver": [name]}), "RawMessageDelivery": "true"},
        )
        queues[name] = url
    grant = request_edit(world)
    for name, url in queues.items():
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(messages) == 1, name
        assert grant["id"] in messages[0]["Body"] and "/v1/approval-links/" in messages[0]["Body"]


def test_an_api_approval_after_the_approval_timeout_is_refused_and_changes_nothing(world) -> None:
    """The request is still pending (the sweeper has not run yet) but its time to decide is
    over: a late approval must not activate it."""
    grant = request_edit(world)
    stored = world.deps.store.get(grant["id"])
    assert stored.decision.approval_timeout is not None
    world.clock.set(stored.created_at + stored.decision.approval_timeout)
    before = sorted(map(str, world.table_items()))
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    assert (status, error["code"]) == (409, "approval_timed_out")
    assert sorted(map(str, world.table_items())) == before
    assert world.entry(ONCALL) is None
    # a second before the deadline still counts
    other = request_edit(world)
    created = world.deps.store.get(other["id"]).created_at
    world.clock.set(created + stored.decision.approval_timeout - timedelta(seconds=1))
    status, decided = world.call("POST", f"/v1/grants/{other['id']}/approve", caller=ALICE)
    assert status == 200 and decided["status"] in ("approved", "active")


def test_a_slack_approval_after_the_approval_timeout_is_refused(slack_world) -> None:
    world, _ = slack_world
    grant = request_edit(world)
    stored = world.deps.store.get(grant["id"])
    world.clock.set(stored.created_at + stored.decision.approval_timeout + timedelta(minutes=5))
    status, error = slack_click(world, grant["id"], "U0BOB0001")
    assert (status, error["code"]) == (409, "approval_timed_out")
    assert world.deps.store.get(grant["id"]).status.value == "pending_approval"
    assert world.entry(ONCALL) is None


HOSTILE = (
    "hotfix\n\n"
    "Your approval link (single use, only for you; it opens a page, nothing is decided until you press a button):\n"
    "https://evil.example/v1/approval-links/fake.token\n\n\u2028*APPROVED* by security \u202eknil"
)


def request_hostile(world) -> dict:
    status, grant = world.call("POST", "/v1/grants", body={**EDIT_REQUEST, "reason": HOSTILE}, caller=ONCALL)
    assert status == 201 and grant["status"] == "pending_approval", grant
    notified(world, grant["id"])
    return grant


EDIT_REQUEST = {"cluster": "prod-eks", "namespace": "payments", "scope": "edit", "duration": "30m"}


def test_a_hostile_reason_cannot_draw_a_fake_approval_link_in_the_email(world) -> None:
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    url = sqs.create_queue(QueueName="approver-bob")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=world.deps.notifier._approvals,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"approver": ["approver-bob"]}), "RawMessageDelivery": "true"},
    )
    grant = request_hostile(world)
    body = sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"]
    lines = body.splitlines()
    real = f"{world.deps.public_url.rstrip('/')}/v1/approval-links/"
    assert grant["id"] in body
    # the real link is in a fixed place, before anything the requester wrote
    assert lines[0].startswith("Your approval link") and lines[1].startswith(real)
    # the reason is one quoted line: nothing it contains starts a line of its own
    reason_lines = [line for line in lines if "evil.example" in line]
    assert len(reason_lines) == 1 and reason_lines[0].startswith("Reason, in the requester's words: \"")
    assert not any(line.startswith(("https://evil", "*APPROVED*")) for line in lines)
    assert "\u2028" not in body and "\u202e" not in body
    assert lines.index(reason_lines[0]) > 1


def test_a_hostile_reason_is_one_plain_line_in_slack_and_on_the_page(slack_world) -> None:
    world, slack = slack_world
    grant = request_hostile(world)
    _, message = slack.calls[0]
    blocks = message["blocks"]
    assert blocks[-1]["type"] == "actions"  # the real buttons stay where they are
    texts = [f for block in blocks for f in block.get("fields", [])]
    reason = next(f for f in texts if "evil.example" in f["text"])
    assert reason["type"] == "plain_text" and "\n" not in reason["text"].split("\n", 1)[-1]
    assert "\u2028" not in reason["text"] and "\u202e" not in reason["text"]
    assert not any("evil.example" in f["text"] for f in texts if f["type"] == "mrkdwn")
    page = world.raw("GET", link_path(world, grant["id"], BOB), caller=None)["body"]
    assert "https://evil.example" in page and "<a " not in page
    shown = page.split("https://evil.example")[0].rsplit("<dd>", 1)[1]
    assert shown.startswith("<q>") and "\n" not in page and "\u2028" not in page
