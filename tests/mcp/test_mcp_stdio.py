"""``sqlagent mcp`` over stdio: the real console script, spawned by the official MCP client, and
its usage errors. Standard output must carry protocol messages and nothing else."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from sqlagent.cli import main
from sqlagent.demo import DemoPaths
from tests.mcp.mcp_helpers import SQLAGENT, audit_lines, clean_env, fast_demo, one_call

CLIENT = "pytest-stdio"


@pytest.fixture
def demo(tmp_path: Path) -> DemoPaths:
    return fast_demo(tmp_path)


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.slow
def test_a_stdio_session_runs_as_its_role_and_audits_each_call(demo: DemoPaths) -> None:
    params = StdioServerParameters(
        command=SQLAGENT,
        args=["mcp", "--config", str(demo.config), "--role", "analyst"],
        cwd=demo.config.parent,
    )

    async def session() -> dict[str, Any]:
        info = types.Implementation(name=CLIENT, version="0.1")
        out: dict[str, Any] = {}
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write, client_info=info) as s,
        ):
            await s.initialize()
            out["tools"] = [t.name for t in (await s.list_tools()).tools]
            out["tables"] = await s.call_tool("list_tables", {})
            out["masked"] = await s.call_tool(
                "run_sql", {"sql": "SELECT first_name, salary FROM employees", "max_rows": 2}
            )
            out["denied"] = await s.call_tool(
                "run_sql", {"sql": "SELECT national_id FROM employees"}
            )
            out["delete"] = await s.call_tool("run_sql", {"sql": "DELETE FROM employees"})
            out["hidden"] = await s.call_tool("describe_table", {"table": "secrets"})
        return out

    out = anyio.run(session)
    assert out["tools"] == [
        "list_tables", "describe_table", "search_schema", "validate_sql", "run_sql", "ask"
    ]  # fmt: skip
    assert out["tables"].structuredContent["role"] == "analyst"
    assert [r[1] for r in out["masked"].structuredContent["rows"]] == ["***", "***"]
    assert out["denied"].isError
    assert "national_id" in _text(out["denied"])
    assert out["delete"].isError
    assert "Only SELECT queries are allowed" in _text(out["delete"])
    assert out["hidden"].isError
    assert "no table 'secrets' in your view" in _text(out["hidden"])

    events = [e for e in audit_lines(demo) if e["extra"].get("interface") == "mcp"]
    assert [e["extra"]["tool"] for e in events] == [
        "list_tables", "run_sql", "run_sql", "run_sql", "describe_table"
    ]  # fmt: skip
    assert [e["verdict"] for e in events] == ["allowed", "allowed", "rejected", "rejected", "error"]
    assert {e["role"] for e in events} == {"analyst"}
    assert {e["extra"]["client"] for e in events} == {CLIENT}
    assert {e["extra"]["transport"] for e in events} == {"stdio"}


@pytest.mark.slow
def test_stdout_carries_only_protocol_messages(demo: DemoPaths, tmp_path: Path) -> None:
    """No policy (a warning on stderr) and logging at debug: stdout stays pure JSON-RPC."""
    elsewhere = tmp_path / "client"  # no ./sqlagent.yaml there: --db alone, no policy
    elsewhere.mkdir()
    messages = one_call("raw", "run_sql", {"sql": "SELECT COUNT(*) AS n FROM payroll"})
    with subprocess.Popen(
        [SQLAGENT, "mcp", "--db", demo.url, "--log-level", "debug"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=elsewhere,
    ) as process:
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        try:
            assert process.stdin
            assert process.stdout
            assert process.stderr
            process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
            process.stdin.flush()
            replies = [json.loads(process.stdout.readline()) for _ in range(2)]
            process.stdin.close()  # the client goes away: the server ends cleanly
            rest, stderr = process.stdout.read(), process.stderr.read()
            process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr[-2000:]
    assert rest == ""
    assert [r["id"] for r in replies] == [1, 2]
    assert replies[1]["result"]["structuredContent"]["rows"] == [[720]]
    assert "warning: no role policy" in stderr
    assert "Processing request of type CallToolRequest" in stderr  # logs went to stderr


def test_role_is_a_usage_error_over_http(demo: DemoPaths) -> None:
    args = ["mcp", "--config", str(demo.config), "--transport", "http", "--role", "hr"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--role is for stdio" in result.output


def test_an_unknown_role_exits_2(demo: DemoPaths) -> None:
    result = CliRunner().invoke(main, ["mcp", "--config", str(demo.config), "--role", "root"])
    assert result.exit_code == 2
    assert "role 'root' is not defined in the policy" in result.output


def test_serve_config_is_for_http(demo: DemoPaths) -> None:
    args = ["mcp", "--config", str(demo.config), "--serve-config", "serve.yaml"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--serve-config is for --transport http" in result.output


@pytest.mark.slow
def test_a_call_cut_off_by_the_client_still_leaves_its_event(demo: DemoPaths) -> None:
    """The client sends a call and goes away at once: no reply, but one audit event."""
    messages = one_call("hang-up", "list_tables", {})
    done = subprocess.run(
        [SQLAGENT, "mcp", "--config", str(demo.config)],
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=demo.config.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = [e for e in audit_lines(demo) if e["extra"].get("client") == "hang-up"]
    assert [(e["name"], e["extra"]["tool"], e["role"]) for e in events] == [
        ("mcp", "list_tables", "viewer")
    ]
