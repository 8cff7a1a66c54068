"""The session log's IAM (infra/permissions.py, ``QuerySessionLogs``): the api function reads a
grant's COMMAND# partition (GET /v1/grants/{id}/session, the audit's count) by Query and nothing
else; no other function reads it, and none may change or delete a recorded command."""

from __future__ import annotations

import json

import pytest

from eks_jit.server.adapters.table import COMMAND_PREFIX, GRANT_PREFIX
from infra.permissions import API, BY_FUNCTION, only_items, table_statements
from tests.infra.conftest import Synth, actions, allowed, listed

pytestmark = pytest.mark.infra
COMMANDS_ONLY = {
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [COMMAND_PREFIX + "*"]},
    "Null": {"dynamodb:LeadingKeys": "false"},
}


def _naming_commands(statements: list[dict]) -> list[dict]:
    return [s for s in statements if COMMAND_PREFIX in json.dumps(s.get("Condition", {}))]


def test_the_api_queries_the_session_log_and_does_nothing_else_with_it(synth: Synth) -> None:
    table = f"<{synth.logical('StorageGrants', 'AWS::DynamoDB::Table')}.Arn>"
    (statement,) = _naming_commands(synth.function_statements()["api"])
    assert statement["Effect"] == "Allow" and actions(statement) == ["dynamodb:Query"]
    assert listed(statement["Resource"]) == [table] and statement["Condition"] == COMMANDS_ONLY
    # the session log's Query is its own statement: the grant events' one still reaches GRANT# only
    queries = [s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for s in allowed(
        synth.function_statements()["api"], "dynamodb:Query") if "Condition" in s]  # fmt: skip
    assert sorted(queries) == sorted([[COMMAND_PREFIX + "*"], [GRANT_PREFIX + "*"]])


def test_no_other_function_reads_and_none_rewrites_a_recorded_command(synth: Synth) -> None:
    for name, statements in synth.function_statements().items():
        for statement in _naming_commands(statements):
            assert statement["Effect"] == "Allow", (name, statement)
            rewrites = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
            assert not rewrites & set(actions(statement)), (name, statement)
            if name in BY_FUNCTION and name != "api":
                assert "dynamodb:Query" not in actions(statement), name
                assert "dynamodb:GetItem" not in actions(statement), name


def test_only_the_api_needs_the_session_log() -> None:
    assert [name for name, needs in BY_FUNCTION.items() if needs.reads_session_log] == ["api"]
    (statement,) = [s for s in table_statements("arn:table", API, slack=False) if s.sid == "QuerySessionLogs"]
    assert statement.to_json()["Condition"] == only_items(COMMAND_PREFIX + "*")
