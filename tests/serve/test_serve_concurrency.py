"""Many callers with different roles at once: every answer obeys its own caller's role."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import httpx
import pytest

from sqlagent.agent import SQLAgent
from sqlagent.demo import DemoPaths
from sqlagent.llm import MockLLM
from sqlagent.prompt import question_of
from sqlagent.serve import create_app
from tests.serve.conftest import KEYS, RecordingSink, auth, config_for, settings_for

# question -> SQL; the mock yields to the event loop so requests interleave inside the agent.
SQL = {
    "pay": "SELECT first_name, salary FROM employees ORDER BY id LIMIT 3",
    "contacts": "SELECT first_name, email FROM employees ORDER BY id LIMIT 3",
    "teams": "SELECT name FROM departments ORDER BY id",
}


class InterleavingLLM(MockLLM):
    def __init__(self) -> None:
        super().__init__(responses=SQL, question=question_of)

    async def acomplete(self, messages: Any) -> str:
        await asyncio.sleep(0.001)
        return self.complete(messages)


def expected(role: str, question: str, body: dict[str, Any]) -> None:
    """What the demo policy allows each role, checked on the answer alone."""
    assert body["role"] == role
    if question == "teams":
        assert body["status"] == "answered"
        return
    if role == "viewer" or (role == "analyst" and question == "contacts"):
        assert body["status"] == "rejected", body
        assert body["denied"]
        assert not body["rows"]
    elif role == "analyst":
        assert body["status"] == "answered"
        assert {row[1] for row in body["rows"]} == {"***"}
    else:
        assert body["status"] == "answered"
        assert all(row[1] != "***" for row in body["rows"])


@pytest.mark.slow
def test_mixed_roles_never_leak(demo: DemoPaths) -> None:
    sink = RecordingSink()
    agent = SQLAgent(config_for(demo), llm=InterleavingLLM(), audit=sink)
    app = create_app(agent, settings_for(limits={"max_concurrency": 4, "max_queue": 200}))
    jobs = list(itertools.product(KEYS, SQL)) * 4  # 4 keys x 3 questions x 4 = 48 requests

    async def run() -> list[tuple[str, str, httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:

            async def one(key: str, question: str) -> tuple[str, str, httpx.Response]:
                body = {"question": question}
                return key, question, await client.post("/v1/chat", json=body, headers=auth(key))

            return await asyncio.gather(*(one(k, q) for k, q in jobs))

    try:
        results = asyncio.run(run())
    finally:
        agent.close()
    for key, question, response in results:
        assert response.status_code == 200
        expected(KEYS[key], question, response.json())
    events = sink.named("ask")
    assert len(events) == len(jobs)
    by_id = {e.request_id: e for e in events}
    assert set(by_id) == {r.headers["X-Request-ID"] for _, _, r in results}
    for key, _, response in results:
        assert by_id[response.headers["X-Request-ID"]].role == KEYS[key]
    assert Counter(e.role for e in events) == Counter(KEYS[k] for k, _ in jobs)
