"""Follow-up questions in eval suites: the JSONL ``history`` field, the agent asked with it, and
the project's follow-up suite on the demo database, end to end."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent import AgentConfig, SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.cli import main
from sqlagent.errors import ConfigError
from sqlagent.evaluation import agent_predictor, load_suite, run_eval, write_report
from sqlagent.llm import Message, MockLLM
from sqlagent.prompt import question_of, render_answer
from sqlagent.types import Turn
from tests.conftest import ROOT

FOLLOWUPS = ROOT / "eval" / "demo" / "followups.jsonl"
HEADING = "### Conversation so far\n"


def _write(path: Path, *rows: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _row(**extra: object) -> dict[str, object]:
    return {"question": "and in Chicago?", "sql": "SELECT 1", "database": "demo", **extra}


def _conversation(messages: Sequence[Message]) -> str:
    """The conversation section of a rendered first prompt ('' when it has none)."""
    content = next(m.content for m in messages if m.role == "user")
    if HEADING not in content:
        return ""
    return content.partition(HEADING)[2].partition("\n\n### Question\n")[0]


def test_followup_suite_has_histories_and_gold_that_runs() -> None:
    items = load_suite("jsonl", FOLLOWUPS)
    assert 4 <= len(items) <= 6
    assert all(1 <= len(i.history) <= 2 for i in items)
    assert any(len(i.history) == 2 for i in items)
    # the oracle mock answers by the asked question: each follow-up is asked once
    assert len({i.question for i in items}) == len(items)
    con = sqlite3.connect(f"file:{items[0].db_path}?mode=ro", uri=True)
    try:
        for item in items:
            assert con.execute(item.gold).fetchall(), item.question
            for turn in item.history:
                assert turn.sql is not None
                assert con.execute(turn.sql).fetchall(), turn.question
    finally:
        con.close()


def test_history_accepts_turn_objects_and_bare_questions(tmp_path: Path) -> None:
    suite = _write(
        tmp_path / "s.jsonl",
        _row(history=["Where is each department?", {"question": " Q2 ", "sql": "SELECT 2"}]),
        _row(question="q without history"),
        _row(question="q with empty history", history=[]),
    )
    items = load_suite("jsonl", suite)
    assert items[0].history == (Turn("Where is each department?", None), Turn("Q2", "SELECT 2"))
    assert items[1].history == ()
    assert items[2].history == ()


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("just a string", "history must be a list of turns"),
        ({"question": "q"}, "history must be a list of turns"),
        ([{"question": ""}], "history turn 1: a history turn needs a non-empty 'question'"),
        (["ok", {"question": "q", "sql": 3}], "history turn 2: .*'sql' must be a string"),
        ([{"question": "q", "rows": [[1]]}], "history turn 1: unknown key.*rows"),
        ([7], "history turn 1: a history turn is an object"),
    ],
)
def test_history_errors_name_the_line_and_turn(
    tmp_path: Path, history: object, message: str
) -> None:
    suite = tmp_path / "s.jsonl"
    suite.write_text("# comment\n" + json.dumps(_row(history=history)) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_suite("jsonl", suite)
    assert "s.jsonl:2" in str(info.value)


def test_spider_items_are_single_turn(tmp_path: Path, demo_db: Path) -> None:
    (tmp_path / "database" / "hr").mkdir(parents=True)
    (tmp_path / "database" / "hr" / "hr.sqlite").write_bytes(demo_db.read_bytes())
    entry = {"db_id": "hr", "question": "q", "query": "SELECT 1", "history": ["ignored"]}
    (tmp_path / "dev.json").write_text(json.dumps([entry]), encoding="utf-8")
    assert load_suite("spider", tmp_path)[0].history == ()


def test_agent_eval_of_the_followup_suite_sends_each_history(tmp_path: Path) -> None:
    """Asked with a model that knows each follow-up's gold, the pipeline scores every item
    correct; the prompt each item sent is the runtime's own prompt for that question after that
    history, conversation section included."""
    items = load_suite("jsonl", FOLLOWUPS)
    model = MockLLM(responses={i.question: i.gold for i in items}, question=question_of)
    predictor, close = agent_predictor(model)
    try:
        run = run_eval(items, predictor=predictor)
    finally:
        close()
    assert [i["category"] for i in run.items] == ["correct"] * len(items)
    assert run.summary["overall"]["exec_match"] == 1.0
    assert [i["history"] for i in run.items] == [[t.to_dict() for t in i.history] for i in items]

    sent = list(model.calls)
    assert len(sent) == len(items)  # one attempt each
    config = AgentConfig.from_mapping(
        {"database": items[0].url, "retrieval": {"embedder": "hashing", "store": "memory"}}
    )
    with SQLAgent(config, llm=MockLLM(responses={}), audit=MemoryAuditSink()) as agent:
        for item, messages in zip(items, sent, strict=True):
            assert messages == agent.prompt_for(item.question, history=item.history)
            section = _conversation(messages)
            for turn in item.history:
                assert f"Question: {turn.question}\n{render_answer(turn.sql or '')}" in section
            assert "read it in that context" in messages[0].content  # the system rule

    write_report(run, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Items not correct" in html  # nothing listed: all correct


def test_report_shows_the_history_of_a_wrong_followup(tmp_path: Path) -> None:
    items = load_suite("jsonl", FOLLOWUPS)[:1]
    run = run_eval(items, predictions=["SELECT name FROM departments"])
    write_report(run, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"after: {items[0].history[0].question}" in html
    saved = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert saved["items"][0]["history"] == [t.to_dict() for t in items[0].history]


def test_cli_oracle_run_of_the_followup_suite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["eval", "--suite", "jsonl", "--data", str(FOLLOWUPS), "--llm", "mock", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["summary"]["overall"]["exec_match"] == 1.0
    assert all(item["history"] for item in data["items"])


def test_cli_oracle_tells_the_same_follow_up_apart_by_its_conversation(tmp_path: Path) -> None:
    """The same follow-up after two conversations has two golds: the oracle keys by both."""
    lines = [
        {
            "question": "And only the first one?",
            "sql": sql,
            "database": "demo",
            "history": [{"question": earlier, "sql": f"SELECT name FROM {table}"}],
        }
        for earlier, table, sql in (
            ("List the departments.", "departments", "SELECT MIN(name) FROM departments"),
            ("List the projects.", "projects", "SELECT MIN(name) FROM projects"),
        )
    ]
    suite = tmp_path / "same.jsonl"
    suite.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["eval", "--suite", "jsonl", "--data", str(suite), "--llm", "mock", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["summary"]["overall"]["exec_match"] == 1.0
