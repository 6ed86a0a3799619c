from __future__ import annotations

from collections.abc import Iterator

import pytest
from stub_openai import StubServer, closed_port_url


@pytest.fixture
def stub() -> Iterator[StubServer]:
    """A fresh stub OpenAI-compatible server, shut down (threads joined) after the test."""
    server = StubServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dead_url() -> str:
    return closed_port_url()


@pytest.fixture(autouse=True)
def _no_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
