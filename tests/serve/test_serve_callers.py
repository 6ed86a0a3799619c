"""Each caller's token bucket (``CallerLimits``): the one rule ``sqlagent serve`` and
``sqlagent mcp`` over HTTP apply, in the process or shared through a real Redis."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sqlagent.serve import (
    ApiKey,
    CallerLimits,
    Principal,
    RedisOutageLog,
    ServeSettings,
    caller_name,
    hash_key,
    shared_state,
)
from tests.serve.redisserver import SharedRedis

ANALYST = Principal("analyst-key", "analyst", "api_key")
ANONYMOUS = Principal("anonymous", "viewer", "default")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settings(**extra: object) -> ServeSettings:
    return ServeSettings.model_validate({"limits": {"rate_per_minute": 60, "burst": 2}, **extra})


def takes(limits: CallerLimits, principal: Principal, host: str | None, n: int) -> list[float]:
    async def main() -> list[float]:
        return [await limits.take(principal, host) for _ in range(n)]

    return asyncio.run(main())


def test_callers_are_credentials_and_anonymous_ones_their_address() -> None:
    assert caller_name(ANALYST, "10.0.0.1") == "analyst-key"
    assert caller_name(ANONYMOUS, "10.0.0.1") == "anonymous@10.0.0.1"
    assert caller_name(Principal("carol", "hr", "jwt"), None) == "carol"


def test_a_bucket_holds_burst_requests_then_refills() -> None:
    clock = Clock()
    limits = CallerLimits(settings(), clock=clock)
    waits = takes(limits, ANALYST, "10.0.0.1", 3)
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(1.0)
    assert takes(limits, ANONYMOUS, "10.0.0.1", 2) == [0.0, 0.0]  # another caller's bucket
    assert takes(limits, ANONYMOUS, "10.0.0.2", 1) == [0.0]  # another address, another bucket
    assert takes(limits, ANONYMOUS, "10.0.0.1", 1)[0] > 0
    clock.now += 1.0
    assert takes(limits, ANALYST, "10.0.0.1", 1) == [0.0]


def test_an_api_keys_own_limits_apply_to_that_key_only() -> None:
    key = ApiKey(name="analyst-key", role="analyst", key_sha256=hash_key("k" * 20), burst=4)
    limits = CallerLimits(settings(keys=[key]), clock=Clock())
    assert takes(limits, ANALYST, None, 5)[:4] == [0.0] * 4
    assert takes(limits, ANALYST, None, 1)[0] > 0
    as_jwt = Principal("analyst-key", "analyst", "jwt")  # the same name, not the key
    assert takes(limits, as_jwt, None, 3)[2] > 0


def test_no_redis_url_means_no_shared_state() -> None:
    assert shared_state(settings()) is None


@pytest.mark.slow
def test_callers_limits_of_two_replicas_share_one_bucket(shared_redis: SharedRedis) -> None:
    config = settings(redis_url=shared_redis.url, redis={"key_prefix": shared_redis.prefix})

    async def main() -> list[float]:
        one, two = shared_state(config), shared_state(config)
        assert one is not None
        assert two is not None
        try:
            replicas = [CallerLimits(config, shared=one), CallerLimits(config, shared=two)]
            return [await replicas[i % 2].take(ANALYST, None) for i in range(4)]
        finally:
            await one.aclose()
            await two.aclose()

    waits = asyncio.run(main())
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0
    assert waits[3] > 0


def test_an_outage_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RedisOutageLog(logging.getLogger("sqlagent.test"), every_s=10, clock=clock)
    with caplog.at_level(logging.ERROR, logger="sqlagent.test"):
        for step in range(25):  # 25 failed requests over 24 s
            clock.now = float(step)
            log("requests get 503", ConnectionError(f"refused {step}"))
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unreachable, requests get 503: refused 0",
        "Redis unreachable, requests get 503: refused 10",
        "Redis unreachable, requests get 503: refused 20",
    ]
