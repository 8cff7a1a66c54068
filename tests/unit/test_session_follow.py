"""`eks-jit session ID --follow`: the transcript so far, then each new command once, until the grant
can record no more; then how it ended. Driven with a fake API and a fake sleep: no real time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from eks_jit import cli
from eks_jit.client import ApiError
from tests.support import FakeClock

GRANT = "0b9c1d2e-0000-5000-8000-000000000001"
START = FakeClock().start
ENDS = (START + timedelta(minutes=15)).isoformat()


def command(ms: int, outcome: str = "allowed", **fields: Any) -> dict[str, Any]:
    return {
        "at": (START + timedelta(milliseconds=ms)).isoformat(), "request_id": f"r-{ms}", "verb": "get",
        "path": "/apis/apps/v1/namespaces/payments/deployments/payments-api", "query": "", "outcome": outcome,
        "status": 200 if outcome in ("allowed", "approved") else 403, "reason": "", "summary": "",
    } | fields  # fmt: skip


class FakeApi:
    """A session log that grows as the polls go by, and a grant whose status each poll reads next."""

    def __init__(self, logs: list[list[dict[str, Any]]], statuses: list[str], page: int = 2) -> None:
        self.logs, self.statuses, self.page = logs, statuses, page
        self.polls = 0
        self.reads: list[str | None] = []
        self.fail_next: ApiError | None = None

    def grant(self, grant_id: str) -> dict[str, Any]:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        status = self.statuses[min(self.polls, len(self.statuses) - 1)]
        ended = {"ended_at": ENDS, "status_reason": "done"} if status == "revoked" else {}
        return {"id": grant_id, "status": status, "expires_at": ENDS} | ended

    def session_pages(self, grant_id: str, *, after: str | None = None, page_size: int | None = None) -> Any:
        """Pages of ``self.page`` commands; ``next`` is the index where the next page starts."""
        self.reads.append(after)
        log = self.logs[min(self.polls, len(self.logs) - 1)]
        start = int(after) if after else 0
        while True:
            chunk = log[start : start + self.page]
            more = start + self.page < len(log)
            yield (str(start) if start else None), {"grant_id": grant_id, "commands": chunk,
                                                    "next": str(start + self.page) if more else None}  # fmt: skip
            if not more:
                return
            start += self.page


def run(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], list[float]]:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        api.polls += 1

    code = cli.follow(api, GRANT, interval=1.5, sleep=sleep)
    return code, capsys.readouterr().out.splitlines(), slept


def test_each_command_is_printed_once_as_it_is_recorded_until_the_grant_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = [command(1), command(2), command(3)]
    more = [*first, command(4, "blocked", reason="eks-jit guardrail agents-never-exec blocks it")]
    api = FakeApi(logs=[first, first, more, more], statuses=["active", "active", "active", "revoked"])
    code, lines, slept = run(api, capsys)
    assert code == 0 and slept == [1.5, 1.5, 1.5]
    assert lines[0] == f"grant {GRANT}: 3 commands: 3 allowed, 0 refused, 0 blocked, 0 held, 0 approved"
    printed = [line for line in lines if line[:1] in (" ", "!") and not line.startswith("    ")]
    stamps = [cli._clock(c["at"]) for c in more]
    assert [next(s for s in stamps if s in line) for line in printed] == stamps  # each once, in order
    assert lines[-2] == "    reason: eks-jit guardrail agents-never-exec blocks it"
    assert lines[-1] == f"-- grant {GRANT} revoked at {ENDS}: done: no more commands can be recorded under it"
    # each poll reads from the start of the last page read, not the whole log again
    assert api.reads[:3] == [None, "2", "2"]


def test_a_command_recorded_late_is_shown_when_the_grant_ends(capsys: pytest.CaptureFixture[str]) -> None:
    """A watch is recorded when it ends, under the time it began: before the last page read."""
    early = [command(1), command(2), command(3)]
    late = [command(1), command(2, request_id="r-watch", verb="watch"), command(2), command(3)]
    api = FakeApi(logs=[early, late], statuses=["active", "expired"])
    code, lines, _ = run(api, capsys)
    assert code == 0 and sum("watch" in line for line in lines) == 1 and "expired" in lines[-1]


def test_a_grant_already_over_prints_its_log_and_how_it_ended(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(logs=[[command(1)]], statuses=["expired"])
    code, lines, slept = run(api, capsys)
    assert (code, slept, len(lines)) == (0, [], 3) and lines[-1].startswith(f"-- grant {GRANT} expired at ")


def test_a_transient_failure_is_said_and_retried(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(logs=[[command(1)], [command(1), command(2)]], statuses=["active", "active", "expired"])
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        api.polls += 1
        if api.polls == 1:
            api.fail_next = ApiError(503, "service_unavailable", "try again")

    assert cli.follow(api, GRANT, interval=2, sleep=sleep) == 0
    out, err = capsys.readouterr()
    assert "eks-jit: service_unavailable: try again (trying again in 2s)" in err
    assert sum(line.startswith("  ") and "Z  allowed" in line for line in out.splitlines()) == 2


def test_a_refusal_is_not_retried(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(logs=[[command(1)]], statuses=["active"])

    def sleep(seconds: float) -> None:
        api.fail_next = ApiError(403, "forbidden", "not yours")

    with pytest.raises(ApiError):
        cli.follow(api, GRANT, interval=1, sleep=sleep)


def test_ctrl_c_exits_130_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(logs=[[command(1)]], statuses=["active"])

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    assert cli.follow(api, GRANT, interval=1, sleep=sleep) == 130
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--json"], ["-o", "json"], ["--interval", "0"], ["--interval", "-1"]], ids=str)
def test_follow_with_json_or_no_interval_is_a_usage_error(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["session", GRANT, "--follow", *extra, "--endpoint", "https://example.invalid/prod"]
    assert cli.main(argv) == 2


# -- the transcript's marks ------------------------------------------------------------------------


def test_an_outcome_this_cli_does_not_know_is_marked_and_counted_last() -> None:
    lines = cli.command_lines(command(1, "quarantined", reason="a newer gateway's word"))
    assert lines[0].startswith("* ") and lines[1] == "    reason: a newer gateway's word"
    assert cli.tally([command(1), command(2, "quarantined")]).endswith("0 approved, 1 quarantined")


def test_only_the_gateway_s_own_words_give_an_approval_id() -> None:
    """A held line's approval id comes from the start of the gateway's reason; a reason that merely
    contains the words (text the agent's request put there) is shown as a reason, not as an id."""
    held = cli.command_lines(command(1, "held", reason="approval required: eks-jit approve abc-123 (holds it)"))
    assert held[1] == "    approval: eks-jit approve abc-123  (an approver approves it; it then passes once)"
    spoofed = cli.command_lines(command(1, "held", reason="x approval required: eks-jit approve evil"))
    assert spoofed[1] == "    reason: x approval required: eks-jit approve evil"
    assert len(held) == len(spoofed) == 2


def test_the_marks_keep_the_lines_aligned() -> None:
    outcomes = ["allowed", "refused", "blocked", "held", "approved"]
    firsts = [cli.command_lines(command(i, o))[0] for i, o in enumerate(outcomes)]
    assert [line[0] for line in firsts] == [" ", "x", "!", "?", "+"]
    assert (
        len(
            {
                line.index(" 200 " if o in ("allowed", "approved") else " 403 ")
                for line, o in zip(firsts, outcomes, strict=True)
            }
        )
        == 1
    )
