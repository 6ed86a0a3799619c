"""The agent end to end on the real demo database: answers, refusals, self-correction, audit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import DemoPaths
from sqlagent.errors import ConfigError, LLMUnavailableError
from sqlagent.llm import Message, MockLLM
from sqlagent.prompt import question_of
from sqlagent.types import Verdict
from tests.agent.conftest import config_for


def scripted(*answers: str) -> MockLLM:
    """A model that gives ``answers`` in turn (the last one again when they run out)."""
    said: list[str] = list(answers)

    def reply(messages: Sequence[Message]) -> str:
        return said.pop(0) if len(said) > 1 else said[0]

    return MockLLM(function=reply)


def test_answers_with_the_mock_and_bundled_examples(
    agent_with: Any, audit: MemoryAuditSink
) -> None:
    agent = agent_with()
    answer = agent.ask("How many employees are in each department?", role="analyst")
    assert answer.status == "answered"
    assert answer.ok
    assert answer.columns == ("name", "employee_count")
    assert dict(answer.rows)["Engineering"] == 18
    assert answer.verdict is not None
    assert answer.verdict.allowed
    assert len(answer.attempts) == 1
    assert answer.attempts[0].ok
    assert answer.sql is not None
    assert answer.sql.endswith("LIMIT 1000")
    assert {"authorize", "retrieve", "render", "llm", "validate", "execute", "total"} <= set(
        answer.timings or {}
    )
    [event] = audit.events
    assert event.name == "ask"
    assert event.verdict == "allowed"
    assert event.request_id == answer.audit_id
    assert event.row_count == 7
    assert event.role == "analyst"
    assert event.extra["attempts"][0]["verdict"] == "allowed"


def test_no_rows_denied_and_masked_are_told_apart(agent_with: Any) -> None:
    agent = agent_with(
        scripted("SELECT first_name FROM employees WHERE last_name = 'Nobody'"),
    )
    nothing = agent.ask("Who is called Nobody?", role="viewer")
    assert nothing.no_rows
    assert not nothing.denied
    assert not nothing.masked

    pay = "SELECT first_name, salary FROM employees ORDER BY id LIMIT 3"
    masked = agent_with(scripted(pay)).ask("Show pay", role="analyst")
    assert masked.masked
    assert masked.masked_columns == ("employees.salary",)
    assert {row[1] for row in masked.rows} == {"***"}

    denied = agent_with(scripted(pay)).ask("Show pay", role="viewer")
    assert denied.status == "rejected"
    assert denied.denied
    assert not denied.rows
    assert denied.verdict is not None
    assert "column_denied" in denied.verdict.codes


def test_self_correction_feeds_the_validator_message_back(
    agent_with: Any, audit: MemoryAuditSink
) -> None:
    seen: list[list[Message]] = []
    answers = iter(
        ["SELECT nmae FROM departments", "```sql\nSELECT name FROM departments ORDER BY id\n```"]
    )

    def model(messages: Sequence[Message]) -> str:
        seen.append(list(messages))
        return next(answers)

    answer = agent_with(MockLLM(function=model)).ask("List the departments", role="analyst")
    assert answer.ok
    assert len(answer.attempts) == 2
    assert answer.attempts[0].verdict is not None
    assert "unknown_column" in answer.attempts[0].verdict.codes
    retry = seen[1]
    assert [m.role for m in retry[-2:]] == ["assistant", "user"]
    assert "nmae" in retry[-1].content
    assert "name" in retry[-1].content
    assert question_of(retry) == "List the departments"
    [event] = audit.events
    assert [a["verdict"] for a in event.extra["attempts"]] == ["rejected", "allowed"]


@pytest.mark.slow
def test_no_sql_and_execution_errors_are_retried(agent_with: Any) -> None:
    slow = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT COUNT(*) FROM c"
    agent = agent_with(
        scripted("I cannot tell.", slow, "SELECT COUNT(*) FROM departments"), timeout_s=0.5
    )
    answer = agent.ask("How many departments?", role="analyst")
    assert answer.ok
    assert answer.rows == ((7,),)
    first, second, third = answer.attempts
    assert first.sql is None
    assert first.error is not None
    assert second.verdict is not None
    assert second.verdict.allowed
    assert second.error is not None
    assert "time" in second.error.lower()
    assert third.ok


def test_attempts_stop_at_max_attempts_and_on_a_repeated_query(agent_with: Any) -> None:
    agent = agent_with(scripted("SELECT a FROM b", "SELECT c FROM d", "SELECT e FROM f"))
    answer = agent.ask("?", role="analyst")
    assert answer.status == "rejected"
    assert len(answer.attempts) == 3
    assert "unknown_table" in answer.verdict.codes  # type: ignore[union-attr]
    again = agent_with(scripted("SELECT a FROM b")).ask("?", role="analyst")
    assert len(again.attempts) == 2  # the model repeated a refused query: no third round


def test_model_failure_is_a_failed_answer_with_one_event(
    agent_with: Any, audit: MemoryAuditSink
) -> None:
    def down(messages: Sequence[Message]) -> str:
        raise LLMUnavailableError("model server down")

    answer = agent_with(MockLLM(function=down)).ask("How many departments?")
    assert answer.status == "failed"
    assert "model server down" in (answer.error or "")
    [event] = audit.events
    assert event.verdict == "error"
    assert event.error == answer.error


def test_prompt_shows_only_the_role_view_with_safe_samples(agent_with: Any) -> None:
    model = scripted("SELECT name FROM departments")
    agent = agent_with(model)
    agent.ask("Where are the departments?", role="viewer")
    agent.ask("Where are the departments?", role="analyst")
    viewer_prompt = model.calls[0][1].content
    analyst_prompt = model.calls[1][1].content
    for hidden in ("salary", "national_id", "payroll", "gross_pay"):
        assert hidden not in viewer_prompt
    assert "e.g. '" in viewer_prompt  # low-cardinality text columns carry real values
    salary = next(line for line in analyst_prompt.splitlines() if "salary" in line)
    assert "masked" in salary
    assert "e.g." not in salary


def test_second_safety_layer_holds_inside_the_agent(
    agent_with: Any, demo: DemoPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = agent_with(scripted("SELECT 1"))
    write = "DELETE FROM departments"

    def broken_check(sql: str, **kwargs: Any) -> Verdict:  # a validator bug, simulated
        return Verdict(allowed=True, sql=write, original_sql=sql, dialect="sqlite")

    monkeypatch.setattr(agent.guard, "check", broken_check)
    answer = agent.ask("Delete everything", role="admin")
    assert answer.status == "failed"
    assert len(answer.attempts) == 1
    with closing(sqlite3.connect(demo.database)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM departments").fetchone() == (7,)


def test_aask_matches_ask_under_concurrency(agent_with: Any, audit: MemoryAuditSink) -> None:
    agent = agent_with()
    question = "Which projects are still ongoing?"
    expected = agent.ask(question, role="analyst").rows

    async def many() -> list[Any]:
        return await asyncio.gather(*(agent.aask(question, role="analyst") for _ in range(16)))

    answers = asyncio.run(many())
    assert all(a.ok and a.rows == expected for a in answers)
    assert len(audit.events) == 17
    assert len({e.request_id for e in audit.events}) == 17


def test_add_example_checks_and_persists(demo: DemoPaths, tmp_path: Path) -> None:
    store = tmp_path / "examples.jsonl"
    config = config_for(demo, examples=store)
    with SQLAgent(config, audit=MemoryAuditSink()) as agent:  # a mock with no examples yet
        empty = agent.ask("Where is each department?", role="viewer")
        assert empty.status == "failed"
        assert empty.attempts == ()
        assert "no stored example matches: there are none" in (empty.error or "")
        with pytest.raises(ConfigError, match="refused"):
            agent.add_example("Drop it", "DROP TABLE employees")
        with pytest.raises(ConfigError, match="refused"):
            agent.add_example("Ghosts?", "SELECT ghost FROM employees")
        agent.add_example("Where is each department?", "SELECT name, location FROM departments")
        assert agent.ask("where is each department", role="viewer").ok  # rebuilt with it
    with SQLAgent(config, audit=MemoryAuditSink()) as agent:  # the mock now answers from it
        answer = agent.ask("Where is each department?", role="viewer")
        assert answer.ok
        assert answer.columns == ("name", "location")
        assert answer.model == "mock"
        assert answer.reused_example is not None
        assert answer.reused_example.question == "Where is each department?"
        assert answer.reused_example.similarity == pytest.approx(1.0)


def test_unknown_role_gets_the_default_role(agent_with: Any, audit: MemoryAuditSink) -> None:
    answer = agent_with(scripted("SELECT name FROM departments")).ask("?", role="intruder")
    assert answer.ok
    assert answer.role == "viewer"
    assert audit.events[0].extra["requested_role"] == "intruder"


def test_every_failure_still_ends_in_one_audit_event(
    agent_with: Any, audit: MemoryAuditSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(messages: Sequence[Message]) -> str:
        raise RuntimeError("a bug in a user's backend")

    answer = agent_with(MockLLM(function=bug)).ask("How many departments?")
    assert answer.status == "failed"
    assert "RuntimeError" in (answer.error or "")

    agent = agent_with()
    assert agent.retrieval is not None

    def store_down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("chroma server unreachable")

    monkeypatch.setattr(agent.retrieval, "retrieve", store_down)
    down = agent.ask("How many departments?", role="viewer")
    assert down.status == "failed"
    assert "schema retrieval failed" in (down.error or "")
    assert [e.verdict for e in audit.events] == ["error", "error"]


def test_retrieval_can_be_turned_off(agent_with: Any) -> None:
    model = scripted("SELECT name FROM departments")
    agent = agent_with(model, retrieval={"enabled": False})
    answer = agent.ask("Departments?", role="viewer")
    assert answer.ok
    assert set(answer.tables) == {"departments", "employees", "projects", "assignments"}
    assert "### Examples" not in model.calls[0][1].content
