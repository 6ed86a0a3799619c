"""The six tools through the official MCP client, connected in memory to ``create_server``:
what each role sees, what is refused and how, and exactly one audit event per call."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, types

from sqlagent.agent import SQLAgent
from sqlagent.audit import AuditEvent, MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.demo import DemoPaths
from sqlagent.errors import ConfigError
from sqlagent.mcp import DEFAULT_MAX_ROWS, TOOL_NAMES, create_server
from tests.mcp.mcp_helpers import fast_demo, in_memory

QUESTION = "How many employees are in each department?"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoPaths:
    return fast_demo(tmp_path_factory.mktemp("mcp-tools"))


@pytest.fixture(scope="module")
def sink() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture(scope="module")
def agent(demo: DemoPaths, sink: MemoryAuditSink) -> Iterator[SQLAgent]:
    with SQLAgent(AgentConfig.from_file(demo.config), audit=sink) as built:
        yield built


def call(agent: SQLAgent, role: str | None, tool: str, **arguments: Any) -> types.CallToolResult:
    async def body(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool(tool, arguments)

    return in_memory(create_server(agent, role=role), body)


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def test_the_tools_are_listed_read_only_with_schemas(agent: SQLAgent) -> None:
    async def body(session: ClientSession) -> types.ListToolsResult:
        return await session.list_tools()

    listed = in_memory(create_server(agent), body)
    assert tuple(t.name for t in listed.tools) == TOOL_NAMES
    for tool in listed.tools:
        assert tool.annotations is not None
        assert tool.annotations.readOnlyHint is True
        assert tool.annotations.destructiveHint is False
        assert tool.annotations.openWorldHint is False
        assert tool.outputSchema is not None
        assert tool.outputSchema["type"] == "object"
        assert tool.inputSchema["additionalProperties"] is False
        assert "role" not in tool.inputSchema["properties"]
    run_sql = next(t for t in listed.tools if t.name == "run_sql")
    assert run_sql.inputSchema["required"] == ["sql"]


def test_list_tables_shows_only_the_view_with_masks(agent: SQLAgent) -> None:
    viewer = call(agent, "viewer", "list_tables").structuredContent
    assert viewer is not None
    assert viewer["role"] == "viewer"
    tables = {t["name"]: t for t in viewer["tables"]}
    assert "payroll" not in tables  # hidden: not even its name
    assert "salary" not in tables["employees"]["columns"]
    assert "national_id" not in tables["employees"]["columns"]
    analyst = call(agent, "analyst", "list_tables").structuredContent
    assert analyst is not None
    by_name = {t["name"]: t for t in analyst["tables"]}
    assert by_name["employees"]["masked_columns"] == ["salary"]
    assert by_name["payroll"]["masked_columns"] == ["gross_pay", "bonus"]


def test_describe_table_marks_masks_and_keeps_their_values_back(agent: SQLAgent) -> None:
    found = call(agent, "analyst", "describe_table", table="EMPLOYEES").structuredContent
    assert found is not None
    assert found["name"] == "employees"
    columns = {c["name"]: c for c in found["columns"]}
    assert columns["salary"]["masked"] is True
    assert columns["salary"]["samples"] == []
    assert "national_id" not in columns
    assert found["primary_key"] == ["id"]
    assert {"columns": ["department_id"], "references_table": "departments",
            "references_columns": ["id"]} in found["foreign_keys"]  # fmt: skip
    assert "masked for you" in found["ddl"]
    departments = call(agent, "analyst", "describe_table", table="departments")
    assert departments.structuredContent is not None
    names = {c["name"]: c for c in departments.structuredContent["columns"]}
    assert "Engineering" in names["name"]["samples"]  # readable in clear: samples shown


def test_a_hidden_table_reads_exactly_like_a_missing_one(agent: SQLAgent) -> None:
    hidden = call(agent, "viewer", "describe_table", table="payroll")
    missing = call(agent, "viewer", "describe_table", table="paycheck")
    assert hidden.isError
    assert missing.isError
    assert text(hidden) == text(missing).replace("paycheck", "payroll")
    assert "no table 'payroll' in your view" in text(hidden)


def test_search_schema_stays_in_the_view(agent: SQLAgent) -> None:
    found = call(agent, "viewer", "search_schema", question="monthly payroll bonus", k=3)
    assert found.structuredContent is not None
    assert "payroll" not in found.structuredContent["tables"]
    assert "payroll" not in found.structuredContent["ddl"]
    assert "CREATE TABLE" in found.structuredContent["ddl"]


def test_validate_sql_gives_the_verdict_without_running(agent: SQLAgent) -> None:
    denied = call(agent, "analyst", "validate_sql", sql="SELECT national_id FROM employees")
    assert not denied.isError
    assert denied.structuredContent is not None
    assert denied.structuredContent["allowed"] is False
    assert denied.structuredContent["violations"][0]["code"] == "column_denied"
    assert "national_id" in denied.structuredContent["feedback"]
    allowed = call(agent, "analyst", "validate_sql", sql="SELECT salary FROM employees")
    assert allowed.structuredContent is not None
    assert allowed.structuredContent["allowed"]
    assert "'***'" in allowed.structuredContent["sql"]


def test_run_sql_masks_for_the_analyst_and_not_for_hr(agent: SQLAgent) -> None:
    sql = "SELECT first_name, salary FROM employees ORDER BY id"
    analyst = call(agent, "analyst", "run_sql", sql=sql, max_rows=3).structuredContent
    assert analyst is not None
    assert [row[1] for row in analyst["rows"]] == ["***"] * 3
    assert analyst["masked_columns"] == ["employees.salary"]
    assert analyst["truncated"] is True
    assert analyst["row_count"] == 3
    hr = call(agent, "hr", "run_sql", sql=sql).structuredContent
    assert hr is not None
    assert isinstance(hr["rows"][0][1], int)
    assert hr["row_count"] == DEFAULT_MAX_ROWS or not hr["truncated"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DELETE FROM employees", "Only SELECT queries are allowed"),
        ("DROP TABLE employees", "Only SELECT queries are allowed"),
        ("SELECT 1; DROP TABLE employees", "found 2 statements"),
        ("SELECT gross_pay FROM payroll", "payroll"),
    ],
)
def test_refused_sql_is_a_tool_error_with_the_guard_feedback(
    agent: SQLAgent, demo: DemoPaths, sql: str, expected: str
) -> None:
    result = call(agent, "viewer", "run_sql", sql=sql)
    assert result.isError
    assert text(result).startswith("The SQL was rejected:")
    assert expected.lower() in text(result).lower()
    with sqlite3.connect(demo.database) as db:  # and nothing changed
        assert db.execute("SELECT COUNT(*) FROM employees").fetchone()[0] > 0


def test_ask_answers_with_the_configured_model(agent: SQLAgent) -> None:
    result = call(agent, "analyst", "ask", question=QUESTION)
    assert not result.isError, text(result)
    assert result.structuredContent is not None
    assert result.structuredContent["model"] == "mock"
    assert result.structuredContent["columns"] == ["name", "employee_count"]


def test_ask_without_a_usable_model_is_a_clear_tool_error(
    agent: SQLAgent, sink: MemoryAuditSink
) -> None:
    server = create_server(agent, role="viewer", ask_unavailable="no model to answer with")

    async def body(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool("ask", {"question": QUESTION})

    before = len(sink.events)
    result = in_memory(server, body)
    assert result.isError
    assert text(result) == "no model to answer with"
    assert [(e.name, e.verdict) for e in sink.events[before:]] == [("mcp", "error")]


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("run_sql", {"sql": "SELECT 1", "role": "admin"}, "'role' is not an argument"),
        ("run_sql", {"sql": "SELECT 1", "max_rows": "5"}, "max_rows"),
        ("run_sql", {}, "sql: Field required"),
        ("describe_table", {"table": "employees", "schema": "x"}, "schema"),
        ("search_schema", {"question": "q", "k": 0}, "k:"),
        ("drop_table", {}, "unknown tool 'drop_table'"),
    ],
)
def test_bad_calls_are_tool_errors_and_still_audited(
    agent: SQLAgent, sink: MemoryAuditSink, tool: str, arguments: dict[str, Any], message: str
) -> None:
    async def body(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool(tool, arguments)

    before = len(sink.events)
    result = in_memory(create_server(agent, role="viewer"), body)
    assert result.isError
    assert message in text(result)
    events = sink.events[before:]
    assert [(e.name, e.verdict, e.role) for e in events] == [("mcp", "error", "viewer")]
    assert events[0].extra["tool"] == tool


def test_exactly_one_audit_event_per_call(agent: SQLAgent, sink: MemoryAuditSink) -> None:
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("list_tables", {}, "mcp"),
        ("describe_table", {"table": "employees"}, "mcp"),
        ("describe_table", {"table": "no_such_table"}, "mcp"),
        ("search_schema", {"question": "pay by title"}, "mcp"),
        ("validate_sql", {"sql": "SELECT salary FROM employees"}, "validate"),
        ("run_sql", {"sql": "SELECT salary FROM employees"}, "run_sql"),
        ("run_sql", {"sql": "DELETE FROM employees"}, "run_sql"),
        ("ask", {"question": QUESTION}, "ask"),
    ]

    async def body(session: ClientSession) -> list[types.CallToolResult]:
        return [await session.call_tool(name, args) for name, args, _ in calls]

    before = len(sink.events)
    in_memory(create_server(agent, role="analyst"), body, client="audit-check")
    events = sink.events[before:]
    assert [e.name for e in events] == [name for _, _, name in calls]
    assert [e.extra["tool"] for e in events] == [tool for tool, _, _ in calls]
    for event in events:
        assert event.role == "analyst"
        assert event.extra["interface"] == "mcp"
        assert event.extra["client"] == "audit-check"
        assert event.extra["transport"] == "stdio"
    assert events[2].verdict == "error"
    assert events[6].verdict == "rejected"
    assert events[1].extra["arguments"] == {"table": "employees"}


def test_roles_are_checked_when_the_server_is_built(agent: SQLAgent, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not defined in the policy"):
        create_server(agent, role="superuser")
    assert create_server(agent) is not None  # the default role (viewer)


@pytest.mark.slow
def test_the_cli_does_not_import_the_sdk() -> None:
    code = "import sys, sqlagent, sqlagent.cli; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class BrokenSink:
    """A real sink whose storage is gone."""

    def emit(self, event: AuditEvent) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("list_tables", {}),
        ("run_sql", {"sql": "SELECT first_name FROM employees"}),
        ("validate_sql", {"sql": "SELECT 1"}),
        ("run_sql", {"sql": "SELECT 1", "bogus": 1}),
    ],
)
def test_a_call_that_cannot_be_audited_withholds_its_result(
    demo: DemoPaths, tool: str, arguments: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    config = AgentConfig.from_file(demo.config)  # on_audit_error: fail (the default)
    with SQLAgent(config, audit=BrokenSink()) as broken:

        async def body(session: ClientSession) -> types.CallToolResult:
            return await session.call_tool(tool, arguments)

        result = in_memory(create_server(broken, role="hr"), body)
    assert result.isError
    assert result.structuredContent is None
    assert text(result) == "the call could not be audited, so its result is withheld"
    assert "audit failed" in caplog.text
