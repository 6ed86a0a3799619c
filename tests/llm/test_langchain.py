"""LangChainLLM against langchain-core's own fake chat models and a recording one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError
from sqlagent.llm import FallbackLLM, LangChainLLM, Message, MockLLM, extract_first_sql

pytest.importorskip("langchain_core")

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda

pytestmark = pytest.mark.slow  # LangChain itself takes ~3 s to import

MESSAGES = [
    Message.system("Answer with SQLite SQL."),
    Message.user("How many employees?"),
    Message.assistant("SELECT COUNT(*) FROM staff"),
    Message.user("There is no table staff."),
]
ANSWER = "```sql\nSELECT COUNT(*) FROM employees\n```"


class Recording(BaseChatModel):
    """Answers ``answer`` (or raises ``error``) and records the messages it was given."""

    answer: Any = ANSWER
    error: Any = None
    seen: list[list[BaseMessage]]

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        if self.error is not None:
            raise self.error
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.answer))])


def sync_call(llm: LangChainLLM) -> str:
    return llm.complete(MESSAGES)


def async_call(llm: LangChainLLM) -> str:
    return asyncio.run(llm.acomplete(MESSAGES))


both_modes = pytest.mark.parametrize("call", [sync_call, async_call], ids=["sync", "async"])
Call = Callable[[LangChainLLM], str]


@both_modes
def test_fake_list_chat_model(call: Call) -> None:
    llm = LangChainLLM(FakeListChatModel(responses=[ANSWER, "second"]))
    assert llm.name == "langchain:FakeListChatModel"
    assert repr(llm) == "LangChainLLM(FakeListChatModel)"
    assert extract_first_sql(call(llm)) == "SELECT COUNT(*) FROM employees"
    assert call(llm) == "second"


@both_modes
def test_generic_fake_chat_model_with_content_blocks(call: Call) -> None:
    blocks: list[str | dict[str, Any]] = [
        {"type": "reasoning", "reasoning": "count the rows"},
        {"type": "text", "text": "```sql\nSELECT 1"},
        "\n```",
    ]
    llm = LangChainLLM(GenericFakeChatModel(messages=iter([AIMessage(content=blocks)])))
    assert call(llm) == "```sql\nSELECT 1\n```"


@both_modes
def test_messages_are_converted_in_order(call: Call) -> None:
    model = Recording(seen=[])
    assert call(LangChainLLM(model, name="recorder")) == ANSWER
    (seen,) = model.seen
    assert [type(m) for m in seen] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in seen] == [m.content for m in MESSAGES]


@both_modes
def test_runnables_built_from_a_chat_model(call: Call) -> None:
    assert call(LangChainLLM(Recording(seen=[]).with_retry())) == ANSWER
    assert call(LangChainLLM(Recording(seen=[]) | StrOutputParser())) == ANSWER


@both_modes
def test_an_answer_without_text_is_an_llm_error(call: Call) -> None:
    image = [{"type": "image", "url": "https://example.invalid/x.png"}]
    with pytest.raises(LLMError, match="the answer has no text content"):
        call(LangChainLLM(Recording(seen=[], answer=image)))
    with pytest.raises(LLMError, match=r"expected a message or a string .* got dict"):
        call(LangChainLLM(RunnableLambda(lambda _: {"sql": "SELECT 1"})))


def test_only_langchain_runnables_are_accepted() -> None:
    with pytest.raises(ConfigError, match=r"needs a LangChain chat model .* not MockLLM"):
        LangChainLLM(MockLLM(responses={"q": "SELECT 1"}))  # type: ignore[arg-type]


class RateLimitError(Exception):
    """Named like openai's and anthropic's."""


class APIStatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class APIConnectionError(Exception):
    pass


class RequestFailed(APIConnectionError):
    """Its own name says nothing; its base class's does."""


class Response:
    status_code = 503


class HTTPStatusError(Exception):
    response = Response()


class ProviderDown(Exception):
    pass


@both_modes
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError("refused"), LLMUnavailableError),
        (TimeoutError("slow"), LLMUnavailableError),
        (RateLimitError("slow down"), LLMUnavailableError),
        (RequestFailed("no route to host"), LLMUnavailableError),
        (APIStatusError(529), LLMUnavailableError),
        (APIStatusError(429), LLMUnavailableError),
        (HTTPStatusError("bad gateway"), LLMUnavailableError),
        (ProviderDown("down"), LLMUnavailableError),  # listed in unavailable_on
        (APIStatusError(400), LLMError),
        (ValueError("bad parameter"), LLMError),
    ],
)
def test_errors_are_mapped(call: Call, error: Exception, expected: type[LLMError]) -> None:
    llm = LangChainLLM(Recording(seen=[], error=error), unavailable_on=(ProviderDown,))
    with pytest.raises(LLMError) as caught:
        call(llm)
    assert type(caught.value) is expected
    # asyncio re-creates a TimeoutError crossing from the executor thread: compare by value
    assert type(caught.value.__cause__) is type(error)
    assert str(caught.value.__cause__) == str(error)
    assert str(caught.value).startswith(f"langchain:Recording: {type(error).__name__}: ")


@both_modes
def test_sqlagent_errors_pass_through(call: Call) -> None:
    error = LLMUnavailableError("already mapped")
    with pytest.raises(LLMUnavailableError, match="already mapped") as caught:
        call(LangChainLLM(Recording(seen=[], error=error)))
    assert caught.value is error


def test_fallback_when_the_provider_is_unreachable() -> None:
    down = LangChainLLM(Recording(seen=[], error=ConnectionRefusedError("refused")))
    fallback = FallbackLLM(down, MockLLM(responses={"employees": "SELECT 2"}))
    question = MESSAGES[:2]
    assert extract_first_sql(fallback.complete(question)) == "SELECT 2"
    assert extract_first_sql(asyncio.run(fallback.acomplete(question))) == "SELECT 2"
    assert fallback.last_used == "mock"
