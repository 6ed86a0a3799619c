"""Each caller's token bucket: one rule for ``sqlagent serve`` and ``sqlagent mcp --transport
http``, in one process or shared by every replica through Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlagent.serve._auth import Principal
from sqlagent.serve._limits import RateLimiter
from sqlagent.serve._redis import RedisRateLimiter, SharedState
from sqlagent.serve._settings import ServeSettings

__all__ = ["CallerLimits", "RedisOutageLog", "caller_name", "shared_state"]


def shared_state(settings: ServeSettings) -> SharedState | None:
    """The Redis the settings' ``redis_url`` names, for the replicas' shared state (``None``
    without one). No connection is made before first use."""
    if settings.redis_url is None:
        return None
    redis = settings.redis
    return SharedState(settings.redis_url, prefix=redis.key_prefix, timeout_s=redis.timeout_s)


def caller_name(principal: Principal, client_host: str | None) -> str:
    """Whose bucket (and conversations) a request uses: the credential's name; callers let in
    without one (``default_role``) are told apart by their address, never by their port, so
    opening another connection does not give a fresh bucket."""
    return principal.name if principal.via != "default" else f"anonymous@{client_host}"


class CallerLimits:
    """The per-caller token bucket of the serve settings' ``limits`` (``rate_per_minute``,
    ``burst``), or an API key's own limits for that key.

    With ``shared`` (the settings' Redis) the buckets live in Redis, so N tokens admit N
    requests across every replica and both interfaces; :meth:`take` then raises
    :class:`~sqlagent.errors.SharedStateError` when Redis fails, and the caller decides between
    503 and ``limits_fail_open``. Without it they live in this process (``clock`` drives them).
    """

    def __init__(
        self,
        settings: ServeSettings,
        *,
        shared: SharedState | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = settings.limits
        self.local = RateLimiter(limits.rate_per_minute, limits.burst, clock=clock)
        self.shared: RedisRateLimiter | None = None
        if shared is not None:
            self.shared = RedisRateLimiter(shared, limits.rate_per_minute, limits.burst)
        self.key_limits = {k.name: (k.rate_per_minute, k.burst) for k in settings.keys}

    async def take(self, principal: Principal, client_host: str | None) -> float:
        """``0.0`` when the request may go, else the seconds until a token is back. The bucket
        is :func:`caller_name`'s."""
        caller = caller_name(principal, client_host)
        per_minute, burst = (
            self.key_limits.get(principal.name, (None, None))
            if principal.via == "api_key"
            else (None, None)
        )
        if self.shared is None:
            return self.local.take(caller, per_minute=per_minute, burst=burst)
        return await self.shared.take(caller, per_minute=per_minute, burst=burst)


class RedisOutageLog:
    """Log "Redis unreachable, <what>: <error>" at most once per ``every_s`` seconds, so an
    outage under load is one line every few seconds, not one per request."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every_s = every_s
        self._clock = clock
        self._last: float | None = None

    def __call__(self, what: str, exc: BaseException) -> None:
        now = self._clock()
        if self._last is None or now - self._last >= self.every_s:
            self._last = now
            self.logger.error("Redis unreachable, %s: %s", what, exc)
