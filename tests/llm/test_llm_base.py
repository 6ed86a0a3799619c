"""The protocol, the message type, the sync-only base, backend specs and import hygiene."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Sequence

import pytest

from sqlagent.errors import ConfigError
from sqlagent.llm import (
    LLM,
    FallbackLLM,
    Message,
    MockLLM,
    OpenAICompatibleLLM,
    SerializedLLM,
    SyncLLM,
    llm_name,
    parse_llm_spec,
)


def test_message() -> None:
    assert Message.user("q") == Message("user", "q")
    assert Message.system("s").to_dict() == {"role": "system", "content": "s"}
    assert Message.assistant("a").role == "assistant"
    with pytest.raises(ConfigError, match="unknown message role 'tool'"):
        Message("tool", "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be a string"):
        Message("user", None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        Message.user("q").content = "changed"  # type: ignore[misc]


class Blocking(SyncLLM):
    def __init__(self) -> None:
        self.threads: list[int] = []

    def complete(self, messages: Sequence[Message]) -> str:
        self.threads.append(threading.get_ident())
        return messages[-1].content


def test_sync_llm_gets_an_async_twin_that_runs_in_a_worker_thread() -> None:
    llm = Blocking()

    async def main() -> tuple[str, int]:
        return await llm.acomplete([Message.user("SELECT 1")]), threading.get_ident()

    answer, loop_thread = asyncio.run(main())
    assert answer == "SELECT 1"
    assert len(llm.threads) == 1
    assert llm.threads[0] != loop_thread
    assert isinstance(llm, LLM)
    assert llm_name(llm) == "sync-llm"


def test_every_backend_fits_the_protocol_and_has_a_name() -> None:
    mock = MockLLM(responses={})
    remote = OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "sql-hr")
    backends = [mock, remote, FallbackLLM(remote, mock), SerializedLLM(mock)]
    assert all(isinstance(backend, LLM) for backend in backends)
    assert [llm_name(b) for b in backends] == [
        "mock",
        "openai:sql-hr",
        "fallback(openai:sql-hr, mock)",
        "mock",
    ]
    assert llm_name(object()) == "object"
    assert not isinstance(object(), LLM)


def test_parse_llm_spec() -> None:
    mock = parse_llm_spec(
        "mock", examples=[("how many employees", "SELECT COUNT(*) FROM employees")]
    )
    assert isinstance(mock, MockLLM)
    remote = parse_llm_spec("openai:http://127.0.0.1:8000/v1", model="sql-hr")
    assert isinstance(remote, OpenAICompatibleLLM)
    assert (remote.base_url, remote.model) == ("http://127.0.0.1:8000/v1", "sql-hr")


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("mock", {}, r"pass examples=\[\(question, sql\), \.\.\.\]"),
        ("openai:http://127.0.0.1:8000/v1", {}, "needs the served model's name"),
        ("openai:", {"model": "m"}, "unknown LLM backend"),
        ("transformers:/models/smollm@adapter", {}, "no model at '/models/smollm'"),
        ("llamacpp:/models/smollm.gguf", {}, "expected 'mock', 'openai:BASE_URL'"),
        ("", {}, "unknown LLM backend ''"),
    ],
)
def test_parse_llm_spec_errors(spec: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_llm_spec(spec, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_importing_the_llm_package_does_not_import_httpx() -> None:
    code = "import sys, sqlagent.llm; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # httpx is imported when a backend is built
