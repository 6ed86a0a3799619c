"""``sqlagent ask``, ``index`` and ``examples`` through click's CliRunner on the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sqlagent.cli import main
from sqlagent.demo import DemoPaths, write_demo

QUESTION = "How many employees are in each department?"


@pytest.fixture
def demo(tmp_path: Path) -> DemoPaths:
    """The demo, its config switched to the dependency-free retrieval for speed."""
    paths = write_demo(tmp_path / "demo")
    config = yaml.safe_load(paths.config.read_text(encoding="utf-8"))
    config["retrieval"] = {"embedder": "hashing", "store": "memory"}
    paths.config.write_text(yaml.safe_dump(config), encoding="utf-8")
    return paths


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_ask_json_contract(demo: DemoPaths) -> None:
    code, out = run("ask", "--config", str(demo.config), "--role", "analyst", "--json", QUESTION)
    assert code == 0, out
    data = json.loads(out)
    for key in ("sql", "columns", "rows", "verdict", "violations", "attempts", "audit_id"):
        assert key in data
    assert data["verdict"] == "allowed"
    assert ["Engineering", 18] in data["rows"]
    events = demo.config.parent.joinpath("audit.jsonl").read_text().splitlines()
    assert json.loads(events[-1])["request_id"] == data["audit_id"]


def test_ask_human_output_and_refusal_exit_code(demo: DemoPaths) -> None:
    code, out = run("ask", "--config", str(demo.config), "--role", "analyst", QUESTION)
    assert code == 0
    assert "ANSWERED" in out
    assert "Engineering" in out
    question = "Who are the five highest-paid employees?"
    code, out = run("ask", "--config", str(demo.config), "--role", "viewer", question)
    assert code == 1
    assert "DENIED" in out
    assert "column_denied" in out


def test_ask_usage_errors_exit_2(demo: DemoPaths, tmp_path: Path) -> None:
    code, out = run("ask", QUESTION)
    assert code == 2
    assert "no database" in out
    code, out = run("ask", "--db", demo.url, "--llm", "nonsense", QUESTION)
    assert code == 2
    assert "unknown LLM backend" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: sqlite:///x.db\nmax_attempts: 0\nsurprise: 1\n")
    code, out = run("ask", "--config", str(bad), QUESTION)
    assert code == 2
    assert "max_attempts" in out
    assert "surprise" in out
    assert "Traceback" not in out


def test_flags_override_the_config(demo: DemoPaths, tmp_path: Path) -> None:
    question = "Who are the five highest-paid employees?"
    code, out = run("ask", "--config", str(demo.config), "--role", "hr", "--json", question)
    assert code == 0
    assert len(json.loads(out)["rows"]) == 5
    open_policy = tmp_path / "open.yaml"
    open_policy.write_text("default_role: all\nroles:\n  all:\n    tables:\n      '*': ['*']\n")
    code, out = run("ask", "--config", str(demo.config), "--policy", str(open_policy), question)
    assert code == 0  # the default role of the policy given on the command line may read salary
    code, out = run("ask", "--db", demo.url, question)  # no config: the mock has no examples
    assert code == 2
    assert "examples" in out


def test_examples_add_and_list(demo: DemoPaths) -> None:
    code, out = run(
        "examples", "add", "--config", str(demo.config),
        "Where is each department?", "SELECT name, location FROM departments",
    )  # fmt: skip
    assert code == 0, out
    code, out = run("examples", "list", "--config", str(demo.config))
    assert json.loads(out.splitlines()[-1])["question"] == "Where is each department?"
    code, out = run("examples", "add", "--config", str(demo.config), "x", "DELETE FROM employees")
    assert code == 2
    assert "refused" in out


def test_index_builds_every_role_view(demo: DemoPaths) -> None:
    code, out = run("index", "--config", str(demo.config))
    assert code == 0, out
    for role in ("admin", "analyst", "hr", "viewer"):
        assert f"role {role}:" in out


def test_default_config_uses_chromadb_and_minilm(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    pytest.importorskip("sentence_transformers")
    paths = write_demo(tmp_path / "demo")
    code, out = run("ask", "--config", str(paths.config), "--role", "analyst", "--json", QUESTION)
    assert code == 0, out
    assert json.loads(out)["status"] == "answered"
    assert (paths.config.parent / ".sqlagent" / "index" / "chroma.sqlite3").is_file()
