"""``verdict_event``: the one "validate" audit event of a verdict, recorded by the callers that act
on it (the guard itself records nothing): ``sqlagent validate`` and ``SQLAgent.check_sql``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sqlagent import Catalog, Guard, Policy, SQLAgent
from sqlagent.audit import Auditor, JsonlAuditSink, MemoryAuditSink, verdict_event, verify_chain
from sqlagent.demo import DemoPaths
from sqlagent.llm import MockLLM
from tests.agent.conftest import config_for

POLICY = Policy.from_mapping(
    {
        "default_role": "viewer",
        "roles": {
            "viewer": {"tables": {"employees": ["id", "first_name"], "departments": ["*"]}},
            "analyst": {"inherits": ["viewer"], "masked": {"employees": ["salary"]}},
        },
    }
)


def test_one_event_per_verdict_with_the_guards_fields(fixture_catalog: Catalog) -> None:
    guard = Guard(catalog=fixture_catalog, policy=POLICY)
    checks = [
        ("SELECT first_name FROM employees", "viewer", "who?"),
        ("SELECT salary FROM employees", "viewer", None),
        ("DROP TABLE employees", "nobody", None),
        ("", None, None),
    ]
    events = [
        verdict_event(guard.check(sql, role=role), role=role, question=question)
        for sql, role, question in checks
    ]
    assert [e.name for e in events] == ["validate"] * 4
    assert [e.verdict for e in events] == ["allowed", "rejected", "rejected", "rejected"]
    first, second, third, fourth = events
    assert first.question == "who?"
    assert first.sql_in == "SELECT first_name FROM employees"
    assert first.sql_out is not None
    assert first.columns == ("employees.first_name",)
    assert first.tables == ("employees",)
    assert (first.policy_mode, first.role, first.dialect) == ("policy", "viewer", "sqlite")
    assert first.extra == {}
    assert second.violations[0]["code"] == "column_denied"
    assert second.sql_out is None
    assert third.role == "viewer"  # judged as the default role ...
    assert third.extra == {"requested_role": "nobody"}  # ... and the event says what was asked
    assert fourth.role == "viewer"
    assert fourth.extra == {}
    assert len({e.request_id for e in events}) == 4


def test_single_user_mode_keeps_the_role_as_given(fixture_catalog: Catalog) -> None:
    verdict = Guard(catalog=fixture_catalog).check("SELECT salary FROM employees", role="x")
    event = verdict_event(verdict, role="x", latency_ms=1.5, request_id="abc123")
    assert (event.policy_mode, event.role, event.extra) == ("single_user", "x", {})
    assert (event.request_id, event.latency_ms) == ("abc123", 1.5)
    assert event.to_dict()["columns"] == ["employees.salary"]


def test_masked_columns_and_context_are_recorded(fixture_catalog: Catalog) -> None:
    verdict = Guard(catalog=fixture_catalog, policy=POLICY).check(
        "SELECT first_name, salary FROM employees", role="analyst"
    )
    event = verdict_event(verdict, role="analyst", extra={"interface": "test"})
    assert event.masked_columns == ("employees.salary",)
    assert event.extra == {"interface": "test"}


def test_a_jsonl_trail_of_verdicts_is_verifiable(fixture_catalog: Catalog, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    guard = Guard(catalog=fixture_catalog, policy=POLICY)
    with Auditor([JsonlAuditSink(log)]) as auditor:
        for sql in ["SELECT * FROM employees", "SELECT email FROM employees", "SELECT 1; SELECT 2"]:
            auditor.emit(verdict_event(guard.check(sql, role="viewer"), role="viewer"))
    report = verify_chain(log)
    assert report.ok
    assert report.lines == 3
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["verdict"] for r in records] == ["allowed", "rejected", "rejected"]


@pytest.fixture
def agent(demo: DemoPaths) -> Any:
    audit = MemoryAuditSink()
    with SQLAgent(config_for(demo), llm=MockLLM(responses={}), audit=audit) as built:
        yield built, audit


def test_the_agent_records_check_sql_with_the_same_event(agent: Any) -> None:
    built, audit = agent
    verdict = built.check_sql(
        "SELECT name FROM departments",
        role="intruder",
        request_id="r1",
        audit_context={"interface": "test"},
    )
    (event,) = audit.events
    expected = verdict_event(
        verdict, role="intruder", request_id="r1", extra={"interface": "test"}
    ).to_dict()
    recorded = event.to_dict()
    for volatile in ("created", "latency_ms"):
        assert recorded.pop(volatile)
        expected.pop(volatile)
    assert recorded == expected
    assert event.extra == {"interface": "test", "requested_role": "intruder"}
