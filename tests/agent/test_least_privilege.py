"""The agent through a least-privilege reader login on the real servers, the start-up privilege
check (a warning by default, a refusal with ``require_least_privilege``), MariaDB detection for
the guard, and a result too large for ``max_result_bytes`` as a failed, correctable attempt."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import DemoPaths
from sqlagent.errors import ConfigError, PrivilegeError
from sqlagent.execution import check_privileges
from sqlagent.llm import MockLLM
from tests.agent.conftest import config_for
from tests.dbservers import copy_sqlite, create_test_database, drop_test_database
from tests.execution.readers import create_reader, drop_reader

NAME = "sqlagent_lp_test"
READER = "sqlagent_lp_reader"
QUESTION = "How many hours per week are assigned to each project?"


@pytest.fixture(scope="module", params=[
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])  # fmt: skip
def server(request: pytest.FixtureRequest, demo: DemoPaths) -> Iterator[tuple[str, str, str]]:
    """(kind, admin URL, reader URL) of the demo data on a server."""
    kind = str(request.param)
    admin = create_test_database(kind, NAME)
    copy_sqlite(Path(demo.database), admin)
    reader = create_reader(kind, admin, READER)
    yield kind, admin, reader
    drop_test_database(kind, NAME)
    drop_reader(kind, READER)


def _hours(rows: tuple[tuple[object, ...], ...]) -> Counter[tuple[object, float]]:
    return Counter((name, float(str(total))) for name, total in rows)  # SUM may be DECIMAL


@pytest.mark.slow
def test_the_agent_answers_through_a_reader_login(
    server: tuple[str, str, str], demo: DemoPaths
) -> None:
    _, admin, reader = server
    assert check_privileges(reader) == []
    assert check_privileges(admin)  # the server's admin login is flagged
    strict = config_for(demo, database=reader, require_least_privilege=True)
    with (
        SQLAgent(config_for(demo), audit=MemoryAuditSink()) as lite,
        SQLAgent(strict, audit=MemoryAuditSink()) as agent,
    ):
        expected = lite.ask(QUESTION, role="analyst")
        got = agent.ask(QUESTION, role="analyst")
        assert got.ok, got.error or got.verdict
        assert _hours(got.rows) == _hours(expected.rows)
        assert agent.ask("Who are the five highest-paid employees?", role="viewer").denied
        # Masking still holds through the reader.
        llm = MockLLM(function=lambda _m: "SELECT first_name, salary FROM employees ORDER BY id")
        with SQLAgent(strict, llm=llm, audit=MemoryAuditSink()) as masked:
            answer = masked.ask("Pay?", role="analyst")
        assert answer.ok
        assert {row[1] for row in answer.rows} == {"***"}


def test_require_least_privilege_refuses_the_admin_login(
    server: tuple[str, str, str], demo: DemoPaths
) -> None:
    _, admin, _ = server
    config = config_for(demo, database=admin, require_least_privilege=True)
    with pytest.raises(PrivilegeError) as info:
        SQLAgent(config, audit=MemoryAuditSink())
    message = str(info.value)
    assert isinstance(info.value, ConfigError)  # exit status 2 in the CLI, no traceback
    assert message.startswith("refusing to start because require_least_privilege is set")
    assert "beyond reading" in message
    assert "SUPERUSER" in message or "FILE" in message
    assert info.value.findings


@pytest.mark.slow
def test_an_admin_login_is_a_warning_by_default(
    server: tuple[str, str, str], demo: DemoPaths, caplog: pytest.LogCaptureFixture
) -> None:
    _, admin, reader = server
    with caplog.at_level(logging.WARNING, logger="sqlagent"):
        with SQLAgent(config_for(demo, database=admin), audit=MemoryAuditSink()) as agent:
            assert agent.ask(QUESTION, role="analyst").ok
        warned = [r for r in caplog.records if r.name == "sqlagent.agent"]
        assert len(warned) == 1
        assert "privilege(s) beyond reading" in warned[0].getMessage()
        assert "require_least_privilege" in warned[0].getMessage()
        caplog.clear()
        with SQLAgent(config_for(demo, database=reader), audit=MemoryAuditSink()):
            pass
        assert not [r for r in caplog.records if r.name == "sqlagent.agent"]


@pytest.mark.slow
def test_the_guard_renders_for_the_server_it_talks_to(
    server: tuple[str, str, str], demo: DemoPaths
) -> None:
    kind, _, reader = server
    regexp = "SELECT name FROM departments WHERE name REGEXP '^Eng' ORDER BY name"
    llm = MockLLM(function=lambda _m: regexp)
    urls = [reader]
    if kind == "mysql":  # the URL says mysql+, the server's version string says MariaDB
        urls.append(sa.make_url(reader).set(drivername="mariadb+pymysql").render_as_string(False))
    for url in urls:
        with SQLAgent(config_for(demo, database=url), llm=llm, audit=MemoryAuditSink()) as agent:
            assert agent.guard_dialect == ("mariadb" if kind == "mysql" else "postgres")
            answer = agent.ask("Which departments start with Eng?", role="analyst")
            if kind == "mysql":  # MariaDB has no REGEXP_LIKE: the guard wrote REGEXP
                assert answer.ok, answer.error or answer.verdict
                assert answer.rows == (("Engineering",),)
                assert "REGEXP_LIKE" not in (answer.sql or "")


def test_a_too_large_result_is_a_failed_attempt_the_model_can_correct(demo: DemoPaths) -> None:
    answers = iter(
        [
            "SELECT e.first_name, p.name FROM employees e, projects p, assignments a",
            "SELECT count(*) AS n FROM employees",
        ]
    )
    llm = MockLLM(function=lambda _m: next(answers))
    config = config_for(demo, max_result_bytes=4096, max_rows=100_000)
    with SQLAgent(config, llm=llm, audit=MemoryAuditSink()) as agent:
        answer = agent.ask("Everything at once?", role="admin")
    assert answer.ok
    first, second = answer.attempts
    assert first.error is not None
    assert "max_result_bytes" in first.error
    assert second.error is None
    assert answer.rows[0][0] > 0
    # The second call carried the executor's message back to the model.
    assert any("max_result_bytes" in str(m) for m in llm.calls[-1])
    assert not any("max_result_bytes" in str(m) for m in llm.calls[0])


def test_result_size_configuration(demo: DemoPaths) -> None:
    with pytest.raises(ConfigError, match="max_result_bytes"):
        config_for(demo, max_result_bytes=10)
    config = config_for(demo)
    assert config.max_result_bytes == 16 * 1024 * 1024
    assert config.require_least_privilege is False
    with SQLAgent(config_for(demo, max_result_bytes=8192), audit=MemoryAuditSink()) as agent:
        assert agent.executor.max_result_bytes == 8192
        assert agent.guard_dialect == "sqlite"
