"""sqlagent as an MCP server, driven over stdio by the official MCP client.

Builds the HR demo in a temporary folder and starts `sqlagent mcp --config sqlagent.yaml --role
analyst` as a subprocess, the way Claude Desktop or Cursor start it. Then lists the tools and
calls list_tables, describe_table, run_sql (salaries come back masked for the analyst), a
run_sql the policy denies and a DELETE the guard refuses. Each tool call leaves one audit event
in the demo's audit.jsonl, printed at the end.

Run: python examples/mcp_client.py   (needs the mcp extra: pip install 'sqlagent[mcp]')
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import yaml
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from sqlagent.demo import write_demo


def sqlagent_command() -> list[str]:
    """The `sqlagent` console script of this environment (an MCP client config names it)."""
    beside = Path(sys.executable).with_name("sqlagent")
    found = str(beside) if beside.exists() else shutil.which("sqlagent")
    return [found] if found else [sys.executable, "-c", "from sqlagent.cli import main; main()"]


def show(result: types.CallToolResult) -> str:
    """One line (or a few) for a tool result: its JSON, summarised."""
    if result.isError:
        block = result.content[0]
        message = block.text if isinstance(block, types.TextContent) else str(block)
        return "TOOL ERROR: " + message.replace("\n", "\n    ")
    data = result.structuredContent or {}
    if "tables" in data:  # list_tables
        return ", ".join(
            t["name"]
            + (f" (masked: {', '.join(t['masked_columns'])})" if t["masked_columns"] else "")
            for t in data["tables"]
        )
    if "ddl" in data:  # describe_table
        return data["ddl"].replace("\n", "\n  ")
    if "rows" in data:  # run_sql
        return f"{data['columns']} {data['rows']} masked={data['masked_columns']}"
    return json.dumps(data, ensure_ascii=False)[:300]


async def session(folder: Path) -> None:
    command, *prefix = sqlagent_command()
    params = StdioServerParameters(
        command=command,
        args=[*prefix, "mcp", "--config", "sqlagent.yaml", "--role", "analyst"],
        cwd=folder,
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_tables", {}),
        ("describe_table", {"table": "payroll"}),
        ("run_sql", {"sql": "SELECT first_name, salary FROM employees ORDER BY id", "max_rows": 3}),
        ("run_sql", {"sql": "SELECT first_name, national_id FROM employees"}),
        ("run_sql", {"sql": "DELETE FROM employees"}),
    ]
    info = types.Implementation(name="examples/mcp_client.py", version="1.0")
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, client_info=info) as client,
    ):
        init = await client.initialize()
        print(f"server: {init.serverInfo.name} {init.serverInfo.version}")
        tools = await client.list_tools()
        print("tools:", ", ".join(t.name for t in tools.tools))
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            print(f"\n{name}({json.dumps(arguments)})\n  {show(result)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        # The demo config retrieves with MiniLM (exported to ONNX on first use); the hashing
        # embedder keeps this example fast and offline. Everything else is the demo's own.
        config = yaml.safe_load(demo.config.read_text())
        config["retrieval"] = {"embedder": "hashing", "store": "memory"}
        demo.config.write_text(yaml.safe_dump(config))

        anyio.run(session, Path(tmp))

        events = [json.loads(line) for line in (Path(tmp) / "audit.jsonl").read_text().splitlines()]
        print(f"\n{len(events)} audit events, one per tool call:")
        for e in events:
            extra = e["extra"]
            print(f"  {e['name']:8} {e['verdict']:8} role={e['role']} tool={extra['tool']} "
                  f"client={extra['client']}")  # fmt: skip


if __name__ == "__main__":
    main()
