"""State that every replica shares through Redis: rate-limit buckets, conversations, admission.

With ``redis_url`` in the serve config, several ``sqlagent serve`` processes behind one load
balancer act as one service:

- a caller's token bucket is one Redis hash, taken from by an atomic Lua script that reads the
  clock of the Redis server (never the replicas' clocks, which may disagree);
- a conversation is a capped list of turns and a turn counter, both expiring ``ttl_s`` after
  their last use, plus one index of conversations by last use that bounds how many are kept;
  one question at a time per conversation across replicas, by a lock with a lease;
- the service-wide admission counters are two sorted sets (requests inside an agent, requests
  waiting for a slot) whose members carry a lease that their replica renews, so the slots of a
  replica that died are freed when the lease runs out.

Every operation is one round trip (a script, or one transaction). Nothing here decides what to
do when Redis fails: each method raises :class:`SharedStateError`, and the app answers 503 (or
lets the request past the limits, when ``limits_fail_open`` says so). Keys all start with the
configured prefix; the scripts name keys they compute, so this needs one Redis server (a
primary, with or without replicas and Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlagent.errors import ConfigError, SharedStateError
from sqlagent.serve._conversations import ConversationHistory, ConversationKey, check_bounds
from sqlagent.serve._limits import QueueFullError
from sqlagent.types import Turn

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "RedisConversationStore",
    "RedisRateLimiter",
    "RedisTurnLock",
    "ServiceAdmission",
    "SharedState",
    "SharedStateError",
    "probe_redis",
]

_log = logging.getLogger("sqlagent.serve")
_INSTALL = "pip install 'sqlagent[redis]'"
T = TypeVar("T")

# Milliseconds of the Redis server's clock; every script uses it, never the caller's.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: bucket. ARGV: tokens per ms, burst. Returns the ms to wait (as text: Lua numbers become
# integers in replies), "0" when a token was taken.
_TAKE = (
    _NOW
    + """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]), tonumber(state[2])
if tokens == nil or updated == nil then tokens, updated = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'updated', now)
-- a bucket left alone this long is full again, exactly what a missing key means (capped at a
-- year, and written as an integer: a large Lua number would print as 1e+15)
local ttl = math.min(math.ceil((burst - tokens) / rate) + 1000, 31536000000)
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return string.format('%.17g', wait)
"""
)

# KEYS: turns, count, index. ARGV: id, ttl ms, key prefix of a conversation ("<prefix>:conv:").
# Returns {count, turn, turn, ...}, {0} for an unknown or expired conversation.
_HISTORY = (
    _NOW
    + """
local count = tonumber(redis.call('GET', KEYS[2]))
if count == nil then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {0}
end
local ttl = tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], now, ARGV[1])
local reply = {count}
for _, turn in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do table.insert(reply, turn) end
return reply
"""
)

# KEYS: turns, count, index. ARGV: id, ttl ms, prefix, turn (JSON), max turns, max conversations.
_APPEND = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[4])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[5]), -1)
local count = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[6])
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, extra - 1)) do
    redis.call('DEL', ARGV[3] .. old .. ':turns', ARGV[3] .. old .. ':count')
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, extra - 1)
end
redis.call('PEXPIRE', KEYS[3], ttl)
local reply = {count}
for _, turn in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do table.insert(reply, turn) end
return reply
"""
)

# KEYS: lock. ARGV: token. Deletes the lock only while this holder still has it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: running, waiting, leases, sequence. ARGV: member, max running, max waiting, lease ms,
# mode ("enter" joins the queue, "poll" asks again). Returns {state, running, waiting}: state 1
# admitted, 0 still waiting, -1 the queue is full, -2 the member is unknown (its lease ran out).
_ADMIT = (
    _NOW
    + """
local member, slots, queue = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[1], dead)
  redis.call('ZREM', KEYS[2], dead)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local running, waiting = redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])
if ARGV[5] == 'enter' then
  if running + waiting >= slots + queue then return {-1, running, waiting} end
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), member)
  waiting = waiting + 1
end
local rank = redis.call('ZRANK', KEYS[2], member)
if not rank then return {-2, running, waiting} end
redis.call('ZADD', KEYS[3], now + lease, member)
if rank < slots - running then
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], now, member)
  return {1, running + 1, waiting - 1}
end
return {0, running, waiting}
"""
)

# KEYS: running, waiting, leases. ARGV: member. Frees its slot or place; returns the counts.
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""


def _client(url: str, timeout_s: float) -> redis.asyncio.Redis:
    try:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:
        raise ConfigError(f"redis_url needs redis-py: {_INSTALL} ({exc})") from None
    try:
        return redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One immediate retry: a pooled connection that a Redis restart broke is replaced
            # at once; a Redis that is down costs two failed connects, not a backoff.
            retry=Retry(NoBackoff(), 1),
        )
    except ValueError as exc:
        raise ConfigError(f"redis_url: {exc}") from None


class SharedState:
    """One Redis connection pool and the keys of one service, for the parts built on it.

    Makes no connection until first used (so it is safe to build before the event loop runs);
    :meth:`aclose` releases the pool. ``prefix`` starts every key; ``timeout_s`` bounds each
    connect and command. Raises :class:`~sqlagent.errors.ConfigError` when redis-py is missing
    or the URL is unusable.
    """

    def __init__(self, url: str, *, prefix: str = "sqlagent", timeout_s: float = 1.0) -> None:
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.client = _client(url, timeout_s)
        self.take_script = self.client.register_script(_TAKE)
        self.history_script = self.client.register_script(_HISTORY)
        self.append_script = self.client.register_script(_APPEND)
        self.unlock_script = self.client.register_script(_UNLOCK)
        self.admit_script = self.client.register_script(_ADMIT)
        self.leave_script = self.client.register_script(_LEAVE)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def call(self, operation: Awaitable[T]) -> T:
        """Await one Redis operation; any failure becomes :class:`SharedStateError`."""
        import redis.exceptions

        try:
            return await operation
        except (redis.exceptions.RedisError, OSError) as exc:
            raise SharedStateError(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        await self.call(self.client.ping())

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing a pool whose server is gone
            await self.client.aclose()


class RedisRateLimiter:
    """The per-credential token bucket of :class:`~sqlagent.serve._limits.RateLimiter`, shared:
    ``burst`` requests at once, refilled at ``per_minute``, whichever replica takes them.

    :meth:`take` returns ``0.0`` when the request may go, else the seconds until a token is
    back. The take is one atomic script on the Redis server's clock, so N tokens admit exactly
    N requests across all replicas. A bucket's key expires once it would be full again.
    """

    def __init__(self, state: SharedState, per_minute: float, burst: int) -> None:
        self.state = state
        self.per_minute = per_minute
        self.burst = burst

    async def take(
        self, key: str, *, per_minute: float | None = None, burst: int | None = None
    ) -> float:
        rate = self.per_minute if per_minute is None else per_minute
        size = self.burst if burst is None else burst
        if rate <= 0:
            return 0.0
        bucket = self.state.key("rate", _digest(key))
        wait_ms = await self.state.call(
            self.state.take_script(keys=[bucket], args=[repr(rate / 60_000.0), size])
        )
        return float(wait_ms) / 1000.0


class RedisConversationStore:
    """A :class:`~sqlagent.serve.ConversationStore` in Redis, shared by every replica.

    The same bounds as the in-memory store: each conversation keeps its last ``max_turns``
    turns and is forgotten ``ttl_s`` seconds after its last use (its keys expire); at most
    ``max_conversations`` are kept (the least recently used dropped first). Each call is one
    atomic script. Failures raise :class:`SharedStateError`. :meth:`close` leaves the shared
    :class:`SharedState` open (its owner closes it).
    """

    def __init__(
        self,
        state: SharedState,
        *,
        max_conversations: int = 10_000,
        max_turns: int = 20,
        ttl_s: float = 3600.0,
    ) -> None:
        check_bounds(max_conversations, max_turns, ttl_s)
        self.state = state
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self.ttl_ms = max(1, math.ceil(ttl_s * 1000))

    def _keys(self, key: ConversationKey) -> tuple[str, list[str]]:
        ident = conversation_digest(key)
        base = self.state.key("conv", ident)
        return ident, [f"{base}:turns", f"{base}:count", self.state.key("conversations")]

    async def history(self, key: ConversationKey) -> ConversationHistory:
        ident, keys = self._keys(key)
        reply = await self.state.call(
            self.state.history_script(keys=keys, args=[ident, self.ttl_ms])
        )
        return _history(reply)

    async def append(self, key: ConversationKey, turn: Turn) -> ConversationHistory:
        ident, keys = self._keys(key)
        args: list[str | int] = [
            ident,
            self.ttl_ms,
            self.state.key("conv", ""),
            json.dumps(turn.to_dict(), ensure_ascii=False),
            self.max_turns,
            self.max_conversations,
        ]
        reply = await self.state.call(self.state.append_script(keys=keys, args=args))
        return _history(reply)

    async def close(self) -> None:
        """Nothing of its own to release."""


class RedisTurnLock:
    """One question at a time per conversation across replicas: ``SET NX`` with a lease.

    :meth:`acquire` waits at most ``timeout_s`` (polling, 5 ms doubling to 100 ms; raising
    :class:`TimeoutError`) and returns the token that :meth:`release` needs. The lease
    (``lease_s``) frees the conversation of a replica that died holding it.
    """

    def __init__(self, state: SharedState, lease_s: float) -> None:
        self.state = state
        self.lease_ms = max(1, math.ceil(lease_s * 1000))

    async def acquire(self, key: ConversationKey, timeout_s: float) -> str:
        lock = self.state.key("conv", conversation_digest(key), "lock")
        token = uuid.uuid4().hex
        delay = 0.005
        async with asyncio.timeout(timeout_s):
            while not await self.state.call(
                self.state.client.set(lock, token, nx=True, px=self.lease_ms)
            ):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
        return token

    async def release(self, key: ConversationKey, token: str) -> None:
        lock = self.state.key("conv", conversation_digest(key), "lock")
        await self.state.call(self.state.unlock_script(keys=[lock], args=[token]))


class ServiceAdmission:
    """At most ``max_concurrency`` requests inside the agents of all replicas together, at most
    ``max_queue`` waiting for one of those slots (FIFO across replicas).

    :meth:`enter` raises :class:`~sqlagent.serve._limits.QueueFullError` at once when the
    service's queue is full, and otherwise returns when a slot is this request's (polling,
    5 ms doubling to 100 ms); :meth:`leave` frees it. Each slot or place in the queue is a
    member with a lease of ``lease_s``, renewed by :meth:`run_heartbeat` while its request
    lives, so a replica that died frees its slots within ``lease_s``. ``running`` and
    ``waiting`` are the service-wide counts Redis last reported (the metrics gauges).
    """

    def __init__(
        self, state: SharedState, max_concurrency: int, max_queue: int, *, lease_s: float
    ) -> None:
        self.state = state
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.lease_s = lease_s
        self.replica = uuid.uuid4().hex[:12]
        self.running = 0
        self.waiting = 0
        self._held: set[str] = set()
        keys = ("running", "waiting", "leases", "sequence")
        self._keys = [state.key("admission", name) for name in keys]

    async def enter(self, request_id: str) -> str:
        """Take a service-wide slot for ``request_id``; returns the member to :meth:`leave`."""
        member = f"{self.replica}:{request_id}"
        self._held.add(member)
        try:
            state = await self._admit(member, "enter")
            delay = 0.005
            while state != 1:
                if state == -1:
                    raise QueueFullError
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
                state = await self._admit(member, "poll")
                if state == -2:  # our lease ran out while Redis was away: queue again
                    state = await self._admit(member, "enter")
        except BaseException:
            self._held.discard(member)
            with contextlib.suppress(SharedStateError):
                await asyncio.shield(self._remove(member))
            raise
        return member

    async def leave(self, member: str) -> None:
        self._held.discard(member)
        await self._remove(member)

    async def run_heartbeat(self) -> None:
        """Renew the leases of this replica's members every ``lease_s / 3`` until cancelled."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            held = list(self._held)
            if not held:
                continue
            try:
                await self._renew(held)
            except SharedStateError as exc:
                _log.warning("could not renew the service-wide slots: %s", exc)

    async def _admit(self, member: str, mode: str) -> int:
        lease_ms = round(self.lease_s * 1000)
        args: list[str | int] = [member, self.max_concurrency, self.max_queue, lease_ms, mode]
        reply: list[Any] = await self.state.call(
            self.state.admit_script(keys=self._keys, args=args)
        )
        state, self.running, self.waiting = (int(v) for v in reply)
        return state

    async def _renew(self, members: list[str]) -> None:
        now_s, now_us = await self.state.call(self.state.client.time())
        expiry = int(now_s) * 1000 + int(now_us) // 1000 + round(self.lease_s * 1000)
        await self.state.call(
            self.state.client.zadd(self._keys[2], dict.fromkeys(members, expiry), xx=True)
        )

    async def _remove(self, member: str) -> None:
        reply: list[Any] = await self.state.call(
            self.state.leave_script(keys=self._keys[:3], args=[member])
        )
        self.running, self.waiting = (int(v) for v in reply)


def conversation_digest(key: ConversationKey) -> str:
    """The Redis name of a conversation: a digest of (caller, role, id), so callers' names and
    ids of any spelling make keys of one shape, and no key can be built to collide."""
    return _digest(json.dumps([key.caller, key.role, key.conversation_id]))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _history(reply: list[Any]) -> ConversationHistory:
    count = int(reply[0])
    turns = tuple(Turn.from_dict(json.loads(raw)) for raw in reply[1:])
    return ConversationHistory(turns, count)


def probe_redis(url: str, *, timeout_s: float = 2.0) -> str:
    """Check that the Redis at ``url`` answers (``PING``) and can run scripts; returns its
    version (e.g. ``"7.0.15"``). For ``sqlagent doctor`` and readiness checks outside the app.

    Raises :class:`~sqlagent.errors.ConfigError` when redis-py is missing or ``url`` is not a
    Redis URL, and :class:`SharedStateError` when the server cannot be reached, times out,
    refuses the credentials or cannot run Lua scripts.
    """
    try:
        import redis
        import redis.exceptions
    except ImportError as exc:
        raise ConfigError(f"redis_url needs redis-py: {_INSTALL} ({exc})") from None
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
    except ValueError as exc:
        raise ConfigError(f"redis_url: {exc}") from None
    try:
        client.ping()
        if client.eval("return 1", 0) != 1:
            raise SharedStateError("Redis: the Lua script test did not return 1")
        version = client.info("server").get("redis_version", "unknown")
    except (redis.exceptions.RedisError, OSError) as exc:
        raise SharedStateError(f"Redis at {_safe(url)}: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()
    return str(version)


def _safe(url: str) -> str:
    """``url`` without its password, for messages."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))
