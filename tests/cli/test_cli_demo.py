"""``sqlagent demo init`` through click's CliRunner, on the ``demo`` group itself."""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent.cli._demo import demo
from sqlagent.demo import demo_policy_text


def test_init_writes_files_and_prints_example(tmp_path: Path) -> None:
    target = tmp_path / "out"
    result = CliRunner().invoke(demo, ["init", str(target)])
    assert result.exit_code == 0, result.output
    database = (target / "hr.sqlite").resolve()
    policy = (target / "policy.yaml").resolve()
    assert str(database) in result.output
    assert str(policy) in result.output
    assert policy.read_text(encoding="utf-8") == demo_policy_text()
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM employees").fetchone() == (60,)

    line = next(x for x in result.output.splitlines() if "sqlagent validate" in x)
    argv = shlex.split(line)
    assert argv[:2] == ["sqlagent", "validate"]
    assert argv[argv.index("--db") + 1] == f"sqlite:///{database.as_posix()}"
    assert argv[argv.index("--policy") + 1] == str(policy)
    assert argv[argv.index("--role") + 1] == "analyst"
    assert argv[-1].startswith("SELECT")


def test_init_defaults_to_demo_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(demo, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "hr.sqlite").is_file()
    assert (tmp_path / "demo" / "policy.yaml").is_file()


def test_init_refuses_existing_files_without_force(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(demo, ["init", str(tmp_path)]).exit_code == 0
    (tmp_path / "policy.yaml").write_text("edited")

    result = runner.invoke(demo, ["init", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert "Traceback" not in result.output
    assert (tmp_path / "policy.yaml").read_text() == "edited"

    result = runner.invoke(demo, ["init", str(tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "policy.yaml").read_text(encoding="utf-8") == demo_policy_text()


@pytest.mark.parametrize("args", [["--help"], ["init", "--help"]])
def test_help(args: list[str]) -> None:
    result = CliRunner().invoke(demo, args)
    assert result.exit_code == 0
    assert "Usage:" in result.output
