"""checkov, the second template scanner, over both synthesized templates: every finding is one the
project accepts in ``infra/template_scan.py`` with a reason, and every accepted one still occurs."""

from __future__ import annotations

import pytest

from infra.template_scan import CHECKOV, SKIPS, Finding, Skip, scan, unaccepted, unused
from tests.infra.conftest import CLUSTER_STACK, STACK, Synth

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def findings(synth: Synth) -> list[Finding]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make install-scan` (make test runs it) creates .venv-scan"
    return scan([synth.outdir / f"{stack}.template.json" for stack in (STACK, CLUSTER_STACK)])


def test_checkov_finds_nothing_the_project_has_not_accepted_with_a_reason(findings: list[Finding]) -> None:
    assert findings  # the scanner ran and judged something
    assert [str(f) for f in unaccepted(findings)] == []


def test_every_skip_still_matches_a_finding_and_says_why(findings: list[Finding]) -> None:
    assert unused(findings) == []
    for skip in SKIPS:
        assert skip.check.startswith("CKV_AWS_") and len(skip.reason) >= 80, skip.check
    assert len({(s.check, s.resource_type) for s in SKIPS}) == len(SKIPS)


def test_the_cluster_access_stack_needs_no_skip(findings: list[Finding]) -> None:
    assert [str(f) for f in findings if f.template == f"{CLUSTER_STACK}.template.json"] == []


def test_the_premise_of_the_sqs_skip_holds(synth: Synth) -> None:
    # CKV_AWS_27 is skipped because checkov does not recognise SSE-SQS: the queues must have it.
    queues = synth.resources(STACK, "AWS::SQS::Queue").values()
    assert queues and all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues)


def test_a_skip_accepts_only_its_check_type_and_resources() -> None:
    skip = Skip("CKV_AWS_59", "AWS::ApiGateway::Method", "x" * 80, only=("ApiRestApiv1slack",))
    assert skip.accepts(Finding("CKV_AWS_59", "AWS::ApiGateway::Method", "ApiRestApiv1slackPOST", "t", "n"))
    assert not skip.accepts(Finding("CKV_AWS_59", "AWS::ApiGateway::Method", "ApiRestApiv1grantsPOST", "t", "n"))
    assert not skip.accepts(Finding("CKV_AWS_58", "AWS::ApiGateway::Method", "ApiRestApiv1slackPOST", "t", "n"))
