"""The agent's plug points: an executor of the caller's, and one snapshot per request."""

from __future__ import annotations

from collections.abc import Sequence

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import DemoPaths
from sqlagent.execution import ExecutionResult, Executor, ReadOnlyExecutor
from sqlagent.llm import Message, MockLLM
from tests.agent.conftest import config_for


class CountingExecutor:
    """An executor of the caller's: the real read-only one, counting what it runs."""

    def __init__(self, url: str) -> None:
        self.inner = ReadOnlyExecutor(url)
        self.ran: list[str] = []
        self.closed = False

    def run(self, sql: str) -> ExecutionResult:
        self.ran.append(sql)
        return self.inner.run(sql)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_the_agent_runs_through_the_executor_it_is_given(demo: DemoPaths) -> None:
    executor = CountingExecutor(demo.url)
    assert isinstance(executor, Executor)
    llm = MockLLM(responses={"How many projects?": "SELECT COUNT(*) FROM projects"})
    agent = SQLAgent(config_for(demo), llm=llm, executor=executor, audit=MemoryAuditSink())
    with agent:
        answer = agent.ask("How many projects?", role="viewer")
        assert answer.status == "answered", answer.error
        assert executor.ran == [answer.sql]
        assert agent.run_sql("SELECT name FROM departments", role="viewer").ok
        assert len(executor.ran) == 2
    assert executor.closed


def test_a_request_keeps_its_snapshot_across_a_refresh(demo: DemoPaths) -> None:
    agent: SQLAgent | None = None
    seen: list[object] = []

    def reply(messages: Sequence[Message]) -> str:
        assert agent is not None
        seen.append(agent.guard)
        agent.refresh()  # a migration lands while the model is thinking
        seen.append(agent.guard)
        return "```sql\nSELECT COUNT(*) FROM projects\n```"

    audit = MemoryAuditSink()
    agent = SQLAgent(config_for(demo), llm=MockLLM(function=reply), audit=audit)
    with agent:
        answer = agent.ask("How many projects?", role="viewer")
        assert answer.status == "answered", answer.error
        before, after = seen
        assert before is not after  # refresh swapped in a new guard at once
        assert agent.guard is after
        assert agent.retrieval is not None
        assert len(audit.events) == 1
