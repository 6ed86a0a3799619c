"""OpenAICompatibleLLM against a real stub server on 127.0.0.1 (and httpx's MockTransport)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
from stub_openai import Reply, StubServer

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError
from sqlagent.llm import FallbackLLM, Message, MockLLM, OpenAICompatibleLLM, extract_first_sql

MESSAGES = [Message.system("Answer with SQLite SQL."), Message.user("How many employees?")]
Call = Callable[[OpenAICompatibleLLM], str]


def sync_call(llm: OpenAICompatibleLLM) -> str:
    return llm.complete(MESSAGES)


def async_call(llm: OpenAICompatibleLLM) -> str:
    return asyncio.run(llm.acomplete(MESSAGES))


both_modes = pytest.mark.parametrize("call", [sync_call, async_call], ids=["sync", "async"])


@both_modes
def test_answer_and_payload(stub: StubServer, call: Call) -> None:
    stub.plan(Reply(content="```sql\nSELECT COUNT(*) FROM employees\n```"))
    with OpenAICompatibleLLM(stub.url, "qwen2.5-0.5b", max_tokens=64) as llm:
        answer = call(llm)
    assert extract_first_sql(answer) == "SELECT COUNT(*) FROM employees"
    (seen,) = stub.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.body == {
        "model": "qwen2.5-0.5b",
        "messages": [
            {"role": "system", "content": "Answer with SQLite SQL."},
            {"role": "user", "content": "How many employees?"},
        ],
        "max_tokens": 64,
        "temperature": 0.0,
    }


@both_modes
def test_extra_body_is_merged_and_may_override_sampling(stub: StubServer, call: Call) -> None:
    extra = {"temperature": 0.7, "stop": [";"], "top_k": 1}
    with OpenAICompatibleLLM(stub.url, "m", extra_body=extra) as llm:
        call(llm)
    body = stub.requests[0].body
    assert (body["temperature"], body["stop"], body["top_k"], body["model"]) == (0.7, [";"], 1, "m")


@pytest.mark.parametrize("key", ["model", "messages", "stream"])
def test_extra_body_may_not_replace_the_request(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        OpenAICompatibleLLM("http://127.0.0.1:1/v1", "m", extra_body={key: True})


@both_modes
def test_bearer_token_sent_only_when_a_key_is_given(stub: StubServer, call: Call) -> None:
    with OpenAICompatibleLLM(stub.url, "m", api_key="sk-secret") as llm:
        call(llm)
        assert "sk-secret" not in repr(llm)
    with OpenAICompatibleLLM(stub.url, "m") as llm:
        call(llm)
    assert stub.requests[0].headers["Authorization"] == "Bearer sk-secret"
    assert "Authorization" not in stub.requests[1].headers


def test_api_key_falls_back_to_the_environment(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with OpenAICompatibleLLM(stub.url, "m") as llm:
        llm.complete(MESSAGES)
    with OpenAICompatibleLLM(stub.url, "m", api_key="sk-explicit") as llm:
        llm.complete(MESSAGES)
    assert [s.headers["Authorization"] for s in stub.requests] == [
        "Bearer sk-from-env",
        "Bearer sk-explicit",
    ]


ERROR_CASES = [
    pytest.param(Reply(500, raw=b"boom"), LLMUnavailableError, "HTTP 500: boom", id="500"),
    pytest.param(
        Reply(503, raw=b'{"error": {"message": "model is loading"}}'),
        LLMUnavailableError,
        "HTTP 503: model is loading",
        id="503",
    ),
    pytest.param(Reply(429, raw=b"{}"), LLMUnavailableError, "HTTP 429", id="429"),
    pytest.param(
        Reply(404, raw=b'{"object": "error", "message": "The model `sql-hr` does not exist."}'),
        LLMError,
        "HTTP 404: The model `sql-hr` does not exist.",
        id="404-vllm",
    ),
    pytest.param(
        Reply(400, raw=b'{"error": {"message": "max_tokens is too large"}}'),
        LLMError,
        "HTTP 400: max_tokens is too large",
        id="400",
    ),
    pytest.param(
        Reply(raw=b"<html>not json"), LLMError, "malformed chat completion", id="not-json"
    ),
    pytest.param(Reply(raw=b'{"choices": []}'), LLMError, "malformed", id="no-choices"),
    pytest.param(Reply(content=None), LLMError, "no text content", id="null-content"),
]


@both_modes
@pytest.mark.parametrize(("reply", "error", "message"), ERROR_CASES)
@pytest.mark.slow
def test_error_mapping(
    stub: StubServer, call: Call, reply: Reply, error: type[LLMError], message: str
) -> None:
    stub.plan(reply)
    with (
        OpenAICompatibleLLM(stub.url, "m", api_key="sk-secret") as llm,
        pytest.raises(error, match="openai:m: ") as caught,
    ):
        call(llm)
    assert message in str(caught.value)
    assert "sk-secret" not in str(caught.value)
    if error is LLMError:
        assert not isinstance(caught.value, LLMUnavailableError)


@both_modes
@pytest.mark.slow
def test_timeout_is_unavailable(stub: StubServer, call: Call) -> None:
    stub.plan(Reply(delay_s=5))
    started = time.monotonic()
    with (
        OpenAICompatibleLLM(stub.url, "m", timeout_s=0.2) as llm,
        pytest.raises(LLMUnavailableError, match=r"no answer from .* within 0\.2 s"),
    ):
        call(llm)
    assert time.monotonic() - started < 4  # 0.2 s, not the stub's 5 s


@both_modes
def test_connection_refused_is_unavailable(dead_url: str, call: Call) -> None:
    with (
        OpenAICompatibleLLM(dead_url, "m", max_retries=1, retry_backoff_s=0.01) as llm,
        pytest.raises(LLMUnavailableError, match="cannot reach"),
    ):
        call(llm)


@both_modes
def test_retries_unavailable_answers(stub: StubServer, call: Call) -> None:
    stub.plan(Reply(503, raw=b"{}"), Reply(502, raw=b"{}"), Reply(content="SELECT 2"))
    with OpenAICompatibleLLM(stub.url, "m", max_retries=2, retry_backoff_s=0.01) as llm:
        assert call(llm) == "SELECT 2"
    assert len(stub.requests) == 3


@both_modes
def test_gives_up_after_max_retries(stub: StubServer, call: Call) -> None:
    stub.plan(Reply(503, raw=b"{}"), Reply(503, raw=b"{}"), Reply(content="SELECT 2"))
    with (
        OpenAICompatibleLLM(stub.url, "m", max_retries=1, retry_backoff_s=0.01) as llm,
        pytest.raises(LLMUnavailableError, match="HTTP 503"),
    ):
        call(llm)
    assert len(stub.requests) == 2


@both_modes
def test_no_retries_by_default_nor_for_client_errors(stub: StubServer, call: Call) -> None:
    stub.plan(Reply(503, raw=b"{}"), Reply(400, raw=b"{}"))
    with OpenAICompatibleLLM(stub.url, "m") as llm, pytest.raises(LLMUnavailableError):
        call(llm)
    with (
        OpenAICompatibleLLM(stub.url, "m", max_retries=3, retry_backoff_s=0.01) as llm,
        pytest.raises(LLMError, match="HTTP 400"),
    ):
        call(llm)
    assert len(stub.requests) == 2


def test_concurrent_async_calls_each_get_an_answer(stub: StubServer) -> None:
    async def main(llm: OpenAICompatibleLLM) -> list[str]:
        return await asyncio.gather(*(llm.acomplete([Message.user(f"q{i}")]) for i in range(8)))

    with OpenAICompatibleLLM(stub.url, "m") as llm:
        assert asyncio.run(main(llm)) == ["```sql\nSELECT 1\n```"] * 8
        assert asyncio.run(main(llm)) == ["```sql\nSELECT 1\n```"] * 8  # a second event loop
    questions = sorted(seen.body["messages"][0]["content"] for seen in stub.requests)
    assert questions == sorted([f"q{i}" for i in range(8)] * 2)


def test_a_bare_host_means_the_v1_root(stub: StubServer) -> None:
    with OpenAICompatibleLLM(stub.url.removesuffix("/v1"), "m") as llm:
        llm.complete(MESSAGES)
    assert stub.requests[0].path == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),
        ("https://gateway.example/llm/v1", "https://gateway.example/llm/v1"),
        (" http://localhost:11434/v1 ", "http://localhost:11434/v1"),
    ],
)
def test_base_url_is_the_api_root(given: str, root: str) -> None:
    assert OpenAICompatibleLLM(given, "m").base_url == root


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "ftp://host/v1", "http:///v1", ""])
def test_invalid_base_url(url: str) -> None:
    with pytest.raises(ConfigError, match="API root"):
        OpenAICompatibleLLM(url, "m")


@pytest.mark.parametrize(
    "kwargs",
    [{"model": ""}, {"timeout_s": 0}, {"max_tokens": 0}, {"max_retries": -1}],
)
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    settings: dict[str, object] = {"base_url": "http://127.0.0.1:8000/v1", "model": "m", **kwargs}
    with pytest.raises(ConfigError):
        OpenAICompatibleLLM(**settings)  # type: ignore[arg-type]


def test_closed_backend_refuses_calls(stub: StubServer) -> None:
    llm = OpenAICompatibleLLM(stub.url, "m")
    llm.complete(MESSAGES)
    llm.close()
    llm.close()  # idempotent
    with pytest.raises(LLMError, match="closed"):
        llm.complete(MESSAGES)
    with pytest.raises(LLMError, match="closed"):
        asyncio.run(llm.acomplete(MESSAGES))


def test_mock_transport_plugs_in_like_httpx() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        reply = {"choices": [{"message": {"role": "assistant", "content": "SELECT 3"}}]}
        return httpx.Response(200, json=reply)

    transport = httpx.MockTransport(handler)
    with OpenAICompatibleLLM("http://llm.invalid/v1", "sql-hr", transport=transport) as llm:
        assert llm.complete(MESSAGES) == "SELECT 3"
        assert asyncio.run(llm.acomplete(MESSAGES)) == "SELECT 3"
    assert [body["model"] for body in seen] == ["sql-hr", "sql-hr"]


def test_sync_only_transport_is_refused_for_async_calls() -> None:
    with (
        OpenAICompatibleLLM("http://127.0.0.1:1/v1", "m", transport=httpx.HTTPTransport()) as llm,
        pytest.raises(ConfigError, match="no async interface"),
    ):
        asyncio.run(llm.acomplete(MESSAGES))


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_fallback_from_a_dead_server_to_the_mock(dead_url: str, use_async: bool) -> None:
    mock = MockLLM(examples=[("How many employees are there?", "SELECT COUNT(*) FROM employees")])
    with OpenAICompatibleLLM(dead_url, "sql-hr") as primary:
        chain = FallbackLLM(primary, mock)
        answer = asyncio.run(chain.acomplete(MESSAGES)) if use_async else chain.complete(MESSAGES)
    assert extract_first_sql(answer) == "SELECT COUNT(*) FROM employees"
    assert chain.last_used == "mock"
    assert len(mock.calls) == 1
