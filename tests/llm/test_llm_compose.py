"""FallbackLLM and SerializedLLM, against deliberately fragile fake backends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError
from sqlagent.llm import LLM, FallbackLLM, Message, MockLLM, SerializedLLM, SyncLLM

MESSAGES = [Message.user("How many employees?")]


class Probe:
    """A backend that must never be entered twice at once: it fails if it is, and counts."""

    def __init__(self, delay_s: float = 0.002) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()

    def _enter(self) -> None:
        with self._guard:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            raced = self.active > 1
        if raced:
            self._leave()
            raise RuntimeError("the backend was entered by two calls at once")

    def _leave(self) -> None:
        with self._guard:
            self.active -= 1

    def complete(self, messages: Sequence[Message]) -> str:
        self._enter()
        try:
            time.sleep(self.delay_s)
            return "SELECT 1"
        finally:
            self._leave()

    async def acomplete(self, messages: Sequence[Message]) -> str:
        self._enter()
        try:
            await asyncio.sleep(self.delay_s)
            return "SELECT 1"
        finally:
            self._leave()


class BlockingProbe(SyncLLM):
    """The shape of a local transformers model: blocking only, async through a worker thread."""

    name = "blocking-probe"

    def __init__(self, delay_s: float = 0.002) -> None:
        self.probe = Probe(delay_s)

    def complete(self, messages: Sequence[Message]) -> str:
        return self.probe.complete(messages)


class Failing:
    def __init__(self, error: BaseException, name: str) -> None:
        self.error, self.name, self.calls = error, name, 0

    def complete(self, messages: Sequence[Message]) -> str:
        self.calls += 1
        raise self.error

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return self.complete(messages)


def run_threads(llm: LLM, threads: int, calls: int) -> list[str]:
    answers: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            try:
                answers.append(llm.complete(MESSAGES))
            except Exception as exc:  # collected, asserted on below
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return answers


async def gather(llm: LLM, calls: int) -> list[str]:
    return await asyncio.gather(*(llm.acomplete(MESSAGES) for _ in range(calls)))


# --- SerializedLLM ----------------------------------------------------------------------------


def test_the_probe_does_detect_races_without_the_wrapper() -> None:
    probe = Probe(delay_s=0.01)

    async def main() -> list[str | BaseException]:
        calls = (probe.acomplete(MESSAGES) for _ in range(10))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert any(isinstance(result, RuntimeError) for result in results)
    assert probe.max_active > 1


def test_threads_are_serialized() -> None:
    probe = Probe()
    answers = run_threads(SerializedLLM(probe), threads=10, calls=5)
    assert answers == ["SELECT 1"] * 50
    assert (probe.calls, probe.max_active) == (50, 1)


@pytest.mark.parametrize("inner", [Probe, BlockingProbe], ids=["async-backend", "sync-backend"])
@pytest.mark.slow
def test_fifty_gathered_calls_are_serialized(inner: type[Probe | BlockingProbe]) -> None:
    backend = inner()
    probe = backend.probe if isinstance(backend, BlockingProbe) else backend
    llm = SerializedLLM(backend)
    assert asyncio.run(gather(llm, 50)) == ["SELECT 1"] * 50
    assert asyncio.run(gather(llm, 5)) == ["SELECT 1"] * 5  # a second loop gets its own lock
    assert (probe.calls, probe.max_active) == (55, 1)


@pytest.mark.parametrize("inner", [Probe, BlockingProbe], ids=["async-backend", "sync-backend"])
def test_threads_and_event_loops_together_are_serialized(
    inner: type[Probe | BlockingProbe],
) -> None:
    backend = inner()
    probe = backend.probe if isinstance(backend, BlockingProbe) else backend
    llm = SerializedLLM(backend)
    loop_answers: list[list[str]] = []

    def loop_worker() -> None:
        loop_answers.append(asyncio.run(gather(llm, 15)))

    loops = [threading.Thread(target=loop_worker) for _ in range(2)]
    for thread in loops:
        thread.start()
    sync_answers = run_threads(llm, threads=3, calls=5)
    for thread in loops:
        thread.join()
    assert sync_answers == ["SELECT 1"] * 15
    assert loop_answers == [["SELECT 1"] * 15] * 2
    assert (probe.calls, probe.max_active) == (45, 1)


@pytest.mark.parametrize("inner", [Probe, BlockingProbe], ids=["async-backend", "sync-backend"])
def test_a_cancelled_call_does_not_let_the_next_one_in_early(
    inner: type[Probe | BlockingProbe],
) -> None:
    backend = inner(delay_s=0.05)
    probe = backend.probe if isinstance(backend, BlockingProbe) else backend
    llm = SerializedLLM(backend)

    async def main() -> str:
        first = asyncio.ensure_future(llm.acomplete(MESSAGES))
        await asyncio.sleep(0.01)  # the first call is now inside the backend
        first.cancel()
        answer = await llm.acomplete(MESSAGES)
        with pytest.raises(asyncio.CancelledError):
            await first
        return answer

    assert asyncio.run(main()) == "SELECT 1"
    assert (probe.calls, probe.max_active) == (2, 1)


def test_errors_propagate_and_release_the_lock() -> None:
    llm = SerializedLLM(Failing(LLMError("bad request"), "failing"))
    for _ in range(2):
        with pytest.raises(LLMError, match="bad request"):
            llm.complete(MESSAGES)
        with pytest.raises(LLMError, match="bad request"):
            asyncio.run(llm.acomplete(MESSAGES))
    assert llm.name == "failing"
    assert isinstance(llm, LLM)


# --- FallbackLLM ------------------------------------------------------------------------------


def mock(sql: str, name: str) -> MockLLM:
    return MockLLM(responses={"How many employees?": sql}, name=name)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_fallback_chain(use_async: bool) -> None:
    def ask(llm: FallbackLLM) -> str:
        return asyncio.run(llm.acomplete(MESSAGES)) if use_async else llm.complete(MESSAGES)

    down = Failing(LLMUnavailableError("connection refused"), "local")
    backup = mock("SELECT 2", "backup")
    chain = FallbackLLM(down, Failing(LLMUnavailableError("503"), "remote"), backup)
    assert ask(chain) == "```sql\nSELECT 2\n```"
    assert chain.last_used == "backup"
    assert down.calls == 1

    healthy = FallbackLLM(mock("SELECT 1", "primary"), backup)
    assert healthy.last_used is None
    assert ask(healthy) == "```sql\nSELECT 1\n```"
    assert healthy.last_used == "primary"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_other_errors_do_not_fall_back(use_async: bool) -> None:
    backup = mock("SELECT 2", "backup")
    chain = FallbackLLM(Failing(LLMError("HTTP 404: no such adapter"), "local"), backup)
    with pytest.raises(LLMError, match="no such adapter"):
        asyncio.run(chain.acomplete(MESSAGES)) if use_async else chain.complete(MESSAGES)
    assert not backup.calls
    assert chain.last_used is None

    wider = FallbackLLM(
        Failing(RuntimeError("CUDA out of memory"), "local"), backup, fallback_on=(Exception,)
    )
    assert wider.complete(MESSAGES) == "```sql\nSELECT 2\n```"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_all_failing_raises_the_last_error_chained(use_async: bool) -> None:
    first = LLMUnavailableError("connection refused")
    second = LLMUnavailableError("HTTP 503")
    chain = FallbackLLM(Failing(first, "local"), Failing(second, "remote"))
    with pytest.raises(LLMUnavailableError) as caught:
        asyncio.run(chain.acomplete(MESSAGES)) if use_async else chain.complete(MESSAGES)
    assert caught.value is second
    assert second.__cause__ is first
    assert any(
        "every backend failed: local: LLMUnavailableError: connection refused; "
        "remote: LLMUnavailableError: HTTP 503" in note
        for note in getattr(second, "__notes__", [])
    )


def test_fallback_names_and_validation() -> None:
    chain = FallbackLLM(mock("SELECT 1", "a"), mock("SELECT 2", "b"))
    assert chain.name == "fallback(a, b)"
    assert isinstance(chain, LLM)
    with pytest.raises(ConfigError, match="fallback_on"):
        FallbackLLM(chain, fallback_on=())
