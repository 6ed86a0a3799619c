"""`sqlagent serve` under concurrent, mixed-role load, on loopback, against the mock model.

Builds the HR demo in a temporary folder, serves it with uvicorn on 127.0.0.1 (a free port, in
a thread, through a real socket) and sends ``--requests`` questions from ``--clients``
concurrent asyncio/httpx clients, each request with the API key of a role drawn at random
(seeded): viewer, analyst, hr, admin. The questions mix the demo's questions with ones that
read pay and contact details, so every role gets answers, masked answers and denials.

What is checked, independently of the server (a Guard and the policy built here):

- no cross-role leak: each answer carries its own key's role; each SQL that ran is allowed for
  that role when checked again, reads only columns that role may read, and reads no column in
  clear that the role has masked; masked output columns hold only the mask;
- exactly one audit event per request: the JSONL audit log, read after shutdown, holds one
  line per request id the server returned, and nothing else; its hash chain verifies.

Throughput and latency are client-side, over the whole run, from one run (the model is a mock,
so they measure the server, auth, limits, validation, execution and audit, not a model).

    python benchmarks/serve_bench.py [--requests N] [--clients N] [--slots N]
        [--max-seconds S] [--seed N] [--json]

With --json the last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from sqlagent.agent import SQLAgent
from sqlagent.audit import verify_chain
from sqlagent.catalog import reflect_catalog
from sqlagent.config import AgentConfig
from sqlagent.demo import DEMO_QUESTIONS, write_demo
from sqlagent.safety import Guard, Policy
from sqlagent.serve import ServeSettings, create_app, serve_in_thread

ROLES = ("viewer", "analyst", "hr", "admin")
MASK = "***"
#: Questions beyond the demo's, with the SQL the mock answers: pay and contact details.
SENSITIVE = (
    ("List each employee's first name and salary", "SELECT first_name, salary FROM employees"),
    (
        "What are the employees' email addresses?",
        "SELECT first_name, last_name, email FROM employees",
    ),
    (
        "Show the payroll of January 2025",
        "SELECT employee_id, gross_pay, bonus FROM payroll WHERE period = '2025-01'",
    ),
)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class LeakCheck:
    """The demo policy applied by a Guard of our own, to judge each answer after the fact."""

    def __init__(self, url: str, policy_path: Path) -> None:
        self.policy = Policy.from_file(policy_path)
        self.guard = Guard(
            dialect="sqlite", catalog=reflect_catalog(url), policy=self.policy, audit=None
        )

    def problems(self, role: str, body: dict[str, Any]) -> list[str]:
        found: list[str] = []
        if body.get("role") != role:
            found.append(f"answer for role {body.get('role')!r} sent to a {role} key")
        if body.get("status") != "answered":
            if body.get("rows"):
                found.append("rows in a refused answer")
            return found
        access = self.guard.access(role)
        assert access is not None
        verdict = self.guard.check(body["sql"], role=role)
        if not verdict.allowed:
            found.append(f"ran SQL the role may not run: {verdict.summary()}")
        for qualified in verdict.columns:
            table, _, column = qualified.rpartition(".")
            if column not in access.visible.get(table, frozenset()):
                found.append(f"read hidden column {qualified}")
        if verdict.masked_columns:  # the SQL that ran must already carry the mask
            found.append(f"read masked column(s) in clear: {', '.join(verdict.masked_columns)}")
        masked_names = {column for _table, column in access.masked}
        for index, name in enumerate(body["columns"]):
            if name in masked_names and any(row[index] != MASK for row in body["rows"]):
                found.append(f"masked column {name} has clear values")
        return found


async def _load(
    url: str,
    keys: dict[str, str],
    questions: Sequence[str],
    args: argparse.Namespace,
) -> tuple[list[tuple[str, float, httpx.Response]], float]:
    rng = random.Random(args.seed)
    jobs = [(rng.choice(ROLES), rng.choice(questions)) for _ in range(args.requests)]
    results: list[tuple[str, float, httpx.Response]] = []
    deadline = time.monotonic() + args.max_seconds
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def worker() -> None:
            while not queue.empty() and time.monotonic() < deadline:
                role, question = queue.get_nowait()
                start = time.perf_counter()
                response = await client.post(
                    "/v1/chat",
                    json={"question": question},
                    headers={"Authorization": f"Bearer {keys[role]}"},
                )
                results.append((role, time.perf_counter() - start, response))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.clients)))
        elapsed = time.perf_counter() - start
    return results, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--slots", type=int, default=4, help="the server's max_concurrency")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop sending after")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    console = Console(stderr=args.json)

    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        log = Path(tmp) / "audit.jsonl"
        config = AgentConfig.from_mapping(
            {
                "database": demo.url,
                "policy": demo.policy,
                "examples": demo.examples,
                "docs": [demo.glossary],
                "retrieval": {"embedder": "hashing", "store": "memory"},
                "audit_log": log,
                "max_attempts": 1,
            }
        )
        agent = SQLAgent(config)
        for question, sql in SENSITIVE:
            agent.add_example(question, sql)
        keys = {role: f"bench-{role}-key" for role in ROLES}
        settings = ServeSettings.from_mapping(
            {
                "limits": {
                    "max_concurrency": args.slots,
                    "max_queue": args.requests,
                    "rate_per_minute": 0,
                }
            },
            environ={"SQLAGENT_API_KEYS": ",".join(f"{k}:{r}" for r, k in keys.items())},
        )
        checker = LeakCheck(demo.url, demo.policy)
        questions = [q.question for q in DEMO_QUESTIONS] + [q for q, _ in SENSITIVE]
        app = create_app(agent, settings)
        with serve_in_thread(app) as url:
            results, elapsed = asyncio.run(_load(url, keys, questions, args))
        # The server has shut down: the agent is closed and the audit log complete.
        records = [json.loads(line) for line in log.read_text().splitlines()]
        chain_ok = verify_chain(log).ok

    http = Counter(r.status_code for _, _, r in results)
    statuses: Counter[str] = Counter()
    by_role: dict[str, Counter[str]] = {role: Counter() for role in ROLES}
    leaks: list[str] = []
    for role, _, response in results:
        if response.status_code != 200:
            continue
        body = response.json()
        statuses[body["status"]] += 1
        by_role[role][body["status"]] += 1
        by_role[role]["masked"] += bool(body["masked_columns"])
        leaks += [f"{role}: {p}" for p in checker.problems(role, body)]
    ids = Counter(r.headers.get("X-Request-ID") for _, _, r in results)
    logged = Counter(record["request_id"] for record in records)
    audit_exact = ids == logged and set(logged.values()) == {1}
    latencies = [seconds * 1000 for _, seconds, _ in results]
    sent = len(results)
    figures = {
        "requests": sent,
        "clients": args.clients,
        "slots": args.slots,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(sent / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99), 2) if latencies else None,
        "http_200": http[200],
        "answered": statuses["answered"],
        "rejected": statuses["rejected"],
        "failed": statuses["failed"],
        "cross_role_leaks": len(leaks),
        "audit_events": len(records),
        "audit_events_per_request": round(len(records) / sent, 3) if sent else None,
        "audit_exactly_one_per_request": audit_exact,
        "audit_chain_ok": chain_ok,
    }

    table = Table(title=f"sqlagent serve: {sent} requests, {args.clients} clients, loopback")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, str(value))
    console.print(table)
    roles = Table(title="answers by role (status counts; masked = answers with masked columns)")
    for column in ("role", "answered", "masked", "rejected", "failed"):
        roles.add_column(column, justify="right" if column != "role" else "left")
    for role, counts in by_role.items():
        roles.add_row(role, *(str(counts[c]) for c in ("answered", "masked", "rejected", "failed")))
    console.print(roles)
    for leak in leaks[:10]:
        console.print(f"[red]LEAK[/] {leak}")
    if args.json:
        print(json.dumps(figures))
    ok = not leaks and audit_exact and chain_ok and http[200] == sent
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
