"""LangChainLLM: any LangChain chat model as a sqlagent backend.

Integrate, don't rebuild: every provider LangChain supports (``ChatOpenAI``, ``ChatAnthropic``,
``ChatOllama``, ...) plugs in through one wrapper. langchain-core is an optional extra
(``pip install 'sqlagent[langchain]'``) and is imported when a wrapper is built, never at import
time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError, SQLAgentError
from sqlagent.llm._base import Message

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable

__all__ = ["LangChainLLM"]

#: Words in an exception class name (or a base class's) that mean "try again or elsewhere":
#: httpx's ConnectError/ReadTimeout/TransportError, openai's APIConnectionError/RateLimitError/
#: InternalServerError, anthropic's OverloadedError, google's ServiceUnavailable, ...
_UNAVAILABLE_WORDS = (
    "timeout",
    "connect",
    "transport",
    "ratelimit",
    "overloaded",
    "unavailable",
    "internalserver",
)


class LangChainLLM:
    """A LangChain chat model behind the :class:`~sqlagent.llm.LLM` protocol.

    ``chat_model`` is a ``BaseChatModel``, or a runnable built from one
    (``model.with_retry()``, ``model.bind(stop=[";"])``) that returns a message or a string.
    Messages become ``SystemMessage``/``HumanMessage``/``AIMessage``; :meth:`complete` calls
    ``invoke`` and :meth:`acomplete` calls ``ainvoke``, so a provider's native async client is
    used. The answer is the message's text (the text blocks of a list content, in order; other
    blocks such as reasoning are dropped).

    Errors: :class:`~sqlagent.errors.LLMUnavailableError` when the provider's exception looks
    transient — a ``TimeoutError`` or ``ConnectionError``, an exception with an HTTP
    ``status_code`` of 429 or 5xx, or one whose class (or a base class) is named like a
    timeout, connection, transport, rate-limit, overload or unavailability error — or is one
    of ``unavailable_on``; :class:`~sqlagent.errors.LLMError` for any other exception, and
    for an answer without text. The original exception is chained (``__cause__``).
    """

    def __init__(
        self,
        chat_model: Runnable[Any, Any],
        *,
        unavailable_on: tuple[type[BaseException], ...] = (),
        name: str | None = None,
    ) -> None:
        try:
            from langchain_core.runnables import Runnable
        except ImportError as exc:  # pragma: no cover - langchain-core is installed in development
            raise ConfigError(
                "LangChainLLM needs langchain-core: pip install 'sqlagent[langchain]'"
            ) from exc
        if not isinstance(chat_model, Runnable):
            raise ConfigError(
                "LangChainLLM needs a LangChain chat model (a BaseChatModel or a runnable "
                f"built from one), not {type(chat_model).__name__}"
            )
        self.chat_model = chat_model
        self.unavailable_on = unavailable_on
        self.name = name or f"langchain:{type(chat_model).__name__}"

    def __repr__(self) -> str:
        return f"LangChainLLM({type(self.chat_model).__name__})"

    def complete(self, messages: Sequence[Message]) -> str:
        converted = _to_langchain(messages)
        try:
            result = self.chat_model.invoke(converted)
        except Exception as exc:
            raise self._error(exc) from exc
        return self._text(result)

    async def acomplete(self, messages: Sequence[Message]) -> str:
        converted = _to_langchain(messages)
        try:
            result = await self.chat_model.ainvoke(converted)
        except Exception as exc:
            raise self._error(exc) from exc
        return self._text(result)

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, SQLAgentError):
            return exc
        detail = f"{self.name}: {type(exc).__name__}: {exc}"
        if _is_unavailable(exc, self.unavailable_on):
            return LLMUnavailableError(detail)
        return LLMError(detail)

    def _text(self, result: object) -> str:
        from langchain_core.messages import BaseMessage

        if isinstance(result, str):
            return result
        if isinstance(result, BaseMessage):
            text = _content_text(result)
            if text is not None:
                return text
            raise LLMError(f"{self.name}: the answer has no text content ({result.content!r})")
        raise LLMError(
            f"{self.name}: expected a message or a string from the chat model, "
            f"got {type(result).__name__}"
        )


def _to_langchain(messages: Sequence[Message]) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in messages]


def _content_text(message: BaseMessage) -> str | None:
    """The text of a message: a string content, or the text blocks of a list content."""
    content: object = message.content
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts = [
        block if isinstance(block, str) else block["text"]
        for block in content
        if isinstance(block, str)
        or (isinstance(block, dict) and block.get("type") == "text" and "text" in block)
    ]
    texts = [p for p in parts if isinstance(p, str)]
    return "".join(texts) if texts else None


def _is_unavailable(exc: BaseException, extra: tuple[type[BaseException], ...]) -> bool:
    if isinstance(exc, (TimeoutError, ConnectionError, *extra)):
        return True
    for holder in (exc, getattr(exc, "response", None)):
        status = getattr(holder, "status_code", None)
        if isinstance(status, int) and (status == 429 or status >= 500):
            return True
    return any(
        word in cls.__name__.lower() for cls in type(exc).__mro__ for word in _UNAVAILABLE_WORDS
    )
