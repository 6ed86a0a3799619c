"""``sqlagent doctor check`` for a scale-out deployment: the audit database and the replicas'
Redis are reported reachable or not, on the real services."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent.cli._doctor import doctor
from sqlagent.demo import write_demo
from sqlagent.errors import SQLAgentError
from sqlagent.serve import probe_redis
from tests.serve.redisserver import REDIS_URL

pytestmark = pytest.mark.slow  # the real audit database and Redis


def _rows(output: str) -> dict[str, dict[str, object]]:
    data = json.loads(output.strip().splitlines()[-1])
    return {row["check"]: row for row in data["checks"]}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, audit_log: str) -> Path:
    demo = write_demo(tmp_path / "demo")
    text = demo.config.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("audit_log:")]
    config = tmp_path / "agent.yaml"
    config.write_text(
        "\n".join(lines).replace("database: ", f"database: {demo.url}  # ", 1)
        + f"\naudit_log: {json.dumps(audit_log)}\n",
        encoding="utf-8",
    )
    return config


def test_an_audit_database_is_probed(tmp_path: Path) -> None:
    good = _config(tmp_path / "good", f"sqlite:///{tmp_path / 'audit.db'}")
    result = CliRunner().invoke(doctor, ["check", "--config", str(good), "--json"])
    row = _rows(result.output)["audit sink"]
    assert row["status"] == "pass", row
    bad_url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    bad = _config(tmp_path / "bad", bad_url)
    result = CliRunner().invoke(doctor, ["check", "--config", str(bad), "--json"])
    row = _rows(result.output)["audit sink"]
    assert (row["status"], row["blocking"]) == ("fail", True), row
    assert result.exit_code == 1


def test_the_replicas_redis_is_probed(tmp_path: Path) -> None:
    try:
        probe_redis(REDIS_URL, timeout_s=1.0)
    except SQLAgentError as exc:
        pytest.skip(f"no Redis on 127.0.0.1:6379: {exc}")
    serve = tmp_path / "serve.yaml"
    serve.write_text(f"redis_url: {REDIS_URL}\n", encoding="utf-8")
    result = CliRunner().invoke(doctor, ["check", "--serve-config", str(serve), "--json"])
    row = _rows(result.output)["redis"]
    assert row["status"] == "pass", row
    assert "Redis" in str(row["detail"])
    serve.write_text(f"redis_url: redis://127.0.0.1:{_closed_port()}/0\n", encoding="utf-8")
    result = CliRunner().invoke(doctor, ["check", "--serve-config", str(serve), "--json"])
    row = _rows(result.output)["redis"]
    assert (row["status"], row["blocking"]) == ("fail", True), row
    assert result.exit_code == 1
