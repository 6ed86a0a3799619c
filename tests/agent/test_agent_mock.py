"""The demo's mock is honest: it repeats a stored example's SQL only for (nearly) that example's
question, says so in the answer, and fails every other question rather than run a wrong query.
Also: which model answered, empty questions, and the start-up check of the policy's names."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sqlagent.agent import EMPTY_QUESTION, SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import DEMO_QUESTIONS, DemoPaths
from sqlagent.errors import LLMUnavailableError
from sqlagent.llm import FallbackLLM, Message, MockLLM, SerializedLLM
from sqlagent.prompt import question_of
from tests.agent.conftest import config_for

SUITE = Path(__file__).resolve().parents[2] / "eval" / "demo" / "suite.jsonl"
#: Questions the demo's examples do not answer: the mock used to run some stored query anyway.
UNCOVERED = (
    "What is the weather in Paris tomorrow?",
    "List projects with no assignments",
    "Which projects have already finished?",
    "Which departments have employees?",
    "How many hours per week are assigned to each employee?",
)


def rows_of(demo: DemoPaths, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(demo.database)) as db:
        return [tuple(r) for r in db.execute(sql).fetchall()]


@pytest.fixture
def agent(demo: DemoPaths) -> Any:
    with SQLAgent(config_for(demo), audit=MemoryAuditSink()) as built:
        yield built


def test_no_question_of_the_demo_suite_gets_a_wrong_answer(
    agent: SQLAgent, demo: DemoPaths
) -> None:
    items = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines()]
    assert len(items) == 18
    for item in items:
        answer = agent.ask(item["question"], role="admin")
        if answer.ok:  # answered: then it must be right
            assert sorted(map(tuple, answer.rows)) == sorted(rows_of(demo, item["sql"]))
        else:
            assert answer.status == "failed"
            assert answer.attempts == ()  # no SQL was written, none ran
            assert "no stored example matches" in (answer.error or "")


@pytest.mark.parametrize("question", UNCOVERED)
def test_uncovered_questions_fail_and_say_how_to_get_a_real_model(
    agent: SQLAgent, question: str
) -> None:
    answer = agent.ask(question, role="admin")
    assert answer.status == "failed"
    assert answer.sql is None
    assert answer.model is None
    assert answer.reused_example is None
    error = answer.error or ""
    assert f"no stored example matches {question!r} closely enough" in error
    assert "configure a real model" in error
    assert "--llm transformers:PATH[@ADAPTER]" in error


@pytest.mark.parametrize("example", DEMO_QUESTIONS, ids=lambda q: q.question[:30])
def test_stored_questions_are_answered_and_say_so(
    agent: SQLAgent, demo: DemoPaths, example: Any
) -> None:
    for asked in (example.question, example.question.lower().rstrip("?")):
        answer = agent.ask(asked, role="admin")
        assert answer.ok, answer.error
        assert answer.model == "mock"
        reused = answer.reused_example
        assert reused is not None
        assert reused.question == example.question
        assert reused.sql == example.sql
        assert reused.similarity == pytest.approx(1.0)
        assert answer.attempts[-1].reused == reused
        assert answer.rows == tuple(rows_of(demo, example.sql))
        assert answer.to_dict()["reused_example"]["question"] == example.question


def test_the_threshold_comes_from_the_config(demo: DemoPaths) -> None:
    question = "How many employees are in the Sales department?"  # nearest: "... each ..."
    with SQLAgent(config_for(demo), audit=MemoryAuditSink()) as strict:
        assert strict.ask(question, role="admin").status == "failed"
        assert isinstance(strict.llm, MockLLM)
        nearest = strict.llm.nearest(question)
    assert nearest is not None
    config = config_for(demo, mock_min_similarity=round(nearest.similarity - 0.01, 3))
    with SQLAgent(config, audit=MemoryAuditSink()) as lax:
        answer = lax.ask(question, role="admin")
    assert answer.ok  # it runs the stored query: the threshold is the only guard
    assert answer.reused_example is not None
    assert answer.reused_example.similarity == pytest.approx(nearest.similarity)


def test_which_model_answered_through_fallbacks_and_wrappers(demo: DemoPaths) -> None:
    def down(messages: Sequence[Message]) -> str:
        raise LLMUnavailableError("connection refused")

    stored = [(q.question, q.sql) for q in DEMO_QUESTIONS]
    mock = MockLLM(examples=stored, question=question_of, name="memory")
    question = DEMO_QUESTIONS[0].question
    chain = FallbackLLM(MockLLM(function=down, name="local"), SerializedLLM(mock))
    with SQLAgent(config_for(demo), llm=chain, audit=MemoryAuditSink()) as agent:
        answer = agent.ask(question, role="admin")
        again = asyncio.run(agent.aask(question, role="admin"))
    for got in (answer, again):
        assert got.ok
        assert got.model == "memory"
        assert got.reused_example is not None
        assert got.reused_example.question == question
    writer = MockLLM(function=lambda _m: "SELECT name FROM departments", name="writer")
    with SQLAgent(config_for(demo), llm=FallbackLLM(writer, mock), audit=MemoryAuditSink()) as a:
        answer = a.ask(question, role="admin")
    assert answer.ok
    assert answer.model == "writer"
    assert answer.reused_example is None
    assert answer.attempts[0].to_dict()["model"] == "writer"


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_an_empty_question_runs_nothing(demo: DemoPaths, question: str) -> None:
    calls: list[int] = []

    def model(messages: Sequence[Message]) -> str:
        calls.append(1)
        return "SELECT 1"

    audit = MemoryAuditSink()
    with SQLAgent(config_for(demo), llm=MockLLM(function=model), audit=audit) as agent:
        answers = [agent.ask(question), asyncio.run(agent.aask(question))]
    for answer in answers:
        assert answer.status == "failed"
        assert answer.error == EMPTY_QUESTION
        assert answer.attempts == ()
        assert "retrieve" not in (answer.timings or {})
    assert calls == []
    assert len(audit.events) == 2  # still one audit event per call
    assert all(e.error == EMPTY_QUESTION for e in audit.events)


def test_start_up_warns_about_names_the_policy_gets_wrong(
    demo: DemoPaths, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "default_role: viewer\n"
        "roles:\n"
        "  viewer:\n"
        "    tables:\n"
        "      departments: ['*']\n"
        "      employes: [id]\n"
        "      employees: [id, first_nme, ghost]\n"
        "    masked:\n"
        "      employees: [salry]\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="sqlagent.agent"):
        SQLAgent(config_for(demo, policy=policy), audit=MemoryAuditSink()).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        "policy: role 'viewer' (tables) names table 'employes', which is not in the catalog; "
        "did you mean 'employees'?"
    ) in warnings
    assert any(
        "column 'first_nme' of table 'employees'" in w and "'first_name'" in w for w in warnings
    )
    assert any("column 'ghost'" in w for w in warnings)
    assert any("(masked) names column 'salry'" in w and "'salary'" in w for w in warnings)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sqlagent.agent"):
        SQLAgent(config_for(demo), audit=MemoryAuditSink()).close()  # the demo policy is right
    assert not [r for r in caplog.records if "policy:" in r.getMessage()]
