"""Agent test plumbing: the demo written once per module, and configs with fast retrieval."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.demo import DemoPaths, write_demo

#: Hashing embedder and in-memory store: the agent tests are about the pipeline, the retrieval
#: tests (tests/retrieval) cover MiniLM and chromadb.
FAST_RETRIEVAL = {"embedder": "hashing", "store": "memory"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoPaths:
    return write_demo(tmp_path_factory.mktemp("agent-demo"))


def config_for(demo: DemoPaths, **overrides: Any) -> AgentConfig:
    data: dict[str, Any] = {
        "database": demo.url,
        "policy": demo.policy,
        "examples": demo.examples,
        "docs": [demo.glossary],
        "retrieval": FAST_RETRIEVAL,
    }
    data.update(overrides)
    return AgentConfig.from_mapping(data)


@pytest.fixture
def audit() -> MemoryAuditSink:
    """The audit sink of the agents ``agent_with`` builds (a new one per test)."""
    return MemoryAuditSink()


@pytest.fixture
def agent_with(demo: DemoPaths, audit: MemoryAuditSink) -> Iterator[Any]:
    """``agent_with(llm=None, **config_overrides)``: an agent on the module's demo, auditing to
    ``audit``; every agent built is closed after the test."""
    made: list[SQLAgent] = []

    def build(llm: Any = None, **overrides: Any) -> SQLAgent:
        agent = SQLAgent(config_for(demo, **overrides), llm=llm, audit=audit)
        made.append(agent)
        return agent

    yield build
    for agent in made:
        agent.close()
