"""``sqlagent mcp --transport http``: a real server process on a loopback port, the official
streamable-HTTP client, raw HTTP for what happens before MCP, and the LangChain adapters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest
from click.testing import CliRunner
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession, types
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from sqlagent.cli import main
from sqlagent.demo import DemoPaths
from tests.mcp.mcp_helpers import KEYS, audit_lines, clean_env, fast_demo, http_server, initialize
from tests.serve.redisserver import SharedRedis, free_port

pytestmark = pytest.mark.slow  # integration: real processes, servers or models

JWT_SECRET = "j" * 40
INIT = initialize("raw")
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
SALARIES = "SELECT first_name, salary FROM employees ORDER BY id"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoPaths, str]]:
    demo = fast_demo(tmp_path_factory.mktemp("mcp-http"))
    serve_yaml = demo.config.parent / "serve.yaml"
    serve_yaml.write_text("jwt: {algorithm: HS256, key_env: SQLAGENT_JWT_KEY}\n")
    keys = ",".join(f"{k}:{r}" for k, r in KEYS.items())
    env = clean_env(SQLAGENT_API_KEYS=keys, SQLAGENT_JWT_KEY=JWT_SECRET)
    with http_server(demo, "--serve-config", str(serve_yaml), env=env) as (url, _log):
        yield demo, url


def token(role: str, name: str = "carol") -> str:
    claims = {"sub": name, "role": role, "exp": int(time.time()) + 300}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def session_calls(
    url: str, credential: str, calls: list[tuple[str, dict[str, Any]]], client: str = "pytest-http"
) -> list[types.CallToolResult]:
    async def run() -> list[types.CallToolResult]:
        info = types.Implementation(name=client, version="0.1")
        async with (
            create_mcp_http_client(headers=bearer(credential)) as http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(read, write, client_info=info) as session,
        ):
            await session.initialize()
            return [await session.call_tool(name, args) for name, args in calls]

    return anyio.run(run)


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-key"), {"X-API-Key": "wrong-key"}, {"Authorization": "Basic abc"}],
)
def test_without_a_valid_credential_http_says_401_before_mcp(
    served: tuple[DemoPaths, str], headers: dict[str, str]
) -> None:
    demo, url = served
    before = len(audit_lines(demo))
    reply = httpx.post(url, json=INIT, headers={**MCP_HEADERS, **headers})
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert reply.json()["error"]["type"] == "unauthorized"  # ours, not a JSON-RPC reply
    assert "mcp-session-id" not in reply.headers
    refused = audit_lines(demo)[before:]
    assert [(e["name"], e["verdict"], e["extra"]["http_status"]) for e in refused] == [
        ("mcp", "rejected", 401)
    ]


def test_a_token_for_a_role_outside_the_policy_gets_403(served: tuple[DemoPaths, str]) -> None:
    _demo, url = served
    reply = httpx.post(url, json=INIT, headers={**MCP_HEADERS, **bearer(token("root"))})
    assert reply.status_code == 403
    assert "not in the policy" in reply.json()["error"]["message"]


def test_each_credential_gets_its_own_role(served: tuple[DemoPaths, str]) -> None:
    demo, url = served
    before = len(audit_lines(demo))
    calls = [("run_sql", {"sql": SALARIES, "max_rows": 2})]
    analyst = session_calls(url, "key-analyst", calls)[0].structuredContent
    hr = session_calls(url, token("hr"), calls)[0].structuredContent  # a JWT
    assert analyst is not None
    assert hr is not None
    assert analyst["role"] == "analyst"
    assert [r[1] for r in analyst["rows"]] == ["***", "***"]
    assert hr["role"] == "hr"
    assert all(isinstance(r[1], int) for r in hr["rows"])
    events = audit_lines(demo)[before:]
    assert [(e["name"], e["role"], e["extra"]["caller"], e["extra"]["via"]) for e in events] == [
        ("run_sql", "analyst", "env-2", "api_key"),
        ("run_sql", "hr", "jwt:carol", "jwt"),
    ]
    assert {e["extra"]["client"] for e in events} == {"pytest-http"}
    assert {e["extra"]["transport"] for e in events} == {"http"}


def test_the_viewer_is_refused_what_the_policy_hides(served: tuple[DemoPaths, str]) -> None:
    demo, url = served
    calls = [
        ("list_tables", {}),
        ("describe_table", {"table": "payroll"}),
        ("run_sql", {"sql": "SELECT gross_pay FROM payroll"}),
        ("run_sql", {"sql": "SELECT national_id FROM employees"}),
        ("run_sql", {"sql": "DROP TABLE employees"}),
        ("run_sql", {"sql": "SELECT 1", "role": "admin"}),
    ]
    before = len(audit_lines(demo))
    tables, hidden, table, column, drop, role = session_calls(url, "key-viewer", calls)
    assert tables.structuredContent is not None
    assert "payroll" not in {t["name"] for t in tables.structuredContent["tables"]}
    assert hidden.isError
    assert "no table 'payroll' in your view" in text(hidden)
    assert table.isError
    assert "Table payroll is not available to this role" in text(table)
    assert column.isError
    assert "national_id" in text(column)
    assert drop.isError
    assert "Only SELECT queries are allowed" in text(drop)
    assert role.isError
    assert "'role' is not an argument" in text(role)
    events = audit_lines(demo)[before:]
    assert len(events) == len(calls)  # exactly one event per tool call
    assert [e["extra"]["tool"] for e in events] == [name for name, _ in calls]
    assert {e["role"] for e in events} == {"viewer"}


def test_a_session_cannot_change_hands(served: tuple[DemoPaths, str]) -> None:
    _demo, url = served
    opened = httpx.post(url, json=INIT, headers={**MCP_HEADERS, **bearer("key-analyst")})
    assert opened.status_code == 200
    session = opened.headers["mcp-session-id"]
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    other = httpx.post(
        url, json=call, headers={**MCP_HEADERS, **bearer("key-hr"), "mcp-session-id": session}
    )
    assert other.status_code == 404
    httpx.delete(url, headers={**bearer("key-analyst"), "mcp-session-id": session})


def test_langchain_loads_and_calls_the_tools(served: tuple[DemoPaths, str]) -> None:
    _demo, url = served
    client = MultiServerMCPClient(
        {"hr": {"transport": "streamable_http", "url": url, "headers": bearer("key-analyst")}}
    )

    async def run() -> tuple[list[str], Any, Any]:
        async with client.session("hr") as session:
            tools = {tool.name: tool for tool in await load_mcp_tools(session)}
            rows = await tools["run_sql"].ainvoke({"sql": SALARIES, "max_rows": 1})
            refused = await tools["run_sql"].ainvoke({"sql": "DELETE FROM employees"})
            return sorted(tools), rows, refused

    names, rows, refused = anyio.run(run)
    assert names == sorted(
        ["ask", "describe_table", "list_tables", "run_sql", "search_schema", "validate_sql"]
    )
    assert '"***"' in str(rows)
    assert "Only SELECT queries are allowed" in str(refused)


def test_http_without_a_policy_is_refused_unless_single_user(tmp_path: Path) -> None:
    demo = fast_demo(tmp_path)
    result = CliRunner().invoke(main, ["mcp", "--db", demo.url, "--transport", "http"])
    assert result.exit_code == 2
    assert "single_user: true" in result.output


def test_each_credential_has_a_rate_limit_as_in_serve(tmp_path: Path) -> None:
    """The serve config's token bucket holds over MCP too: ``burst`` requests, then 429 with
    ``Retry-After`` before any MCP handling, audited; another credential is not affected."""
    demo = fast_demo(tmp_path)
    serve_yaml = demo.config.parent / "serve.yaml"
    serve_yaml.write_text("limits: {rate_per_minute: 1, burst: 3}\n")
    with http_server(demo, "--serve-config", str(serve_yaml)) as (url, _log):
        before = len(audit_lines(demo))
        codes = [
            httpx.post(url, json=INIT, headers={**MCP_HEADERS, **bearer("key-analyst")})
            for _ in range(4)
        ]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        limited = codes[-1]
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["type"] == "rate_limited"
        other = httpx.post(url, json=INIT, headers={**MCP_HEADERS, **bearer("key-hr")})
        assert other.status_code == 200
        refused = [e for e in audit_lines(demo)[before:] if e["verdict"] == "rejected"]
        assert [(e["name"], e["role"], e["extra"]["http_status"]) for e in refused] == [
            ("mcp", "analyst", 429)
        ]


def test_a_caller_without_credential_keeps_its_bucket_across_connections(tmp_path: Path) -> None:
    """Anonymous callers (``default_role``) are told apart by address, not by port: each
    ``httpx.post`` opens a new connection, and the bucket still empties."""
    demo = fast_demo(tmp_path)
    serve_yaml = demo.config.parent / "serve.yaml"
    serve_yaml.write_text("default_role: viewer\nlimits: {rate_per_minute: 1, burst: 2}\n")
    with http_server(demo, "--serve-config", str(serve_yaml)) as (url, _log):
        codes = [httpx.post(url, json=INIT, headers=MCP_HEADERS).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_replicas_share_each_credentials_bucket_through_redis(
    tmp_path: Path, shared_redis: SharedRedis
) -> None:
    """Two MCP servers with one ``redis_url``: a burst of 3 admits 3 requests across both."""
    demo = fast_demo(tmp_path)
    serve_yaml = demo.config.parent / "serve.yaml"
    serve_yaml.write_text(
        f"redis_url: {shared_redis.url}\nredis: {{key_prefix: {shared_redis.prefix}}}\n"
        "limits: {rate_per_minute: 1, burst: 3}\n"
    )
    headers = {**MCP_HEADERS, **bearer("key-analyst")}
    with (
        http_server(demo, "--serve-config", str(serve_yaml)) as (first, _),
        http_server(demo, "--serve-config", str(serve_yaml)) as (second, _),
    ):
        codes = [httpx.post(url, json=INIT, headers=headers).status_code
                 for url in (first, second, first, second, first)]  # fmt: skip
    assert codes == [200, 200, 200, 429, 429]
    assert any(":rate:" in key for key in shared_redis.stored_keys())


def test_an_unreachable_redis_is_503_unless_limits_fail_open(tmp_path: Path) -> None:
    demo = fast_demo(tmp_path)
    serve_yaml = demo.config.parent / "serve.yaml"
    redis = f"redis_url: redis://127.0.0.1:{free_port()}/0\n"
    serve_yaml.write_text(redis + "redis: {timeout_s: 0.5}\nlimits: {retry_after_s: 7}\n")
    headers = {**MCP_HEADERS, **bearer("key-analyst")}
    with http_server(demo, "--serve-config", str(serve_yaml)) as (url, log):
        before = len(audit_lines(demo))
        refused = httpx.post(url, json=INIT, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "7"
        assert refused.json()["error"]["type"] == "unavailable"
        events = [e for e in audit_lines(demo)[before:] if e["verdict"] == "rejected"]
        assert [(e["role"], e["extra"]["http_status"]) for e in events] == [("analyst", 503)]
        assert "Redis unreachable" in log.read_text()
    serve_yaml.write_text(redis + "redis: {timeout_s: 0.5, limits_fail_open: true}\n")
    with http_server(demo, "--serve-config", str(serve_yaml)) as (url, _log):
        assert httpx.post(url, json=INIT, headers=headers).status_code == 200
