"""MCP `run_sql` round trips on the HR demo: what the protocol adds to the agent's own call.

Builds the demo in a temporary folder and times the same statement, as the same role, three
ways in one run (each after a few unmeasured warm-up calls):

- ``agent.run_sql``: the agent in this process (guard, read-only execution, row cap, one audit
  event); the baseline;
- ``mcp in-memory``: the official MCP client calling ``run_sql`` on ``create_server`` in this
  process through the SDK's in-memory streams (JSON-RPC, schemas, worker thread, audit);
- ``mcp stdio``: the official client spawning ``sqlagent mcp --role ROLE`` once and calling
  ``run_sql`` ``--calls`` times over stdio, as Claude Desktop or Cursor would; then the same
  number of calls in the same session sent without ``ClientSession.call_tool``'s check of each
  result against the tool's output schema, which is a client-side cost.

Times are client-side wall clock per call. Each way audits to its own hash-chained JSONL file,
so the audit write is in every figure. The demo's mock model is not involved (``run_sql`` runs
caller SQL).

    python benchmarks/mcp_bench.py [--calls N] [--warmup N] [--role R] [--sql SQL] [--json]

With --json the last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import yaml
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.memory import create_connected_server_and_client_session
from rich.console import Console
from rich.table import Table

from sqlagent.agent import SQLAgent
from sqlagent.config import AgentConfig
from sqlagent.demo import write_demo
from sqlagent.mcp import create_server

SQL = (
    "SELECT d.name, COUNT(e.id) AS employees FROM departments AS d "
    "LEFT JOIN employees AS e ON e.department_id = d.id GROUP BY d.id, d.name"
)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p95_ms": round(_percentile(values, 0.95), 3),
        "min_ms": round(min(values), 3),
        "max_ms": round(max(values), 3),
    }


def _sqlagent() -> str:
    beside = Path(sys.executable).with_name("sqlagent")
    return str(beside) if beside.exists() else "sqlagent"


async def _timed_calls(
    session: ClientSession,
    arguments: dict[str, Any],
    warmup: int,
    calls: int,
    *,
    check_output: bool = True,
) -> list[float]:
    """``calls`` timed ``run_sql`` calls. ``check_output=False`` sends the same request without
    ``ClientSession.call_tool``'s check of the result against the tool's output schema."""
    request = types.ClientRequest(
        types.CallToolRequest(
            params=types.CallToolRequestParams(name="run_sql", arguments=arguments)
        )
    )

    async def call() -> types.CallToolResult:
        if check_output:
            return await session.call_tool("run_sql", arguments)
        return await session.send_request(request, types.CallToolResult)

    for _ in range(warmup):
        await call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - start) * 1000)
        if result.isError:
            raise SystemExit(f"run_sql failed: {result.content}")
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--role", default="analyst")
    parser.add_argument("--sql", default=SQL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    console = Console(stderr=args.json)
    arguments = {"sql": args.sql}
    results: dict[str, list[float]] = {}
    spawn_s = 0.0

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        demo = write_demo(folder)
        config = yaml.safe_load(demo.config.read_text())
        config["retrieval"] = {"embedder": "hashing", "store": "memory"}
        demo.config.write_text(yaml.safe_dump(config))

        # In-process: a separate audit file, so no two writers share one hash chain.
        local = AgentConfig.from_mapping(
            {**config, "audit_log": "audit-local.jsonl"}, base_dir=folder
        )
        with SQLAgent(local) as agent:
            for _ in range(args.warmup):
                agent.run_sql(args.sql, role=args.role)
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                answer = agent.run_sql(args.sql, role=args.role)
                times.append((time.perf_counter() - start) * 1000)
                if not answer.ok:
                    raise SystemExit(f"run_sql failed: {answer.error or answer.verdict}")
            results["agent.run_sql (in-process)"] = times

            async def in_memory() -> list[float]:
                server = create_server(agent, role=args.role)
                async with create_connected_server_and_client_session(server) as session:
                    return await _timed_calls(session, arguments, args.warmup, args.calls)

            results["mcp in-memory (same process)"] = anyio.run(in_memory)

        params = StdioServerParameters(
            command=_sqlagent(),
            args=["mcp", "--config", str(demo.config), "--role", args.role],
            cwd=folder,
        )

        async def over_stdio() -> tuple[list[float], list[float]]:
            nonlocal spawn_s
            start = time.perf_counter()
            info = types.Implementation(name="mcp_bench", version="1")
            async with (
                stdio_client(params) as (read, write),
                ClientSession(read, write, client_info=info) as session,
            ):
                await session.initialize()
                spawn_s = time.perf_counter() - start
                checked = await _timed_calls(session, arguments, args.warmup, args.calls)
                unchecked = await _timed_calls(
                    session, arguments, args.warmup, args.calls, check_output=False
                )
                return checked, unchecked

        checked, unchecked = anyio.run(over_stdio)
        results["mcp stdio (sqlagent mcp)"] = checked
        results["  same, no client output-schema check"] = unchecked
        audited = len((folder / "audit.jsonl").read_text().splitlines())

    stats = {name: _stats(values) for name, values in results.items()}
    table = Table(title=f"run_sql on the HR demo as {args.role}: {args.calls} calls each (ms)")
    for column in ("way", "p50", "p95", "min", "max"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for name, figures in stats.items():
        table.add_row(
            name, *(f"{figures[k]:.2f}" for k in ("p50_ms", "p95_ms", "min_ms", "max_ms"))
        )
    console.print(table)
    base = stats["agent.run_sql (in-process)"]["p50_ms"]
    memory = stats["mcp in-memory (same process)"]["p50_ms"]
    stdio = stats["mcp stdio (sqlagent mcp)"]["p50_ms"]
    raw = stats["  same, no client output-schema check"]["p50_ms"]
    console.print(
        f"MCP overhead at p50: +{memory - base:.2f} ms in memory, +{stdio - base:.2f} ms over "
        f"stdio with the official client, of which {stdio - raw:.2f} ms is the client checking "
        f"the result against the output schema (jsonschema.validate re-checks the schema on "
        f"every call); server start to initialized {spawn_s:.2f} s; {audited} audit events from "
        f"the stdio server for {2 * (args.calls + args.warmup)} calls"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "calls": args.calls,
                    "role": args.role,
                    "agent_run_sql": stats["agent.run_sql (in-process)"],
                    "mcp_in_memory": stats["mcp in-memory (same process)"],
                    "mcp_stdio": stats["mcp stdio (sqlagent mcp)"],
                    "mcp_stdio_no_output_check": stats["  same, no client output-schema check"],
                    "stdio_overhead_p50_ms": round(stdio - base, 3),
                    "client_output_check_p50_ms": round(stdio - raw, 3),
                    "in_memory_overhead_p50_ms": round(memory - base, 3),
                    "stdio_start_s": round(spawn_s, 3),
                    "stdio_audit_events": audited,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
