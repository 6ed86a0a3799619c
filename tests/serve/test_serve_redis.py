"""State shared through a real Redis: token buckets, conversations, turn locks, service-wide
admission, and two apps in one process acting as two replicas of one service."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sqlagent.agent import SQLAgent
from sqlagent.demo import DemoPaths
from sqlagent.errors import ConfigError
from sqlagent.serve import (
    ConversationKey,
    RedisConversationStore,
    ServeSettings,
    SharedState,
    create_app,
    hash_key,
    probe_redis,
    serve_in_thread,
)
from sqlagent.serve._limits import QueueFullError
from sqlagent.serve._redis import RedisRateLimiter, RedisTurnLock, ServiceAdmission
from sqlagent.types import Turn
from tests.serve.conftest import KEYS, RecordingSink, auth, config_for
from tests.serve.redisserver import SharedRedis
from tests.serve.test_serve_conversations import COUNT_Q, ENG_Q, recording_llm

pytestmark = pytest.mark.slow  # integration: real processes, servers or models


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def states(redis: SharedRedis, n: int) -> Any:
    """``n`` connection pools to one Redis: as ``n`` replicas would have."""
    made = [SharedState(redis.url, prefix=redis.prefix) for _ in range(n)]
    try:
        yield made
    finally:
        for state in made:
            await state.aclose()


# -- token buckets --------------------------------------------------------------------------------
def test_a_shared_bucket_admits_exactly_burst_requests(shared_redis: SharedRedis) -> None:
    async def main() -> list[float]:
        async with states(shared_redis, 3) as replicas:
            limiters = [RedisRateLimiter(s, per_minute=0.01, burst=7) for s in replicas]
            takes = [limiters[i % 3].take("caller") for i in range(40)]
            return list(await asyncio.gather(*takes))

    waits = run(main())
    assert waits.count(0.0) == 7
    assert all(w > 60 for w in waits if w)  # the next token is far away at 0.01 per minute


def test_buckets_refill_at_the_rate_and_are_per_key(shared_redis: SharedRedis) -> None:
    async def main() -> tuple[float, ...]:
        async with states(shared_redis, 1) as [state]:
            limiter = RedisRateLimiter(state, per_minute=600, burst=1)  # 10 a second
            first, second = await limiter.take("a"), await limiter.take("a")
            other = await limiter.take("b")
            await asyncio.sleep(0.15)
            third = await limiter.take("a")
            own = await limiter.take("c", per_minute=0.01, burst=2)  # a key's own limits
            own2 = await limiter.take("c", per_minute=0.01, burst=2)
            off = await RedisRateLimiter(state, per_minute=0, burst=1).take("a")
            return first, second, other, third, own, own2, off

    first, second, other, third, own, own2, off = run(main())
    assert first == 0.0
    assert 0.0 < second <= 0.1
    assert (other, third, own, own2, off) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert all(":rate:" in key for key in shared_redis.stored_keys())


# -- conversations --------------------------------------------------------------------------------
def test_conversations_are_bounded_like_the_memory_store(shared_redis: SharedRedis) -> None:
    key = ConversationKey("alice", "analyst", "c-1")

    async def main() -> dict[str, Any]:
        async with states(shared_redis, 2) as (one, two):
            a = RedisConversationStore(one, max_conversations=2, max_turns=2, ttl_s=60)
            b = RedisConversationStore(two, max_conversations=2, max_turns=2, ttl_s=60)
            seen: dict[str, Any] = {"empty": await b.history(key)}
            for n in range(3):  # alternate replicas
                await (a if n % 2 else b).append(key, Turn(f"q{n}", f"SELECT {n}"))
            seen["kept"] = await a.history(key)
            seen["other_role"] = await a.history(ConversationKey("alice", "hr", "c-1"))
            await a.append(ConversationKey("bob", "analyst", "c-1"), Turn("b"))
            await b.history(key)  # used: now the most recent
            await a.append(ConversationKey("carol", "analyst", "c-1"), Turn("c"))
            seen["after_eviction"] = await b.history(key)
            seen["bob"] = await b.history(ConversationKey("bob", "analyst", "c-1"))
            return seen

    seen = run(main())
    assert seen["empty"].count == 0
    assert seen["kept"].count == 3
    assert seen["kept"].next_turn == 4
    assert seen["kept"].turns == (Turn("q1", "SELECT 1"), Turn("q2", "SELECT 2"))
    assert seen["other_role"].count == 0  # the key is (caller, role, id)
    assert seen["after_eviction"].count == 3  # the least recently used one was bob's
    assert seen["bob"].count == 0


def test_conversations_expire_after_ttl(shared_redis: SharedRedis) -> None:
    key = ConversationKey("alice", None, "c-2")

    async def main() -> tuple[int, int]:
        async with states(shared_redis, 1) as [state]:
            store = RedisConversationStore(state, ttl_s=0.3)
            await store.append(key, Turn("q"))
            kept = (await store.history(key)).count
            await asyncio.sleep(0.5)
            return kept, (await store.history(key)).count

    assert run(main()) == (1, 0)
    assert not [k for k in shared_redis.stored_keys() if ":conv:" in k]  # the keys expired


def test_a_turn_lock_serializes_replicas_and_its_lease_ends(shared_redis: SharedRedis) -> None:
    key = ConversationKey("alice", "analyst", "c-3")

    async def main() -> tuple[bool, float]:
        async with states(shared_redis, 2) as (one, two):
            first, second = RedisTurnLock(one, lease_s=60), RedisTurnLock(two, lease_s=0.3)
            token = await first.acquire(key, 1)
            with pytest.raises(TimeoutError):
                await second.acquire(key, 0.1)
            await second.release(key, "not-the-token")  # only the holder can release
            timed_out = False
            try:
                await second.acquire(key, 0.1)
            except TimeoutError:
                timed_out = True
            await first.release(key, token)
            other = await second.acquire(key, 1)  # lease 0.3 s; never released
            start = time.monotonic()
            await first.acquire(key, 2)
            return timed_out and bool(other), time.monotonic() - start

    held, waited = run(main())
    assert held
    assert 0.1 < waited < 1.5


# -- service-wide admission -----------------------------------------------------------------------
def test_service_admission_is_fifo_and_bounded(shared_redis: SharedRedis) -> None:
    async def main() -> dict[str, Any]:
        async with states(shared_redis, 2) as (one, two):
            a = ServiceAdmission(one, 2, 2, lease_s=30)
            b = ServiceAdmission(two, 2, 2, lease_s=30)
            m1, m2 = await a.enter("r1"), await b.enter("r2")
            order: list[str] = []

            async def wait(admission: ServiceAdmission, rid: str) -> str:
                member = await admission.enter(rid)
                order.append(rid)
                return member

            w3 = asyncio.create_task(wait(b, "r3"))
            await asyncio.sleep(0.05)
            w4 = asyncio.create_task(wait(a, "r4"))
            await asyncio.sleep(0.05)
            counts = (a.running, a.waiting)
            with pytest.raises(QueueFullError):
                await b.enter("r5")
            await a.leave(m1)
            m3 = await w3
            await b.leave(m2)
            m4 = await w4
            for admission, member in ((b, m3), (a, m4)):
                await admission.leave(member)
            return {"counts": counts, "order": order}

    seen = run(main())
    assert seen["counts"] == (2, 2)
    assert seen["order"] == ["r3", "r4"]


def test_a_dead_replicas_slots_are_freed_by_their_lease(shared_redis: SharedRedis) -> None:
    async def main() -> float:
        async with states(shared_redis, 2) as (one, two):
            dead = ServiceAdmission(one, 1, 1, lease_s=0.3)  # never renews: it "died"
            await dead.enter("r1")
            live = ServiceAdmission(two, 1, 1, lease_s=30)
            start = time.monotonic()
            member = await live.enter("r2")
            waited = time.monotonic() - start
            await live.leave(member)
            return waited

    assert 0.2 < run(main()) < 2


# -- two apps, one service ------------------------------------------------------------------------
def replica_settings(redis: SharedRedis, **data: Any) -> ServeSettings:
    keys: list[dict[str, Any]] = [
        {"name": role, "role": role, "key_sha256": hash_key(k)} for k, role in KEYS.items()
    ]
    keys.append(
        {
            "name": "limited",
            "role": "analyst",
            "key_sha256": hash_key("key-limited"),
            "rate_per_minute": 0.01,
            "burst": 3,
        }
    )
    return ServeSettings.from_mapping(
        {
            "keys": keys,
            "redis_url": redis.url,
            "redis": {"key_prefix": redis.prefix},
            "limits": {"rate_per_minute": 6000, "burst": 100},
            **data,
        }
    )


@pytest.fixture
def replicas(
    demo: DemoPaths, shared_redis: SharedRedis
) -> Iterator[Callable[..., list[httpx.Client]]]:
    """``replicas(n, **settings)``: n apps (own agents, own event loops) sharing the Redis."""
    with contextlib.ExitStack() as stack:

        def start(n: int = 2, **data: Any) -> list[httpx.Client]:
            clients = []
            for _ in range(n):
                agent = SQLAgent(config_for(demo), llm=recording_llm(), audit=RecordingSink())
                app = create_app(agent, replica_settings(shared_redis, **data))
                url = stack.enter_context(serve_in_thread(app))
                clients.append(stack.enter_context(httpx.Client(base_url=url, timeout=30)))
            return clients

        yield start


def test_a_conversation_continues_on_another_replica(replicas: Any) -> None:
    one, two = replicas(2)
    body = {"question": COUNT_Q, "conversation_id": "t-1"}
    first = one.post("/v1/chat", json=body, headers=auth("key-analyst")).json()
    second = two.post(
        "/v1/chat", json={**body, "question": ENG_Q}, headers=auth("key-analyst")
    ).json()
    third = one.post("/v1/chat", json={**body, "question": ENG_Q}, headers=auth("key-hr")).json()
    assert (first["turn"], second["turn"], third["turn"]) == (1, 2, 1)
    assert second["status"] == "answered"
    assert "Engineering" in second["sql"]  # the follow-up saw the first turn


def test_an_api_keys_own_limit_holds_across_replicas(replicas: Any) -> None:
    clients = replicas(2)
    codes = [
        clients[n % 2].post("/v1/chat", json={"question": COUNT_Q}, headers=auth("key-limited"))
        for n in range(7)
    ]
    assert Counter(r.status_code for r in codes) == {200: 3, 429: 4}
    assert all(int(r.headers["Retry-After"]) > 60 for r in codes if r.status_code == 429)
    ok = clients[0].post("/v1/chat", json={"question": COUNT_Q}, headers=auth("key-analyst"))
    assert ok.status_code == 200  # another key, the generous default bucket


def test_service_wide_slots_show_in_the_metrics_and_ready(replicas: Any) -> None:
    one, _two = replicas(2, limits={"service_max_concurrency": 2, "rate_per_minute": 0})
    assert one.post("/v1/chat", json={"question": COUNT_Q}, headers=auth("key-hr")).is_success
    ready = one.get("/ready").json()
    assert ready["checks"]["redis"] == "ok"
    metrics = one.get("/metrics").text
    assert "sqlagent_service_in_flight 0.0" in metrics
    assert "sqlagent_service_queue_depth 0.0" in metrics


# -- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "environ", "match"),
    [
        ({"redis_url": "http://localhost"}, {}, "redis://"),
        ({"redis_url": "redis://localhost/abc"}, {}, "database number"),
        ({"redis_url": "redis://:secret@localhost/0"}, {}, "SQLAGENT_REDIS_URL"),
        ({"limits": {"service_max_concurrency": 4}}, {}, "needs redis_url"),
        ({"redis": {"key_prefix": "a b"}}, {}, "key_prefix"),
        ({}, {"SQLAGENT_REDIS_URL": "memcached://x"}, "redis://"),
    ],
)
def test_bad_redis_settings(data: dict[str, Any], environ: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ServeSettings.from_mapping(data, environ=environ)


def test_the_environment_url_wins_and_is_not_shown() -> None:
    settings = ServeSettings.from_mapping(
        {"redis_url": "redis://file-host:6379/1", "limits": {"service_max_concurrency": 8}},
        environ={"SQLAGENT_REDIS_URL": "rediss://:s3cret@cache:6380/2"},
    )
    assert settings.redis_url == "rediss://:s3cret@cache:6380/2"
    assert "s3cret" not in repr(settings)
    assert settings.redis.limits_fail_open is False


def test_probe_redis(shared_redis: SharedRedis) -> None:
    assert probe_redis(shared_redis.url)[0].isdigit()
    with pytest.raises(ConfigError):
        probe_redis("http://not-redis")
