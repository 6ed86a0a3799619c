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


def run_split(*args: str) -> tuple[int, str, str]:
    """Exit code, standard output and standard error apart."""
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


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
    # Which model answered, and the stored question the mock repeated.
    assert data["model"] == "mock"
    assert data["reused_example"]["question"] == QUESTION
    assert data["reused_example"]["similarity"] == 1.0
    assert data["attempts"][0]["model"] == "mock"
    assert data["attempts"][0]["reused_example"]["question"] == QUESTION


@pytest.mark.slow
def test_the_mock_refuses_what_no_stored_question_matches(demo: DemoPaths) -> None:
    for question in ("What is the weather in Paris tomorrow?", "List projects with no assignments"):
        code, out = run("ask", "--config", str(demo.config), "--role", "admin", "--json", question)
        assert code == 1, out
        data = json.loads(out)
        assert data["status"] == "failed"
        assert data["sql"] is None
        assert data["attempts"] == []
        assert data["model"] is None
        assert data["reused_example"] is None
        assert "no stored example matches" in data["error"]
        assert "--llm openai:BASE_URL --model NAME" in data["error"]
        code, out = run("ask", "--config", str(demo.config), "--role", "admin", question)
        assert code == 1
        assert "FAILED" in out
        assert "no stored example matches" in out
        assert "configure a real model" in out


def test_ask_human_output_and_refusal_exit_code(demo: DemoPaths) -> None:
    code, out = run("ask", "--config", str(demo.config), "--role", "analyst", QUESTION)
    assert code == 0
    assert "ANSWERED" in out
    assert "Engineering" in out
    assert (
        f'model: mock, repeating the SQL of the stored question "{QUESTION}" (similarity 1.00)'
        in out
    )
    code, out = run("ask", "--config", str(demo.config), "how many employees in each department")
    assert code == 0
    assert "(similarity 0.99)" in out
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


@pytest.mark.slow
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
    assert "no model to answer with" in out
    assert "--llm" in out
    assert "openai:BASE_URL --model NAME" in out
    assert "examples" in out


def test_no_config_reports_a_missing_database_first(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nope.sqlite'}"
    code, out = run("ask", "--db", missing, QUESTION)
    assert code == 2
    assert "not found" in out
    assert "model" not in out
    assert not (tmp_path / "nope.sqlite").exists()


@pytest.mark.parametrize("question", ["", "   ", "\t\n"])
def test_an_empty_question_is_a_usage_error_and_runs_nothing(
    demo: DemoPaths, question: str
) -> None:
    audit = demo.config.parent / "audit.jsonl"
    code, out = run("ask", "--config", str(demo.config), question)
    assert code == 2
    assert "QUESTION is empty" in out
    assert not audit.exists()  # no agent was built, nothing was asked or audited


def test_an_unknown_role_warns_on_stderr(demo: DemoPaths) -> None:
    code, out, err = run_split(
        "ask", "--config", str(demo.config), "--role", "intruder", "--json", QUESTION
    )
    assert code == 0
    assert json.loads(out)["role"] == "viewer"  # stdout stays one JSON object
    assert "warning: role 'intruder' is not defined in the policy" in err
    assert "default role 'viewer'" in err
    code, out, err = run_split("ask", "--config", str(demo.config), "--role", "hr", QUESTION)
    assert code == 0
    assert "warning" not in err


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


@pytest.mark.parametrize("command", [["index"], ["examples", "add"], ["examples", "list"]])
def test_commands_that_ask_no_model_take_no_model_options(command: list[str]) -> None:
    code, out = run(*command, "--help")
    assert code == 0
    assert "--llm" not in out
    assert "--model" not in out
    code, out = run(*command, "--llm", "mock")
    assert code == 2
    assert "No such option" in out


def test_the_first_example_can_be_added_without_a_model(demo: DemoPaths) -> None:
    demo.examples.write_text("", encoding="utf-8")  # the mock starts with nothing to repeat
    code, out = run("ask", "--config", str(demo.config), QUESTION)
    assert code == 2
    assert "no model to answer with" in out
    code, out = run(
        "examples", "add", "--config", str(demo.config), QUESTION, "SELECT COUNT(*) FROM employees"
    )
    assert code == 0, out
    assert "1 example(s)" in out
    code, out = run("ask", "--config", str(demo.config), "--json", QUESTION)
    assert code == 0, out
    assert json.loads(out)["rows"] == [[60]]


@pytest.mark.slow
def test_default_config_uses_chromadb_and_minilm(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    pytest.importorskip("sentence_transformers")
    paths = write_demo(tmp_path / "demo")
    code, out = run("ask", "--config", str(paths.config), "--role", "analyst", "--json", QUESTION)
    assert code == 0, out
    assert json.loads(out)["status"] == "answered"
    assert (paths.config.parent / ".sqlagent" / "index" / "chroma.sqlite3").is_file()
