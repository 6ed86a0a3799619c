"""The LLM protocol every backend implements and the sync-only base; the message type is
:class:`sqlagent.types.Message`, re-exported here."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sqlagent.errors import LLMError
from sqlagent.types import Message, Role

__all__ = ["LLM", "Message", "Role", "SyncLLM", "llm_name"]


@runtime_checkable
class LLM(Protocol):
    """A chat model: messages in, the model's answer text out; the agent's only view of a model.

    Any object with these two methods fits. ``complete`` blocks; ``acomplete`` is its asyncio
    twin and must not block the event loop. Both raise :class:`~sqlagent.errors.LLMError`
    (:class:`~sqlagent.errors.LLMUnavailableError` when another try or another backend may
    succeed). A backend may also carry a ``name: str`` naming it in audit events and traces
    (see :func:`llm_name`).

    Backends that can only block subclass :class:`SyncLLM` and get a correct ``acomplete``;
    backends with an async client (HTTP) implement both. A backend that must never run two
    generations at once (a local model on one GPU) is wrapped in
    :class:`~sqlagent.llm.SerializedLLM`.
    """

    def complete(self, messages: Sequence[Message]) -> str: ...

    async def acomplete(self, messages: Sequence[Message]) -> str: ...


class SyncLLM(ABC):
    """Base for backends that can only block (a local transformers model, a plain function).

    Subclasses implement :meth:`complete`; :meth:`acomplete` runs it in a worker thread
    (:func:`asyncio.to_thread`), so the event loop keeps serving while the model generates.
    :class:`~sqlagent.llm.SerializedLLM` recognises this base and keeps its lock inside the
    worker thread, so a cancelled caller can never let a second generation start early.
    """

    name: str = "sync-llm"

    @abstractmethod
    def complete(self, messages: Sequence[Message]) -> str: ...

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return await asyncio.to_thread(self.complete, messages)


def llm_name(llm: object) -> str:
    """The backend's ``name`` for audit and traces, or its class name when it has none."""
    name = getattr(llm, "name", None)
    return name if isinstance(name, str) and name else type(llm).__name__


def last_user_message(messages: Sequence[Message]) -> str:
    """The content of the last user message: the question, for backends that answer from it."""
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    raise LLMError("the messages hold no user message to answer")
