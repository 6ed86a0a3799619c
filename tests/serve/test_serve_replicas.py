"""Three ``sqlagent serve`` processes, one service: a real Redis (its own key prefix on the test
database number) shares limits and conversations; one audit log holds every request.

Done when: a per-key limit of N admits exactly N requests across all replicas; a conversation
started on one replica continues on another; after concurrent load on all three the audit
holds exactly one event per request and verifies; tampering one record is detected; and a
replica killed mid-load leaves every request that got a 200 with exactly one audit record in
a chain that still verifies.

The audit goes to ONE hash chain in a PostgreSQL table (``audit_log`` a database URL) that all
replicas write, serialized by the chain head's row lock. Set ``AUDIT_BACKEND`` to ``"jsonl"`` to
run the same tests with a hash-chained JSONL file all replicas append to.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sqlagent.audit import is_audit_url
from sqlagent.demo import DEMO_QUESTIONS, DemoPaths
from sqlagent.serve import hash_key
from tests.dbservers import execute_sql
from tests.serve.conftest import KEYS
from tests.serve.redisserver import SharedRedis
from tests.serve.replicas import Replica, replica_files, start_replicas

pytestmark = pytest.mark.slow

#: Where the replicas write the audit: "jsonl" (a file) or "postgres" (a database URL).
AUDIT_BACKEND = "postgres"
AUDIT_DB = "sqlagent_serve_audit"
N = 5  # the limited key's burst: N requests, then nothing for a very long time
LIMITED_KEY = "key-limited"
QUESTIONS = [q.question for q in DEMO_QUESTIONS]


@pytest.fixture(scope="module")
def audit_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if AUDIT_BACKEND == "postgres":
        from tests.dbservers import create_test_database, drop_test_database

        yield create_test_database("postgres", AUDIT_DB)
        drop_test_database("postgres", AUDIT_DB)
    else:
        yield str(tmp_path_factory.mktemp("audit") / "audit.jsonl")


def recorded_ids(target: str) -> list[str]:
    """The request id of every audit record, in chain order."""
    if is_audit_url(target):
        engine = sa.create_engine(target)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT request_id FROM sqlagent_audit ORDER BY seq"))
                return [row[0] for row in rows]
        finally:
            engine.dispose()
    return [json.loads(line)["request_id"] for line in Path(target).read_text().splitlines()]


def tamper(target: str) -> None:
    """Change the question of one record, as someone editing the log would."""
    if is_audit_url(target):
        execute_sql(target, "UPDATE sqlagent_audit SET question = 'edited' WHERE seq = 1")
        return
    path = Path(target)
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[1])
    record["question"] = "edited"
    lines[1] = json.dumps(record) + "\n"
    path.write_text("".join(lines))


def verify(target: str) -> subprocess.CompletedProcess[str]:
    """``sqlagent audit verify`` on the log, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "sqlagent.cli", "audit", "verify", target],
        capture_output=True,
        text=True,
        check=False,
    )


def serve_config(redis: SharedRedis) -> dict[str, Any]:
    keys: list[dict[str, Any]] = [
        {"name": role, "role": role, "key_sha256": hash_key(k)} for k, role in KEYS.items()
    ]
    keys.append(
        {
            "name": "limited",
            "role": "analyst",
            "key_sha256": hash_key(LIMITED_KEY),
            "rate_per_minute": 0.001,
            "burst": N,
        }
    )
    return {
        "keys": keys,
        "redis_url": redis.url,
        "redis": {"key_prefix": redis.prefix},
        "limits": {"max_concurrency": 4, "max_queue": 1000, "rate_per_minute": 0},
    }


@dataclass
class Service:
    """The replicas, and the request id of every response any test got from them."""

    replicas: list[Replica]
    audit: str
    ids: list[str] = field(default_factory=list)

    def post(self, index: int, key: str, body: dict[str, Any]) -> httpx.Response:
        url = self.replicas[index % len(self.replicas)].url
        response = httpx.post(f"{url}/v1/chat", json=body, headers=_auth(key), timeout=30)
        self.ids.append(response.headers["X-Request-ID"])
        return response


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def service(
    demo: DemoPaths, audit_target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    redis = _module_redis()
    folder = tmp_path_factory.mktemp("replicas")
    config, serve_file = replica_files(
        folder, demo, audit_log=audit_target, serve=serve_config(redis)
    )
    try:
        with start_replicas(3, config, serve_file) as replicas:
            yield Service(replicas, audit_target)
    finally:
        redis.clean()


def _module_redis() -> SharedRedis:
    import uuid

    from sqlagent.serve import SharedStateError, probe_redis
    from tests.serve.redisserver import REDIS_URL

    try:
        probe_redis(REDIS_URL, timeout_s=1.0)
    except SharedStateError as exc:
        pytest.skip(f"no Redis for the tests: {exc}")
    return SharedRedis(REDIS_URL, f"t-{uuid.uuid4().hex[:10]}")


async def _load(
    replicas: list[Replica],
    jobs: list[tuple[str, str]],
    clients: int,
    results: list[httpx.Response | Exception] | None = None,
) -> list[httpx.Response | Exception]:
    """``jobs`` (key, question) round-robin over the replicas from ``clients`` tasks; each
    outcome is appended to ``results`` as it comes (a response, or the transport error)."""
    results = [] if results is None else results
    queue = list(enumerate(jobs))
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            while queue:
                index, (key, question) = queue.pop()
                url = replicas[index % len(replicas)].url
                try:
                    response = await client.post(
                        f"{url}/v1/chat", json={"question": question}, headers=_auth(key)
                    )
                except httpx.TransportError as exc:
                    results.append(exc)
                else:
                    results.append(response)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return results


def test_a_per_key_limit_admits_exactly_n_across_replicas(service: Service) -> None:
    async def burst() -> list[httpx.Response | Exception]:
        jobs = [(LIMITED_KEY, QUESTIONS[0])] * (3 * N)
        return await _load(service.replicas, jobs, clients=3 * N)

    responses = [r for r in asyncio.run(burst()) if isinstance(r, httpx.Response)]
    service.ids += [r.headers["X-Request-ID"] for r in responses]
    assert len(responses) == 3 * N
    assert Counter(r.status_code for r in responses) == {200: N, 429: 2 * N}
    assert all(int(r.headers["Retry-After"]) > 60 for r in responses if r.status_code == 429)


def test_a_conversation_started_on_one_replica_continues_on_another(service: Service) -> None:
    turns = []
    for index, question in enumerate(QUESTIONS[:4]):  # replicas 0, 1, 2, 0
        response = service.post(
            index, "key-hr", {"question": question, "conversation_id": "cross-replica"}
        )
        assert response.status_code == 200
        turns.append(response.json()["turn"])
    assert turns == [1, 2, 3, 4]
    other = service.post(1, "key-analyst", {"question": QUESTIONS[0], "conversation_id": "x"})
    assert other.json()["turn"] == 1  # another credential: another conversation


def test_concurrent_load_is_audited_once_per_request_and_tampering_is_found(
    service: Service,
) -> None:
    rng = random.Random(15)
    jobs = [(rng.choice(list(KEYS)), rng.choice(QUESTIONS)) for _ in range(150)]
    results = asyncio.run(_load(service.replicas, jobs, clients=24))
    responses = [r for r in results if isinstance(r, httpx.Response)]
    assert len(responses) == len(jobs)
    assert {r.status_code for r in responses} == {200}
    assert {r.json()["status"] for r in responses} <= {"answered", "rejected"}
    service.ids += [r.headers["X-Request-ID"] for r in responses]
    for replica in service.replicas:  # each one served part of the load
        metrics = httpx.get(f"{replica.url}/metrics").text
        assert 'sqlagent_http_requests_total{endpoint="/v1/chat",outcome="answered"}' in metrics

    recorded = Counter(recorded_ids(service.audit))
    assert recorded == Counter(service.ids)
    assert set(recorded.values()) == {1}
    report = verify(service.audit)
    assert report.returncode == 0, report.stdout + report.stderr
    tamper(service.audit)
    report = verify(service.audit)
    assert report.returncode == 1
    where = "row 1" if is_audit_url(service.audit) else "line 2"
    assert f"{where}: edited" in report.stdout


def test_a_replica_killed_mid_load_leaves_a_complete_verifiable_audit(
    demo: DemoPaths, tmp_path: Path
) -> None:
    redis = _module_redis()
    if AUDIT_BACKEND == "postgres":
        from tests.dbservers import create_test_database

        audit = create_test_database("postgres", AUDIT_DB + "_kill")
    else:
        audit = str(tmp_path / "audit.jsonl")
    config, serve_file = replica_files(tmp_path, demo, audit_log=audit, serve=serve_config(redis))
    rng = random.Random(7)
    jobs = [(rng.choice(list(KEYS)), rng.choice(QUESTIONS)) for _ in range(300)]
    try:
        with start_replicas(3, config, serve_file) as replicas:

            async def load_and_kill() -> list[httpx.Response | Exception]:
                done: list[httpx.Response | Exception] = []
                load = asyncio.ensure_future(_load(replicas, jobs, clients=24, results=done))
                while len(done) < len(jobs) // 5:  # a fifth of the load is answered
                    await asyncio.sleep(0.005)
                replicas[2].kill()  # SIGKILL, with requests in flight
                return await load

            results = asyncio.run(load_and_kill())
    finally:
        redis.clean()
    ok = [r.headers["X-Request-ID"] for r in results if isinstance(r, httpx.Response)]
    assert all(r.status_code == 200 for r in results if isinstance(r, httpx.Response))
    lost = [r for r in results if isinstance(r, Exception)]
    assert lost  # the killed replica's share
    assert len(ok) > len(jobs) // 2
    recorded = Counter(recorded_ids(audit))
    assert set(recorded.values()) == {1}  # no request recorded twice
    assert all(recorded[rid] == 1 for rid in ok)  # each 200 has exactly one record
    # Beyond those: only requests the killed replica answered into a closed connection.
    assert len(recorded) - len(ok) <= len(lost)
    report = verify(audit)
    assert report.returncode == 0, report.stdout + report.stderr
