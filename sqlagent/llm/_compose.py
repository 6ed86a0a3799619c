"""Backends built from backends: a fallback chain, and one-call-at-a-time serialization."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Sequence

from sqlagent.errors import ConfigError, LLMUnavailableError
from sqlagent.llm._base import LLM, Message, SyncLLM, llm_name

__all__ = ["FallbackLLM", "SerializedLLM"]

#: How often an async caller re-checks a lock held by another thread or event loop.
_POLL_S = 0.005


class FallbackLLM:
    """Ask ``primary``; when it fails with one of ``fallback_on``, ask each fallback in order.

    The shape of pydantic-ai's ``FallbackModel``: ``FallbackLLM(local, MockLLM(examples=...))``
    keeps a demo answering when the local server is down. By default only
    :class:`~sqlagent.errors.LLMUnavailableError` falls through (connection refused, time
    limit, HTTP 5xx/429): a request the backend rejects as wrong is not retried elsewhere.
    Errors that are not in ``fallback_on`` propagate at once.

    ``last_used`` names (:func:`~sqlagent.llm.llm_name`) the backend that gave the latest
    answer; with concurrent callers it is whichever call finished last. When every backend
    fails, the last one's error is raised, chained (``__cause__``) to the one before it and so on
    back to the primary's, with a note listing them all.
    """

    def __init__(
        self,
        primary: LLM,
        *fallbacks: LLM,
        fallback_on: tuple[type[BaseException], ...] = (LLMUnavailableError,),
        name: str | None = None,
    ) -> None:
        if not fallback_on:
            raise ConfigError("FallbackLLM: fallback_on names no exception type")
        self.backends: tuple[LLM, ...] = (primary, *fallbacks)
        self.fallback_on = fallback_on
        self.name = name or "fallback(" + ", ".join(map(llm_name, self.backends)) + ")"
        self.last_used: str | None = None

    def __repr__(self) -> str:
        return f"FallbackLLM({', '.join(map(llm_name, self.backends))})"

    def complete(self, messages: Sequence[Message]) -> str:
        errors: list[BaseException] = []
        for backend in self.backends:
            try:
                answer = backend.complete(messages)
            except self.fallback_on as exc:
                errors.append(exc)
                continue
            self.last_used = llm_name(backend)
            return answer
        raise self._all_failed(errors)

    async def acomplete(self, messages: Sequence[Message]) -> str:
        errors: list[BaseException] = []
        for backend in self.backends:
            try:
                answer = await backend.acomplete(messages)
            except self.fallback_on as exc:
                errors.append(exc)
                continue
            self.last_used = llm_name(backend)
            return answer
        raise self._all_failed(errors)

    def _all_failed(self, errors: list[BaseException]) -> BaseException:
        for earlier, later in itertools.pairwise(errors):
            if later is not earlier:
                later.__cause__ = earlier
        summary = "; ".join(
            f"{llm_name(backend)}: {type(error).__name__}: {error}"
            for backend, error in zip(self.backends, errors, strict=True)
        )
        last = errors[-1]
        last.add_note(f"{self.name}: every backend failed: {summary}")
        return last


class SerializedLLM:
    """Let at most one call into ``inner`` run at a time, from any mix of threads and tasks.

    A local model on one GPU must not run two generations at once: this is the wrapper for it.
    Calls queue in arrival order per event loop and never overlap, across threads, coroutines
    and event loops alike (``inner`` is not re-entered: a backend that calls back into its own
    wrapper would deadlock). Server-side batching is the job of a serving engine such as vLLM,
    reached through :class:`~sqlagent.llm.OpenAICompatibleLLM`.

    How: one :class:`threading.Lock` is the single source of truth. Sync calls hold it. Async
    calls first queue on an :class:`asyncio.Lock` of their own event loop (created lazily, one
    per loop, so the wrapper works under several ``asyncio.run`` calls), so at most one task per
    loop competes for the thread lock, polling every 5 ms only while another thread or loop
    holds it. For a :class:`~sqlagent.llm.SyncLLM` ``inner`` the thread lock is taken inside
    the worker thread that runs the model; for other backends the inner call runs as a task
    shielded from cancellation and the lock is released when that task ends, so a cancelled
    caller never lets the next call start while a generation is still running.
    """

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name = llm_name(inner)
        self._lock = threading.Lock()
        self._loop_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._loop_locks_guard = threading.Lock()
        self._running: set[asyncio.Task[str]] = set()

    def __repr__(self) -> str:
        return f"SerializedLLM({self.inner!r})"

    def complete(self, messages: Sequence[Message]) -> str:
        with self._lock:
            return self.inner.complete(messages)

    async def acomplete(self, messages: Sequence[Message]) -> str:
        async with self._loop_lock():
            if isinstance(self.inner, SyncLLM):
                return await asyncio.to_thread(self.complete, messages)
            while not self._lock.acquire(blocking=False):
                await asyncio.sleep(_POLL_S)
            try:
                task = asyncio.ensure_future(self.inner.acomplete(messages))
            except BaseException:
                self._lock.release()
                raise
            self._running.add(task)
            task.add_done_callback(self._finished)
            return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[str]) -> None:
        self._running.discard(task)
        self._lock.release()
        if not task.cancelled():
            task.exception()  # so an abandoned call's error is not logged as "never retrieved"

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._loop_locks_guard:
            for closed in [other for other in self._loop_locks if other.is_closed()]:
                del self._loop_locks[closed]
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock
