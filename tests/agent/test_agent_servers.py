"""The agent on the real PostgreSQL and MariaDB servers: same answers, same refusals, masking."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import DemoPaths
from sqlagent.execution import ReadOnlyExecutor
from tests.agent.conftest import config_for
from tests.dbservers import copy_sqlite, create_test_database, drop_test_database

NAME = "sqlagent_agent_test"


@pytest.fixture(scope="module", params=[
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])  # fmt: skip
def server_url(request: pytest.FixtureRequest, demo: DemoPaths) -> Iterator[str]:
    url = create_test_database(request.param, NAME)
    copy_sqlite(Path(demo.database), url)
    yield url
    drop_test_database(request.param, NAME)


@pytest.mark.slow
def test_same_answers_and_refusals_as_sqlite(server_url: str, demo: DemoPaths) -> None:
    # The demo examples are SQLite SQL written portably; the mock answers with them.
    question = "How many hours per week are assigned to each project?"
    with (
        SQLAgent(config_for(demo), audit=MemoryAuditSink()) as lite,
        SQLAgent(config_for(demo, database=server_url), audit=MemoryAuditSink()) as server,
    ):
        expected = lite.ask(question, role="analyst")
        got = server.ask(question, role="analyst")
        assert got.ok, got.error or got.verdict
        hours = Counter((name, float(total)) for name, total in got.rows)  # SUM may be DECIMAL
        assert hours == Counter((name, float(total)) for name, total in expected.rows)
        denied = server.ask("Who are the five highest-paid employees?", role="viewer")
        assert denied.denied


@pytest.mark.slow
def test_masked_values_never_reach_the_answer(server_url: str, demo: DemoPaths) -> None:
    from sqlagent.llm import MockLLM

    llm = MockLLM(function=lambda _m: "SELECT first_name, salary FROM employees ORDER BY id")
    with SQLAgent(config_for(demo, database=server_url), llm=llm, audit=MemoryAuditSink()) as agent:
        answer = agent.ask("Pay?", role="analyst")
    assert answer.ok
    assert answer.masked_columns == ("employees.salary",)
    assert {row[1] for row in answer.rows} == {"***"}
    with ReadOnlyExecutor(server_url) as db:
        salaries = {str(r[0]) for r in db.run("SELECT salary FROM employees").rows}
    assert not salaries & {str(c) for row in answer.rows for c in row}
