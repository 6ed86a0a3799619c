"""Agent test plumbing: the demo written once per module, and configs with fast retrieval."""

from __future__ import annotations

from typing import Any

import pytest

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
