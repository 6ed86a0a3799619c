"""``sqlagent audit verify`` through click's CliRunner, on real chained files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent.audit import AuditEvent, JsonlAuditSink
from sqlagent.cli._audit import audit


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    with JsonlAuditSink(path) as sink:
        for i in range(8):
            sink.emit(AuditEvent(name="validate", verdict="allowed", sql_in=f"SELECT {i}"))
    return path


def head_of(path: Path) -> str:
    last = path.read_text(encoding="utf-8").splitlines()[-1]
    head: str = json.loads(last)["hash"]
    return head


def test_verify_ok(log: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", str(log)])
    assert result.exit_code == 0, result.output
    assert result.output == f"OK: 8 lines, head {head_of(log)}\n"


def test_verify_reports_each_problem_and_exits_1(log: Path) -> None:
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace("SELECT 1", "SELECT 100")
    del lines[4]
    log.write_text("".join(lines), encoding="utf-8")
    result = CliRunner().invoke(audit, ["verify", str(log)])
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert len(out) == 2
    assert out[0].startswith("line 2: edited: ")
    assert out[1].startswith("line 5: dropped: ")
    assert "FAILED: 2 problem(s) in 7 lines" in result.stderr


def test_verify_json(log: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", "--json", str(log)])
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "ok": True,
        "lines": 8,
        "head": head_of(log),
        "problems": [],
    }


def test_verify_json_with_problems(log: Path) -> None:
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    log.write_text("".join(lines), encoding="utf-8")
    result = CliRunner().invoke(audit, ["verify", str(log), "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    assert [(p["line"], p["kind"]) for p in payload["problems"]] == [(4, "reordered")]
    assert payload["problems"][0]["message"]


def test_verify_expect_head_detects_truncation(log: Path) -> None:
    head = head_of(log)
    assert CliRunner().invoke(audit, ["verify", str(log), "--expect-head", head]).exit_code == 0
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(lines[:-1]), encoding="utf-8")
    assert CliRunner().invoke(audit, ["verify", str(log)]).exit_code == 0  # the known limit
    result = CliRunner().invoke(audit, ["verify", str(log), "--expect-head", head.upper()])
    assert result.exit_code == 1
    assert result.stdout.startswith("line 8: truncated: ")


def test_verify_rejects_a_malformed_head(log: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", str(log), "--expect-head", "abc"])
    assert result.exit_code == 2
    assert "64 hexadecimal digits" in result.output


def test_verify_missing_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_verify_directory_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", str(tmp_path)])
    assert result.exit_code == 2


def test_verify_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.touch()
    result = CliRunner().invoke(audit, ["verify", str(path)])
    assert result.exit_code == 0
    assert result.output == f"OK: 0 lines, head {'0' * 64}\n"


def test_help_lists_verify() -> None:
    result = CliRunner().invoke(audit, ["--help"])
    assert result.exit_code == 0
    assert "verify" in result.output
