"""Replicas of ``sqlagent serve`` as separate processes on loopback ports, for the scale-out
tests and ``benchmarks/serve_bench.py --replicas N``.

Each replica is ``python -m sqlagent.cli serve --config ... --serve-config ...`` with the
environment cleaned of sqlagent's own variables (the files say everything), on a free port of
127.0.0.1; :func:`start_replicas` returns once every one answers ``/ready``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from sqlagent.demo import DemoPaths

__all__ = ["Replica", "replica_files", "start_replicas"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    """One ``sqlagent serve`` process: its base URL, and its log (stderr) in a file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM: uvicorn drains, the lifespan closes the agent (and its audit sinks)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: no drain, no shutdown; as a node that dies."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def replica_files(
    folder: Path,
    demo: DemoPaths,
    *,
    audit_log: str,
    serve: dict[str, Any],
    agent: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write the agent config (the demo with the mock model, fast retrieval and ``audit_log``)
    and the serve config (``serve``) every replica reads; returns their paths."""
    config = {
        "database": demo.url,
        "policy": str(demo.policy),
        "llm": "mock",
        "examples": str(demo.examples),
        "docs": [str(demo.glossary)],
        "retrieval": {"embedder": "hashing", "store": "memory"},
        "audit_log": audit_log,
        "max_attempts": 1,
        **(agent or {}),
    }
    agent_file, serve_file = folder / "sqlagent.yaml", folder / "serve.yaml"
    agent_file.write_text(yaml.safe_dump(config))
    serve_file.write_text(yaml.safe_dump(serve))
    return agent_file, serve_file


def _spawn(config: Path, serve_config: Path, log: IO[bytes], port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLAGENT_")}
    command = [
        sys.executable, "-m", "sqlagent.cli", "serve",
        "--config", str(config), "--serve-config", str(serve_config),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=log, stderr=log, env=env)


@contextlib.contextmanager
def start_replicas(
    n: int, config: Path, serve_config: Path, *, startup_timeout_s: float = 90.0
) -> Iterator[list[Replica]]:
    """Start ``n`` replicas at once; yield them when all are ready; stop them (SIGTERM, then
    SIGKILL) when the block ends. A replica that exits while starting raises with its log."""
    with tempfile.TemporaryDirectory(prefix="sqlagent-replicas-") as logs:
        replicas: list[Replica] = []
        try:
            for index in range(n):
                path = Path(logs) / f"replica-{index}.log"
                with path.open("wb") as log:
                    port = _free_port()
                    process = _spawn(config, serve_config, log, port)
                replicas.append(Replica(process, f"http://127.0.0.1:{port}", path))
            _wait_ready(replicas, startup_timeout_s)
            yield replicas
        finally:
            for replica in replicas:
                if replica.process.poll() is None:
                    replica.process.send_signal(signal.SIGTERM)
            for replica in replicas:
                replica.stop()


def _wait_ready(replicas: Sequence[Replica], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(replicas)
    with httpx.Client(timeout=2) as client:
        while pending:
            replica = pending[0]
            if replica.process.poll() is not None:
                raise RuntimeError(f"replica {replica.url} exited:\n{replica.output()}")
            try:
                if client.get(f"{replica.url}/ready").status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {replica.url} not ready:\n{replica.output()}")
            time.sleep(0.05)
