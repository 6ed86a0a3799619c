"""Load control: a token bucket per credential, and a bounded queue in front of the agent.

Both live on one event loop (the app's) and are plain objects owned by the app; their clock is
injectable so tests never sleep.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Admission", "QueueFullError", "RateLimiter"]

Clock = Callable[[], float]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``.

    :meth:`take` returns ``0.0`` when the request may go, else the seconds until a token is
    back (for ``Retry-After``); its ``per_minute``/``burst`` replace the limiter's own for one
    key (an API key's own limits). ``per_minute == 0`` turns limiting off. At most ``max_keys``
    buckets are kept (least recently used dropped first): a dropped key starts full again,
    which only ever errs on the side of letting a request in.
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, *, per_minute: float | None = None, burst: int | None = None) -> float:
        rate = self.rate if per_minute is None else per_minute / 60.0
        size = self.burst if burst is None else float(burst)
        if rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(size, now)
        bucket.tokens = min(size, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


class QueueFullError(Exception):
    """Internal: every agent slot is busy and the queue is full (the app answers 429)."""


class Admission:
    """At most ``max_concurrency`` requests in the agent, at most ``max_queue`` waiting.

    :meth:`enter` raises :class:`QueueFullError` at once when the queue is full, instead of
    letting the wait (and the caller's connection) grow without bound. Use ``async with
    admission.slot():``. ``in_flight`` and ``waiting`` feed the metrics gauges.
    """

    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.in_flight = 0
        self.waiting = 0

    async def enter(self) -> None:
        if self.in_flight + self.waiting >= self.max_concurrency + self.max_queue:
            raise QueueFullError
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        self._semaphore.release()


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
