"""The approval page in a real headless browser (Debian's chromium driven by Playwright):
open the link, read the summary, press Approve, see the result; a second visit says the link
was used. The link comes from the approver's SNS message, as an email would carry it."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from eks_jit.local.inbox import Inbox
from tests.e2e.conftest import Local

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.e2e

if not os.path.exists(CHROMIUM):
    if os.environ.get("EKS_JIT_REQUIRE_BROWSER"):  # CI installs chromium and sets this
        raise RuntimeError("chromium is required (apt-get install chromium) but was not found")
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def test_approve_in_a_real_browser_then_the_link_is_used(local: Local) -> None:
    from playwright.sync_api import sync_playwright

    inbox = Inbox(
        local.aws("sqs"),
        local.aws("sns"),
        local.state["resources"]["approvals_topic_arn"],
        "approver-alice",
        "browser-alice",
    )
    done = local.cli(
        "request", "--cluster", "demo", "--namespace", "payments", "--scope", "edit",
        "--duration", "2m", "--reason", "browser-approved fix", who="agent-oncall",
    )  # fmt: skip
    grant = json.loads(done.stdout)
    link = inbox.link_for(grant["id"])
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(link)
        assert page.title() == "Approve this access request?"
        assert page.get_by_text("browser-approved fix").is_visible()
        assert page.get_by_text("arn:aws:iam::123456789012:user/alice").is_visible()
        status = json.loads(local.cli("status", grant["id"], who="agent-oncall").stdout)["status"]
        assert status == "pending_approval"  # the browser opening the page decided nothing
        page.get_by_role("button", name="Approve").click()
        page.wait_for_load_state()
        assert page.title() == "You approved this request"
        second = browser.new_page()
        response = second.goto(link)
        assert response is not None and response.status == 410
        assert second.title() == "This link was already used"
        browser.close()
    active = local.cli("wait", grant["id"], "--timeout", "30", who="agent-oncall")
    assert json.loads(active.stdout)["status"] == "active"
    local.cli("revoke", grant["id"], who="agent-oncall")
