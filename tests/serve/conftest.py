"""Serve test plumbing: the demo database, agents with fast retrieval, apps with API keys."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sqlagent.agent import SQLAgent
from sqlagent.audit import AuditEvent, MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.demo import DemoPaths, write_demo
from sqlagent.llm import Message
from sqlagent.serve import ServeSettings, create_app, hash_key

#: plain key -> role; the settings hold only their digests.
KEYS = {"key-viewer": "viewer", "key-analyst": "analyst", "key-hr": "hr", "key-admin": "admin"}
JWT_SECRET = "s" * 40


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def settings_for(**data: Any) -> ServeSettings:
    keys = [{"name": role, "role": role, "key_sha256": hash_key(k)} for k, role in KEYS.items()]
    return ServeSettings.from_mapping(
        {"keys": keys, **data}, environ={"SQLAGENT_JWT_KEY": JWT_SECRET}
    )


def config_for(demo: DemoPaths, **overrides: Any) -> AgentConfig:
    data: dict[str, Any] = {
        "database": demo.url,
        "policy": demo.policy,
        "examples": demo.examples,
        "docs": [demo.glossary],
        "retrieval": {"embedder": "hashing", "store": "memory"},
        **overrides,
    }
    return AgentConfig.from_mapping(data)


class RecordingSink(MemoryAuditSink):
    """A memory sink that also remembers being closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0
        self._lock = threading.Lock()

    def emit(self, event: AuditEvent) -> None:
        with self._lock:
            super().emit(event)

    def close(self) -> None:
        self.closed += 1

    def named(self, name: str) -> list[AuditEvent]:
        return [e for e in self.events if e.name == name]


class GatedLLM:
    """Answers ``sql`` once ``gate`` is set; counts the calls waiting (never blocks the loop)."""

    name = "gated"

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def complete(self, messages: Sequence[Message]) -> str:
        self.entered.release()
        self.gate.wait(10)
        return self.sql

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return await asyncio.to_thread(self.complete, messages)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoPaths:
    return write_demo(tmp_path_factory.mktemp("serve-demo"))


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


AppFactory = Callable[..., TestClient]


@pytest.fixture
def serve(demo: DemoPaths, sink: RecordingSink) -> Iterator[AppFactory]:
    """``serve(llm=None, settings=None, demo=None, **app_kwargs)`` -> a started TestClient."""
    stack: list[TestClient] = []

    def start(
        llm: Any = None,
        settings: ServeSettings | None = None,
        paths: DemoPaths | None = None,
        **app_kwargs: Any,
    ) -> TestClient:
        agent = SQLAgent(config_for(paths or demo), llm=llm, audit=sink)
        app = create_app(agent, settings or settings_for(), **app_kwargs)
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return client

    yield start
    for client in reversed(stack):
        client.__exit__(None, None, None)


ROOT_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deploy" / "serve.yaml"


# Real Redis for the scale-out tests (fixtures re-exported so every module here can use them).
from tests.serve.redisserver import redis_process, shared_redis  # noqa: E402, F401
