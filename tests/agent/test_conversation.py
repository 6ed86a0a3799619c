"""Follow-up questions: history in the prompt (bounded), in retrieval, in the audit event; roles
never mix; and the agent's single-step tools (view, search_schema, check_sql, run_sql)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from sqlagent.audit import MemoryAuditSink
from sqlagent.errors import ConfigError
from sqlagent.llm import Message, MockLLM
from sqlagent.prompt import bound_history, build_messages, question_of
from sqlagent.types import Turn

BY_DEPT = (
    "SELECT d.name, COUNT(*) AS n FROM employees e JOIN departments d "
    "ON d.id = e.department_id GROUP BY d.name"
)
ENGINEERING = (
    "SELECT d.name, COUNT(*) AS n FROM employees e JOIN departments d "
    "ON d.id = e.department_id WHERE d.name = 'Engineering' GROUP BY d.name"
)
HISTORY_HEADING = "### Conversation so far"


class Recorder:
    """A model that answers from a script and keeps every prompt it was sent."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[list[Message]] = []
        self.mock = MockLLM(function=self._reply)

    def _reply(self, messages: Sequence[Message]) -> str:
        self.prompts.append(list(messages))
        sql = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return f"```sql\n{sql}\n```"


def _user(messages: Sequence[Message]) -> str:
    return next(m.content for m in messages if m.role == "user")


# -- the renderer -----------------------------------------------------------------------------
def test_single_turn_prompt_is_unchanged_by_the_conversation_feature() -> None:
    plain = build_messages("How many?", schema="CREATE TABLE t (a INT);", dialect="sqlite")
    empty = build_messages(
        "How many?", schema="CREATE TABLE t (a INT);", dialect="sqlite", history=()
    )
    assert plain == empty
    assert HISTORY_HEADING not in _user(plain)
    assert "follow up" not in plain[0].content


def test_history_renders_between_examples_and_question() -> None:
    messages = build_messages(
        "and only   for Engineering?",
        schema="CREATE TABLE t (a INT);",
        dialect="sqlite",
        history=[Turn("Headcount per\ndepartment?", BY_DEPT), Turn("Who is new?", None)],
    )
    user = _user(messages)
    section = user.split(HISTORY_HEADING, 1)[1].split("### Question", 1)[0]
    assert "Question: Headcount per department?\n```sql\n" + BY_DEPT + "\n```" in section
    assert "Question: Who is new?\n(no query ran)" in section
    assert section.index("Headcount") < section.index("Who is new")
    assert user.rstrip().endswith("### Question\nand only for Engineering?")
    assert question_of(messages) == "and only for Engineering?"
    assert "follow up on the conversation so far" in messages[0].content


def test_history_is_bounded_by_turns_and_tokens_oldest_first() -> None:
    turns = [Turn(f"question number {i}", f"SELECT {i}") for i in range(10)]
    kept = bound_history(turns, max_turns=3, max_tokens=10_000)
    assert [t.question for t in kept] == [f"question number {i}" for i in (7, 8, 9)]
    assert bound_history(turns, max_turns=0, max_tokens=10_000) == []
    # Each turn costs 3 + 2 tokens: a budget of 12 keeps the two newest.
    assert [t.sql for t in bound_history(turns, max_turns=10, max_tokens=12)] == [
        "SELECT 8",
        "SELECT 9",
    ]
    # A turn that does not fit ends the history: nothing older around the gap.
    big = Turn("word " * 50, "SELECT 1")
    assert bound_history([turns[0], big, turns[1]], max_turns=10, max_tokens=20) == [turns[1]]


# -- the agent --------------------------------------------------------------------------------
def test_follow_up_prompt_carries_history_and_the_audit_event_its_turn(
    agent_with: Any, audit: MemoryAuditSink
) -> None:
    model = Recorder(ENGINEERING)
    agent = agent_with(llm=model.mock)
    answer = agent.ask(
        "and only for Engineering?",
        role="analyst",
        history=[{"question": "How many employees per department?", "sql": BY_DEPT}],
        conversation_id="conv-1",
        audit_context={"interface": "test", "caller": "alice"},
    )
    assert answer.status == "answered", answer.error
    assert answer.rows == (("Engineering", answer.rows[0][1]),)
    user = _user(model.prompts[0])
    assert HISTORY_HEADING in user
    assert "Question: How many employees per department?" in user
    assert BY_DEPT in user
    # Retrieval kept the tables the earlier SQL read in the prompt.
    assert "CREATE TABLE employees" in user
    assert "CREATE TABLE departments" in user
    (event,) = audit.events
    assert event.extra["conversation_id"] == "conv-1"
    assert event.extra["turn"] == 2
    assert event.extra["history_turns"] == 1
    assert event.extra["interface"] == "test"
    assert event.extra["caller"] == "alice"
    assert event.question == "and only for Engineering?"


def test_single_questions_have_no_conversation_fields(
    agent_with: Any, audit: MemoryAuditSink
) -> None:
    agent = agent_with(llm=Recorder(BY_DEPT).mock)
    agent.ask("How many employees per department?", role="analyst")
    (event,) = audit.events
    assert "turn" not in event.extra
    assert "conversation_id" not in event.extra


def test_history_bounds_come_from_the_config(agent_with: Any, audit: MemoryAuditSink) -> None:
    model = Recorder(BY_DEPT)
    agent = agent_with(llm=model.mock, history_turns=1)
    history = [Turn("first old question", "SELECT 1"), Turn("second old question", "SELECT 2")]
    agent.ask("third question", role="analyst", history=history)
    user = _user(model.prompts[0])
    assert "second old question" in user
    assert "first old question" not in user
    assert audit.events[0].extra["turn"] == 3
    assert audit.events[0].extra["history_turns"] == 1
    model = Recorder(BY_DEPT)
    agent = agent_with(llm=model.mock, history_turns=0)
    agent.ask("third question", role="analyst", history=history)
    assert HISTORY_HEADING not in _user(model.prompts[0])


def test_conversation_keeps_its_own_turns_per_role(agent_with: Any, audit: MemoryAuditSink) -> None:
    model = Recorder(BY_DEPT, ENGINEERING, "SELECT name FROM departments")
    agent = agent_with(llm=model.mock)
    analyst = agent.conversation(role="analyst")
    viewer = agent.conversation(role="viewer", conversation_id="v-1")
    first = analyst.ask("How many employees per department?")
    second = analyst.ask("and only for Engineering?")
    other = viewer.ask("Which departments are there?")
    assert [a.status for a in (first, second, other)] == ["answered"] * 3
    assert analyst.turns == [first.as_turn(), second.as_turn()]
    # The query as the model wrote it, not the guard's rewrite (derived tables, masks).
    assert analyst.turns[0].sql == BY_DEPT != first.sql
    assert HISTORY_HEADING not in _user(model.prompts[0])
    assert "How many employees per department?" in _user(model.prompts[1])
    # The viewer's conversation starts empty: nothing of the analyst's reaches its prompt.
    assert HISTORY_HEADING not in _user(model.prompts[2])
    events = audit.events
    assert [e.extra["turn"] for e in events] == [1, 2, 1]
    assert events[0].extra["conversation_id"] == events[1].extra["conversation_id"] == analyst.id
    assert events[2].extra["conversation_id"] == "v-1"
    assert [e.role for e in events] == ["analyst", "analyst", "viewer"]


def test_aask_conversation_matches_ask(agent_with: Any, audit: MemoryAuditSink) -> None:
    model = Recorder(BY_DEPT, ENGINEERING)
    agent = agent_with(llm=model.mock)
    conversation = agent.conversation(role="analyst")

    async def talk() -> None:
        await conversation.aask("How many employees per department?")
        await conversation.aask("and only for Engineering?")

    asyncio.run(talk())
    assert len(conversation.turns) == 2
    assert "How many employees per department?" in _user(model.prompts[1])
    assert [e.extra["turn"] for e in audit.events] == [1, 2]


def test_a_rejected_turn_stays_in_the_history_without_sql(agent_with: Any) -> None:
    model = Recorder("SELECT national_id FROM employees", "SELECT COUNT(*) FROM employees")
    agent = agent_with(llm=model.mock, max_attempts=1)
    conversation = agent.conversation(role="viewer")
    first = conversation.ask("What are the national ids?")
    assert first.status == "rejected"
    conversation.ask("How many employees then?")
    assert conversation.turns[0] == Turn("What are the national ids?", None)
    assert "Question: What are the national ids?\n(no query ran)" in _user(model.prompts[1])


def test_history_sql_on_hidden_tables_adds_nothing_to_the_prompt(agent_with: Any) -> None:
    model = Recorder("SELECT COUNT(*) FROM employees")
    agent = agent_with(llm=model.mock)
    history = [Turn("Payroll totals?", "SELECT SUM(gross_pay) FROM payroll")]
    agent.ask("and how many people?", role="viewer", history=history)
    user = _user(model.prompts[0])
    assert "CREATE TABLE payroll" not in user  # the viewer cannot read payroll


def test_bad_history_is_a_config_error(agent_with: Any) -> None:
    agent = agent_with(llm=Recorder("SELECT 1").mock)
    with pytest.raises(ConfigError, match="history"):
        agent.ask("x?", history=[{"question": ""}])
    with pytest.raises(ConfigError, match="unknown key"):
        agent.ask("x?", history=[{"question": "a", "rows": [[1]]}])


def test_search_schema_uses_recent_questions(agent_with: Any) -> None:
    agent = agent_with(llm=Recorder("SELECT 1").mock)
    alone = agent.search_schema("and only for Engineering?", role="analyst", k=1)
    follow = agent.search_schema(
        "and only for Engineering?",
        role="analyst",
        k=1,
        history=[Turn("How many employees per department?", BY_DEPT)],
    )
    assert {"employees", "departments"} <= set(follow.tables)
    assert follow.question.startswith("How many employees per department?")
    assert alone.question == "and only for Engineering?"


# -- single-step tools ------------------------------------------------------------------------
def test_view_hides_what_the_role_may_not_read(agent_with: Any) -> None:
    agent = agent_with(llm=Recorder("SELECT 1").mock)
    viewer = agent.view("viewer")
    assert viewer.catalog.table("payroll") is None
    employees = viewer.catalog.table("employees")
    assert employees is not None
    assert "national_id" not in {c.name for c in employees.columns}
    analyst = agent.view("analyst")
    assert ("employees", "salary") in analyst.masked


def test_run_sql_guards_runs_caps_and_audits_once(agent_with: Any, audit: MemoryAuditSink) -> None:
    agent = agent_with(llm=Recorder("SELECT 1").mock)
    answer = agent.run_sql(
        "SELECT id, salary FROM employees ORDER BY id",
        role="analyst",
        max_rows=3,
        audit_context={"interface": "test"},
    )
    assert answer.status == "answered"
    assert answer.row_count == 3
    assert answer.truncated
    assert {row[1] for row in answer.rows} == {"***"}
    assert answer.masked_columns == ("employees.salary",)
    refused = agent.run_sql("DELETE FROM employees", role="admin")
    assert refused.status == "rejected"
    assert refused.verdict is not None
    assert "read-only" in refused.verdict.feedback().lower() or refused.verdict.violations
    denied = agent.run_sql("SELECT national_id FROM employees", role="viewer")
    assert denied.denied
    events = audit.events
    assert [e.name for e in events] == ["run_sql"] * 3
    assert [e.verdict for e in events] == ["allowed", "rejected", "rejected"]
    assert events[0].extra["interface"] == "test"
    assert events[0].row_count == 3
    assert events[0].question is None
    assert events[0].sql_in == "SELECT id, salary FROM employees ORDER BY id"


def test_check_sql_is_one_validate_event_and_runs_nothing(
    agent_with: Any, audit: MemoryAuditSink
) -> None:
    agent = agent_with(llm=Recorder("SELECT 1").mock)
    verdict = agent.check_sql("SELECT * FROM payroll", role="viewer")
    assert not verdict.allowed
    verdict = agent.check_sql("SELECT * FROM departments", role="analyst")
    assert verdict.allowed
    assert verdict.sql is not None
    assert [(e.name, e.verdict, e.row_count) for e in audit.events] == [
        ("validate", "rejected", None),
        ("validate", "allowed", None),
    ]
