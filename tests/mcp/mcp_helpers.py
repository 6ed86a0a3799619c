"""MCP test plumbing: demos with fast retrieval, the real ``sqlagent`` console script, an HTTP
server process on a free loopback port, and the audit log as the tests read it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
import yaml
from mcp import ClientSession, types
from mcp.shared.memory import create_connected_server_and_client_session

from sqlagent.demo import DemoPaths, write_demo

T = TypeVar("T")

#: The console script installed next to the interpreter running the tests (``sqlagent.cli``
#: has no ``__main__``, so ``python -m`` is not an option).
SQLAGENT = str(Path(sys.executable).with_name("sqlagent"))
#: plain API key -> role, given to HTTP servers through SQLAGENT_API_KEYS.
KEYS = {"key-viewer": "viewer", "key-analyst": "analyst", "key-hr": "hr"}


def initialize(client: str) -> dict[str, Any]:
    """A raw JSON-RPC ``initialize`` request from a client named ``client``."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": client, "version": "0"}},
    }  # fmt: skip


def one_call(client: str, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw messages of a session that makes one tool call: initialize, initialized, call."""
    return [
        initialize(client),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": tool, "arguments": arguments}},
    ]  # fmt: skip


def fast_demo(path: Path) -> DemoPaths:
    """The demo with its own agent config, retrieval made fast (hashing embedder, memory
    store); the config's relative paths (audit.jsonl, examples) resolve in ``path``."""
    demo = write_demo(path)
    config = yaml.safe_load(demo.config.read_text())
    config["retrieval"] = {"embedder": "hashing", "store": "memory"}
    demo.config.write_text(yaml.safe_dump(config))
    return demo


def audit_lines(demo: DemoPaths) -> list[dict[str, Any]]:
    path = demo.config.parent / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def in_memory(
    server: Any, body: Callable[[ClientSession], Awaitable[T]], client: str = "pytest-mcp"
) -> T:
    """Run ``body`` with an official client session connected to ``server`` in memory."""

    async def main() -> T:
        info = types.Implementation(name=client, version="1.0")
        async with create_connected_server_and_client_session(server, client_info=info) as s:
            return await body(s)

    return anyio.run(main)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLAGENT_")}
    env.update(extra)
    return env


@contextmanager
def http_server(
    demo: DemoPaths, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    """``sqlagent mcp --transport http`` on a free port; yields its MCP URL and stderr file."""
    log = demo.config.parent / "server.err"
    keys = ",".join(f"{k}:{r}" for k, r in KEYS.items())
    command = [SQLAGENT, "mcp", "--config", str(demo.config), "--transport", "http",
               "--port", "0", *args]  # fmt: skip
    with log.open("w") as err:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env if env is not None else clean_env(SQLAGENT_API_KEYS=keys),
            cwd=demo.config.parent,
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            found = re.search(r"(http://\S+/mcp)", log.read_text())
            if found:
                url = found.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the MCP server did not start:\n{log.read_text()[-3000:]}")
            else:
                time.sleep(0.05)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
