"""Conversations the server keeps for ``POST /v1/chat``: earlier turns by caller, role and id.

A conversation belongs to one credential: its key is ``(caller, role, conversation_id)``, so a
caller who guesses another caller's id starts a conversation of its own, and the turns of one
role never reach a prompt written for another. A turn is a question and the SQL that ran
(:class:`~sqlagent.types.Turn`), never rows.

The store is a small protocol (:class:`ConversationStore`) so a shared one (Redis) can replace
the in-memory default when several replicas serve the same callers.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlagent.types import Turn

__all__ = [
    "ConversationHistory",
    "ConversationKey",
    "ConversationStore",
    "MemoryConversationStore",
    "TurnOrder",
    "check_bounds",
]


def check_bounds(max_conversations: int, max_turns: int, ttl_s: float) -> None:
    """What every conversation store keeps must be bounded: raises :class:`ValueError`."""
    if max_conversations < 1 or max_turns < 1 or ttl_s <= 0:
        raise ValueError("max_conversations and max_turns must be >= 1, ttl_s > 0")


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Whose conversation: the verified caller's name and role, and the id the caller chose."""

    caller: str
    role: str | None
    conversation_id: str


@dataclass(frozen=True, slots=True)
class ConversationHistory:
    """A conversation as a store returns it: the turns it still keeps (oldest first, at most
    the store's ``max_turns``) and ``count``, how many turns were ever recorded in it, so the
    next turn's number is ``count + 1`` even after old turns were dropped."""

    turns: tuple[Turn, ...] = ()
    count: int = 0

    @property
    def next_turn(self) -> int:
        return self.count + 1


@runtime_checkable
class ConversationStore(Protocol):
    """Where the server keeps conversations. Called from the app's event loop only.

    :meth:`history` of an unknown or expired key is an empty :class:`ConversationHistory`;
    :meth:`append` records a turn (creating the conversation), restarts its idle time and
    returns the conversation as it now is. Implementations bound what they keep (turns per
    conversation, conversations, idle time) and drop expired conversations on their own;
    :meth:`close` releases what they hold.
    """

    async def history(self, key: ConversationKey) -> ConversationHistory: ...

    async def append(self, key: ConversationKey, turn: Turn) -> ConversationHistory: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Entry:
    turns: deque[Turn]
    count: int = 0
    used: float = 0.0


class MemoryConversationStore:
    """Conversations in this process: at most ``max_conversations`` (the least recently used
    is dropped first), each keeping its last ``max_turns`` turns, each forgotten ``ttl_s``
    seconds after its last use. Lost on restart, not shared between replicas.

    Every method runs to completion without awaiting, so it is atomic on the app's event loop;
    expired conversations are dropped as a side effect of each call (the least recently used
    come first, so this costs only what it drops). ``clock`` is injectable so tests never sleep.
    """

    def __init__(
        self,
        *,
        max_conversations: int = 10_000,
        max_turns: int = 20,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_bounds(max_conversations, max_turns, ttl_s)
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[ConversationKey, _Entry] = OrderedDict()

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._entries)

    async def history(self, key: ConversationKey) -> ConversationHistory:
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            return ConversationHistory()
        entry.used = now
        self._entries.move_to_end(key)
        return ConversationHistory(tuple(entry.turns), entry.count)

    async def append(self, key: ConversationKey, turn: Turn) -> ConversationHistory:
        now = self._clock()
        self._expire(now)
        entry = self._entries.pop(key, None) or _Entry(deque(maxlen=self.max_turns))
        entry.turns.append(turn)
        entry.count += 1
        entry.used = now
        self._entries[key] = entry
        while len(self._entries) > self.max_conversations:
            self._entries.popitem(last=False)
        return ConversationHistory(tuple(entry.turns), entry.count)

    async def close(self) -> None:
        self._entries.clear()

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.used < self.ttl_s:
                break
            self._entries.popitem(last=False)


class TurnOrder:
    """One question at a time per conversation, in arrival order (an :class:`asyncio.Lock`
    per key, kept only while someone holds or waits for it).

    :meth:`acquire` waits at most ``timeout_s`` (raising :class:`TimeoutError`); the holder
    calls :meth:`release` once its turn is recorded, from any task. This orders the requests
    of one process; replicas sharing a store do not wait for one another.
    """

    def __init__(self) -> None:
        self._locks: dict[ConversationKey, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    async def acquire(self, key: ConversationKey, timeout_s: float) -> None:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with asyncio.timeout(timeout_s):
                await lock.acquire()
        except BaseException:
            self._leave(key, users)
            raise

    def release(self, key: ConversationKey) -> None:
        lock, users = self._locks[key]
        lock.release()
        self._leave(key, users)

    def _leave(self, key: ConversationKey, users: list[int]) -> None:
        users[0] -= 1
        if users[0] == 0:
            del self._locks[key]
