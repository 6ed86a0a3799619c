"""Faults on the real services: Redis killed or frozen, the SQL database gone mid-request.

Redis faults use a ``redis-server`` of the test's own (killed with SIGKILL, frozen with
SIGSTOP); database faults corrupt a SQLite file, or stop a PostgreSQL database from taking
connections and terminate the ones it has (``pg_terminate_backend``), while a request waits
inside the agent for its model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sqlagent.agent import SQLAgent
from sqlagent.audit import verify_chain, verify_sql_chain
from sqlagent.demo import DemoPaths, write_demo
from sqlagent.serve import ServeSettings, create_app, hash_key, serve_in_thread
from tests.dbservers import (
    PG_ADMIN_URL,
    copy_sqlite,
    create_test_database,
    drop_test_database,
)
from tests.serve.conftest import KEYS, GatedLLM, auth, config_for
from tests.serve.redisserver import RedisProcess
from tests.serve.test_serve_conversations import COUNT_Q, recording_llm

pytestmark = pytest.mark.slow  # integration: real processes, servers or models

PAY_SQL = "SELECT first_name, salary FROM employees ORDER BY id LIMIT 3"


def settings(redis_url: str | None = None, **data: Any) -> ServeSettings:
    keys = [{"name": role, "role": role, "key_sha256": hash_key(k)} for k, role in KEYS.items()]
    extra: dict[str, Any] = {"redis_url": redis_url} if redis_url else {}
    return ServeSettings.from_mapping({"keys": keys, **extra, **data})


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Replica:
    """One app on a real socket, with a JSONL audit log; ``ask`` posts ``/v1/chat``."""

    def __init__(self, client: httpx.Client, log: Path) -> None:
        self.client = client
        self.log = log

    def ask(self, question: str = COUNT_Q, key: str = "key-analyst", **body: Any) -> httpx.Response:
        return self.client.post("/v1/chat", json={"question": question, **body}, headers=auth(key))


@pytest.fixture
def replica(demo: DemoPaths, tmp_path: Path) -> Iterator[Any]:
    """``replica(settings, llm=None, demo=None)``: a started app; stopped after the test."""
    stack: list[Any] = []

    def start(served: ServeSettings, llm: Any = None, paths: DemoPaths | None = None) -> Replica:
        log = tmp_path / f"audit-{len(stack)}.jsonl"
        config = config_for(paths or demo, audit_log=log, max_attempts=2)
        agent = SQLAgent(config, llm=llm or recording_llm())
        server = serve_in_thread(create_app(agent, served))
        url = server.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        stack.append((server, client))
        return Replica(client, log)

    yield start
    for server, client in reversed(stack):
        client.close()
        server.__exit__(None, None, None)


# -- Redis ----------------------------------------------------------------------------------------
def test_redis_killed_fails_closed_with_503_and_recovers(
    replica: Any, redis_process: RedisProcess
) -> None:
    served = replica(settings(redis_process.url))
    assert served.ask(conversation_id="c-1").status_code == 200
    assert served.client.get("/ready").status_code == 200
    redis_process.kill()
    refused = [served.ask(), served.ask(conversation_id="c-1")]
    for response in refused:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["error"]["type"] == "unavailable"
    ready = served.client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unreachable")
    metrics = served.client.get("/metrics").text
    assert 'sqlagent_http_requests_total{endpoint="/v1/chat",outcome="unavailable"} 2.0' in metrics
    # A request refused before the agent leaves its own audit event, as any other refusal.
    redis_process.start()  # the same port, empty (no persistence): the pool reconnects
    back = served.ask(conversation_id="c-1")
    assert back.status_code == 200
    assert back.json()["turn"] == 1  # what the killed Redis held is gone
    events = audit_lines(served.log)
    assert [(e["name"], e["extra"].get("http_status")) for e in events] == [
        ("ask", None),
        ("serve", 503),
        ("serve", 503),
        ("ask", None),
    ]
    assert {e["request_id"] for e in events[1:3]} == {r.headers["X-Request-ID"] for r in refused}
    assert verify_chain(served.log).ok


def test_fail_open_lets_limits_pass_but_never_conversations(
    replica: Any, redis_process: RedisProcess
) -> None:
    served = replica(
        settings(
            redis_process.url,
            redis={"limits_fail_open": True},
            limits={"service_max_concurrency": 2},
        )
    )
    redis_process.kill()
    assert served.ask().status_code == 200  # past the rate limit and the service-wide slots
    assert served.ask(conversation_id="c-1").status_code == 503
    ready = served.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"].endswith("(limits fail open)")


def test_a_frozen_redis_times_out_into_503(replica: Any, redis_process: RedisProcess) -> None:
    served = replica(settings(redis_process.url, redis={"timeout_s": 0.3}))
    assert served.ask().status_code == 200
    assert redis_process.process is not None
    os.kill(redis_process.process.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        response = served.ask()
        took = time.monotonic() - start
    finally:
        os.kill(redis_process.process.pid, signal.SIGCONT)
    assert response.status_code == 503
    assert took < 3  # two attempts of 0.3 s, not a hang
    assert served.ask().status_code == 200


# -- the SQL database -----------------------------------------------------------------------------
def ask_in_background(served: Replica) -> tuple[threading.Thread, list[httpx.Response]]:
    got: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: got.append(served.ask("pay?", key="key-hr")))
    thread.start()
    return thread, got


def test_sqlite_file_broken_mid_request_gives_an_audited_failure(
    replica: Any, tmp_path: Path
) -> None:
    own = write_demo(tmp_path / "demo")
    llm = GatedLLM(PAY_SQL)
    served = replica(settings(), llm=llm, paths=own)
    thread, got = ask_in_background(served)
    assert llm.entered.acquire(timeout=10)  # the request is inside the agent, at the model
    database = Path(own.database)
    database.write_bytes(b"\xde\xad" * (database.stat().st_size // 2))  # not a database now
    llm.gate.set()
    thread.join(30)
    [response] = got
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert "not a database" in body["error"]
    [event] = audit_lines(served.log)
    assert (event["request_id"], event["verdict"]) == (body["audit_id"], "error")
    assert "not a database" in event["error"]
    assert verify_chain(served.log).ok
    ready = served.client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unreachable")


PG_NAME = "sqlagent_serve_fault"


@pytest.fixture
def pg_database(demo: DemoPaths) -> Iterator[str]:
    url = create_test_database("postgres", PG_NAME)
    copy_sqlite(Path(demo.database), url)
    yield url
    drop_test_database("postgres", PG_NAME)


@pytest.mark.postgres
def test_postgres_connections_terminated_mid_request(
    replica: Any, demo: DemoPaths, pg_database: str, tmp_path: Path
) -> None:
    llm = GatedLLM(PAY_SQL)
    served = replica(settings(), llm=llm, paths=dataclasses.replace(demo, url=pg_database))
    llm.gate.set()
    assert served.ask("warm the pool", key="key-hr").json()["status"] == "answered"
    assert llm.entered.acquire(timeout=1)
    llm.gate.clear()
    thread, got = ask_in_background(served)
    assert llm.entered.acquire(timeout=10)
    name = sa.make_url(pg_database).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            terminated = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar_one()
        assert terminated >= 1  # the agent's pooled connection
        llm.gate.set()
        thread.join(30)
        ready = served.client.get("/ready")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        admin.dispose()
    [response] = got
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    events = audit_lines(served.log)
    assert [e["verdict"] for e in events] == ["allowed", "error"]
    assert events[1]["request_id"] == body["audit_id"]
    assert events[1]["error"] == body["error"]
    assert verify_chain(served.log).ok
    assert ready.status_code == 503


AUDIT_DB = "sqlagent_serve_audit_fault"


@pytest.fixture
def audit_database() -> Iterator[str]:
    yield create_test_database("postgres", AUDIT_DB)
    drop_test_database("postgres", AUDIT_DB)


def _connections(url: str, allowed: bool) -> None:
    """Let connections to ``url``'s database in, or refuse them and end the open ones."""
    name = sa.make_url(url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}"))
            if not allowed:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
    finally:
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("policy", ["fail", "warn"])
def test_an_unreachable_audit_database_withholds_the_answer(
    demo: DemoPaths, audit_database: str, policy: str
) -> None:
    """The shared audit chain in PostgreSQL goes away: under ``on_audit_error: fail`` the answer
    is withheld (500), under ``warn`` it is given; back, the chain verifies."""
    config = config_for(demo, audit_log=audit_database, on_audit_error=policy)
    agent = SQLAgent(config, llm=recording_llm())
    with (
        serve_in_thread(create_app(agent, settings())) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):

        def ask() -> httpx.Response:
            return client.post("/v1/chat", json={"question": COUNT_Q}, headers=auth("key-hr"))

        assert ask().status_code == 200
        _connections(audit_database, allowed=False)
        try:
            down = ask()
        finally:
            _connections(audit_database, allowed=True)
        if policy == "fail":
            assert down.status_code == 500
            assert "could not be audited" in down.json()["error"]["message"]
            assert "rows" not in down.text
        else:
            assert down.status_code == 200
            assert down.json()["status"] == "answered"
        assert ask().status_code == 200
    report = verify_sql_chain(audit_database)
    assert report.ok, report.problems
    assert report.lines == 2  # the request whose event could not be written has none
