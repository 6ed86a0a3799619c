"""`sqlagent serve` under concurrent, mixed-role load, on loopback, against the mock model.

Builds the HR demo in a temporary folder, serves it with uvicorn on 127.0.0.1 (a free port, in
a thread, through a real socket) and sends ``--requests`` questions per run from ``--clients``
concurrent clients, each request with the API key of a role drawn at random (seeded): viewer,
analyst, hr, admin. The questions mix the demo's questions with ones that read pay and contact
details, so every role gets answers, masked answers and denials. Two kinds of client, in the
same run and against the same server (``--client``, default both):

- ``httpx``: asyncio tasks sharing one ``httpx.AsyncClient``, posting to ``/v1/chat``;
- ``openai``: threads, each with its own official ``openai.OpenAI`` clients (one per role key),
  calling ``chat.completions.create`` on ``/v1/chat/completions``.

Each kind runs ``--repeats`` times, interleaved (httpx, openai, httpx, ...), with the same
requests in the same repeat; requests/s is reported as the median of the repeats with their
range. A few unmeasured requests per role warm the server up first.

What is checked, independently of the server (a Guard and the policy built here), over every
request of every run:

- no cross-role leak: each answer carries its own key's role; each SQL that ran is allowed for
  that role when checked again, reads only columns that role may read, and reads no column in
  clear that the role has masked; masked output columns hold only the mask;
- exactly one audit event per request: the JSONL audit log, read after shutdown, holds one
  line per request id the server returned, and nothing else; its hash chain verifies.

Throughput and latency are client-side (the model is a mock, so they measure the server, auth,
limits, validation, execution and audit, and the client library, not a model). Client and
server share one process and its GIL, so the figures compare clients with each other; they are
not the server's capacity with clients on other machines.

    python benchmarks/serve_bench.py [--requests N] [--clients N] [--slots N] [--repeats N]
        [--client httpx|openai|both] [--max-seconds S] [--seed N] [--json]

``--replicas N`` measures the scale-out instead: separate ``sqlagent serve`` processes on
loopback ports (the demo, the mock model, one JSONL audit log they all append to), in four
set-ups within one run: 1 and N replicas, each without and with ``redis_url`` (a Redis of its
own unless ``--redis-url``; with Redis the service-wide admission is on too, with a bound it
never reaches, so its round trips are paid). Per set-up, from ``--clients`` asyncio clients
round robin over the replicas: requests/s and p50/p99 latency of plain questions, and of
conversation turns (``conversation_id``: a lock, the history, the new turn, the unlock). The
cost of the Redis round trips per request is measured on one replica at concurrency 1 (median
latency with minus without Redis, ``--probe`` sequential requests each), with the Redis round
trips and commands (those inside scripts included) per request, from Redis's ``INFO``.
Checks: every response a 200 (answered, or refused by the policy), exactly one audit event
per request, and the chain verifies.

    python benchmarks/serve_bench.py --replicas 3 [--requests N] [--clients N] [--slots N]
        [--repeats N] [--probe N] [--redis-url URL] [--json]

With --json the last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
from sqlagent.serve import ServeSettings, create_app, hash_key, serve_in_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/
from tests.serve.replicas import Replica, replica_files, start_replicas

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
        self.guard = Guard(dialect="sqlite", catalog=reflect_catalog(url), policy=self.policy)

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


@dataclass(frozen=True, slots=True)
class Result:
    """One request as its client saw it: the answer object when the status is 200."""

    role: str
    seconds: float
    status: int
    request_id: str | None
    answer: dict[str, Any] | None


Job = tuple[str, str]  # (role, question)


async def _load_httpx(
    url: str, keys: dict[str, str], jobs: Sequence[Job], args: argparse.Namespace
) -> tuple[list[Result], float]:
    results: list[Result] = []
    deadline = time.monotonic() + args.max_seconds
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        queue: asyncio.Queue[Job] = asyncio.Queue()
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
                seconds = time.perf_counter() - start
                answer = response.json() if response.status_code == 200 else None
                rid = response.headers.get("X-Request-ID")
                results.append(Result(role, seconds, response.status_code, rid, answer))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.clients)))
        elapsed = time.perf_counter() - start
    return results, elapsed


def _load_openai(
    url: str, keys: dict[str, str], jobs: Sequence[Job], args: argparse.Namespace
) -> tuple[list[Result], float]:
    """``--clients`` threads, each with its own OpenAI clients (made before the clock starts)."""
    import openai

    pending: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        pending.put(job)
    results: list[Result] = []  # list.append is atomic
    ready = threading.Barrier(args.clients + 1)
    deadline = time.monotonic() + args.max_seconds

    def worker() -> None:
        sdks = {
            role: openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)
            for role, key in keys.items()
        }
        try:
            ready.wait()
            while time.monotonic() < deadline:
                try:
                    role, question = pending.get_nowait()
                except queue.Empty:
                    break
                start = time.perf_counter()
                try:
                    raw = sdks[role].chat.completions.with_raw_response.create(
                        model="sqlagent", messages=[{"role": "user", "content": question}]
                    )
                    completion = raw.parse()
                    status, headers = raw.status_code, raw.headers
                    answer = (completion.model_extra or {}).get("sqlagent")
                except openai.APIStatusError as exc:
                    status, headers, answer = exc.status_code, exc.response.headers, None
                seconds = time.perf_counter() - start
                rid = headers.get("X-Request-ID")
                results.append(Result(role, seconds, status, rid, answer))
        finally:
            for sdk in sdks.values():
                sdk.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - start


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def _rate_table(title: str, labels: tuple[str, str]) -> Table:
    """A table of throughput rows: two label columns, then the cells of :func:`_rate_cells`."""
    table = Table(title=title)
    for column in (*labels, "requests/s median", "range", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in labels else "right")
    return table


def _rate_cells(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """A figure row's requests/s median, its range, p50 and p99, as table cells."""
    rate = row["throughput_rps"]
    return (
        f"{rate['median']:.1f}",
        f"{rate['min']:.1f}-{rate['max']:.1f}",
        str(row["p50_ms"]),
        str(row["p99_ms"]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--slots", type=int, default=4, help="the server's max_concurrency")
    parser.add_argument("--repeats", type=int, default=3, help="runs per kind of client")
    parser.add_argument("--client", choices=("httpx", "openai", "both"), default="both")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop a run after")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--replicas", type=int, default=0, help="N > 0: N server processes, with and without Redis"
    )
    parser.add_argument("--probe", type=int, default=300, help="--replicas: sequential requests")
    parser.add_argument("--redis-url", help="--replicas: this Redis (default: one of its own)")
    args = parser.parse_args(argv)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    if args.replicas > 0:
        return replicas_main(args)
    console = Console(stderr=args.json)
    kinds = ("httpx", "openai") if args.client == "both" else (args.client,)

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
                    "max_queue": max(args.requests, args.clients),
                    "rate_per_minute": 0,
                }
            },
            environ={"SQLAGENT_API_KEYS": ",".join(f"{k}:{r}" for r, k in keys.items())},
        )
        checker = LeakCheck(demo.url, demo.policy)
        questions = [q.question for q in DEMO_QUESTIONS] + [q for q, _ in SENSITIVE]
        runs: dict[str, list[tuple[list[Result], float]]] = {kind: [] for kind in kinds}
        warmup: list[str | None] = []
        app = create_app(agent, settings)
        with serve_in_thread(app) as url:
            with httpx.Client(base_url=url, timeout=60) as client:
                for role in ROLES:  # role views, connections: built before any clock runs
                    for question in questions[:3]:
                        response = client.post(
                            "/v1/chat",
                            json={"question": question},
                            headers={"Authorization": f"Bearer {keys[role]}"},
                        )
                        warmup.append(response.headers.get("X-Request-ID"))
            for repeat in range(args.repeats):
                rng = random.Random(args.seed + repeat)
                jobs = [(rng.choice(ROLES), rng.choice(questions)) for _ in range(args.requests)]
                for kind in kinds:
                    if kind == "httpx":
                        runs[kind].append(asyncio.run(_load_httpx(url, keys, jobs, args)))
                    else:
                        runs[kind].append(_load_openai(url, keys, jobs, args))
        # The server has shut down: the agent is closed and the audit log complete.
        records = [json.loads(line) for line in log.read_text().splitlines()]
        chain_ok = verify_chain(log).ok

    everything = [r for kind in kinds for results, _ in runs[kind] for r in results]
    http = Counter(r.status for r in everything)
    statuses: Counter[str] = Counter()
    by_role: dict[str, Counter[str]] = {role: Counter() for role in ROLES}
    leaks: list[str] = []
    for result in everything:
        if result.answer is None:
            continue
        statuses[result.answer["status"]] += 1
        by_role[result.role][result.answer["status"]] += 1
        by_role[result.role]["masked"] += bool(result.answer["masked_columns"])
        leaks += [f"{result.role}: {p}" for p in checker.problems(result.role, result.answer)]
    ids = Counter([r.request_id for r in everything] + warmup)
    logged = Counter(record["request_id"] for record in records)
    audit_exact = ids == logged and set(logged.values()) == {1}
    sent = len(everything)

    by_client: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        latencies = [r.seconds * 1000 for results, _ in runs[kind] for r in results]
        rates = [len(results) / elapsed for results, elapsed in runs[kind] if elapsed]
        by_client[kind] = {
            "endpoint": "/v1/chat" if kind == "httpx" else "/v1/chat/completions",
            "requests": sum(len(results) for results, _ in runs[kind]),
            "throughput_rps": _spread(rates),
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p99_ms": round(_percentile(latencies, 0.99), 2) if latencies else None,
        }
    figures: dict[str, Any] = {
        "requests": sent,
        "requests_per_run": args.requests,
        "repeats": args.repeats,
        "clients": args.clients,
        "slots": args.slots,
        "by_client": by_client,
        "http_200": http[200],
        "answered": statuses["answered"],
        "rejected": statuses["rejected"],
        "failed": statuses["failed"],
        "cross_role_leaks": len(leaks),
        "audit_events": len(records),
        "audit_events_per_request": round(len(records) / (sent + len(warmup)), 3),
        "audit_exactly_one_per_request": audit_exact,
        "audit_chain_ok": chain_ok,
    }

    title = (
        f"sqlagent serve: {args.requests} requests x {args.repeats} runs per client, "
        f"{args.clients} clients, {args.slots} slots, loopback"
    )
    clients = _rate_table(title, ("client", "endpoint"))
    for kind, row in by_client.items():
        clients.add_row(kind, row["endpoint"], *_rate_cells(row))
    console.print(clients)
    table = Table(title="checks over every request")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        if name != "by_client":
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


# -- --replicas: server processes, with and without Redis ----------------------------------------
@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    """``url``, or a ``redis-server`` of our own on a free port (no persistence) until the end."""
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: pass --redis-url")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.kill()
        process.wait(10)


#: The commands the app sends itself (one round trip each); every other command runs inside
#: its scripts. PING and the lease renewals (TIME, ZADD) are left out: not per request.
_ROUND_TRIPS = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_script", "cmdstat_set")


def _redis_counts(url: str) -> tuple[int, int]:
    """(round trips, commands) the Redis at ``url`` has served so far."""
    import redis

    with contextlib.closing(redis.Redis.from_url(url)) as client:
        stats = client.info("commandstats")
        commands = int(client.info("stats")["total_commands_processed"])
    trips = sum(int(stats[name]["calls"]) for name in _ROUND_TRIPS if name in stats)
    return trips, commands


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float
    status: int
    request_id: str | None
    answer: str | None  # the answer's status


async def _replica_load(
    replicas: Sequence[Replica],
    keys: dict[str, str],
    jobs: Sequence[Job],
    clients: int,
    *,
    conversations: bool,
) -> tuple[list[Timed], float]:
    """``jobs`` from ``clients`` tasks, round robin over the replicas. With ``conversations``
    each task is one conversation: its questions are the turns, asked one after another."""
    results: list[Timed] = []
    pending = list(jobs)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker(number: int) -> None:
            conversation = f"bench-{uuid.uuid4().hex[:8]}-{number}" if conversations else None
            sent = number
            while pending:
                role, question = pending.pop()
                body: dict[str, Any] = {"question": question}
                if conversation is not None:
                    body["conversation_id"] = conversation
                url = replicas[sent % len(replicas)].url
                sent += 1
                start = time.perf_counter()
                response = await client.post(
                    f"{url}/v1/chat", json=body, headers={"Authorization": f"Bearer {keys[role]}"}
                )
                seconds = time.perf_counter() - start
                status = response.json().get("status") if response.status_code == 200 else None
                rid = response.headers.get("X-Request-ID")
                results.append(Timed(seconds, response.status_code, rid, status))

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        elapsed = time.perf_counter() - start
    return results, elapsed


def _summary(runs: Sequence[tuple[list[Timed], float]]) -> dict[str, Any]:
    latencies = [t.seconds * 1000 for results, _ in runs for t in results]
    rates = [len(results) / elapsed for results, elapsed in runs if elapsed]
    return {
        "requests": len(latencies),
        "throughput_rps": _spread(rates),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
    }


def replicas_main(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)
    counts = sorted({1, args.replicas})
    keys = {role: f"bench-{role}-key" for role in ROLES}
    questions = [q.question for q in DEMO_QUESTIONS]
    setups: dict[str, dict[str, Any]] = {}
    probe: dict[str, float] = {}
    round_trips: dict[str, float] = {}
    commands: dict[str, float] = {}
    all_ok = True
    with tempfile.TemporaryDirectory() as tmp, _redis(args.redis_url) as redis_url:
        demo = write_demo(Path(tmp) / "demo")
        for replicas_n in counts:
            for shared in (False, True):
                name = f"{replicas_n} replica{'s' if replicas_n > 1 else ''}, " + (
                    "redis" if shared else "no redis"
                )
                folder = Path(tmp) / f"{replicas_n}-{'redis' if shared else 'local'}"
                folder.mkdir()
                log = folder / "audit.jsonl"
                serve: dict[str, Any] = {
                    "keys": [
                        {"name": role, "role": role, "key_sha256": hash_key(key)}
                        for role, key in keys.items()
                    ],
                    # a bucket that never runs dry: its round trip is paid, never a 429
                    "limits": {
                        "max_concurrency": args.slots,
                        "max_queue": 10_000,
                        "rate_per_minute": 1e9,
                        "burst": 1_000_000,
                    },
                }
                if shared:
                    serve["redis_url"] = redis_url
                    serve["redis"] = {"key_prefix": f"bench-{uuid.uuid4().hex[:8]}"}
                    serve["limits"]["service_max_concurrency"] = 100_000
                config, serve_file = replica_files(folder, demo, audit_log=str(log), serve=serve)
                ids: list[str | None] = []
                with start_replicas(replicas_n, config, serve_file) as replicas:
                    warm = [(role, q) for role in ROLES for q in questions[:3]] * replicas_n
                    results, _ = asyncio.run(
                        _replica_load(replicas, keys, warm, len(replicas), conversations=False)
                    )
                    ids += [t.request_id for t in results]
                    if replicas_n == 1:  # the per-request cost, without queueing
                        rng = random.Random(args.seed)
                        jobs = [
                            (rng.choice(ROLES), rng.choice(questions)) for _ in range(args.probe)
                        ]
                        trips, before = _redis_counts(redis_url)
                        results, _ = asyncio.run(
                            _replica_load(replicas, keys, jobs, 1, conversations=False)
                        )
                        trips_after, after = _redis_counts(redis_url)
                        ids += [t.request_id for t in results]
                        probe[name] = statistics.median(t.seconds * 1000 for t in results)
                        round_trips[name] = (trips_after - trips) / len(results)
                        commands[name] = (after - before - 2) / len(results)  # less the INFOs
                    figures: dict[str, Any] = {}
                    everything: list[Timed] = []
                    for kind in ("plain", "conversation"):
                        runs = []
                        for repeat in range(args.repeats):
                            rng = random.Random(args.seed + repeat)
                            jobs = [
                                (rng.choice(ROLES), rng.choice(questions))
                                for _ in range(args.requests)
                            ]
                            run = asyncio.run(
                                _replica_load(
                                    replicas,
                                    keys,
                                    jobs,
                                    args.clients,
                                    conversations=kind == "conversation",
                                )
                            )
                            runs.append(run)
                            everything += run[0]
                        figures[kind] = _summary(runs)
                    ids += [t.request_id for t in everything]
                # Every replica has shut down: the audit log is complete.
                logged = Counter(
                    json.loads(line)["request_id"] for line in log.read_text().splitlines()
                )
                exact = logged == Counter(ids) and set(logged.values()) == {1}
                chain = verify_chain(log).ok
                http_ok = all(t.status == 200 for t in everything)
                statuses = Counter(t.answer for t in everything)
                figures.update(
                    replicas=replicas_n,
                    redis=shared,
                    http_200=sum(t.status == 200 for t in everything),
                    failed=statuses["failed"],
                    audit_exactly_one_per_request=exact,
                    audit_chain_ok=chain,
                )
                all_ok = all_ok and exact and chain and http_ok and not statuses["failed"]
                setups[name] = figures

    base, shared_one = "1 replica, no redis", "1 replica, redis"
    cost = {
        "p50_ms_without": round(probe[base], 3),
        "p50_ms_with": round(probe[shared_one], 3),
        "added_ms_per_request": round(probe[shared_one] - probe[base], 3),
        "redis_round_trips_per_request": round(round_trips[shared_one], 2),
        "redis_commands_per_request": round(commands[shared_one], 2),
        "probe_requests": args.probe,
    }
    title = (
        f"sqlagent serve as separate processes: {args.requests} requests x {args.repeats} runs, "
        f"{args.clients} clients, {args.slots} slots per replica, loopback, mock model"
    )
    table = _rate_table(title, ("set-up", "workload"))
    for name, figures in setups.items():
        for kind in ("plain", "conversation"):
            table.add_row(name, kind, *_rate_cells(figures[kind]))
    console.print(table)
    costs = Table(title="Redis round trips, 1 replica, one request at a time (plain questions)")
    costs.add_column("figure")
    costs.add_column("value", justify="right")
    for key, value in cost.items():
        costs.add_row(key, str(value))
    console.print(costs)
    checks = Table(title="checks per set-up")
    for column in ("set-up", "http 200", "failed", "one audit event each", "chain ok"):
        checks.add_column(column, justify="left" if column == "set-up" else "right")
    for name, figures in setups.items():
        checks.add_row(
            name,
            str(figures["http_200"]),
            str(figures["failed"]),
            str(figures["audit_exactly_one_per_request"]),
            str(figures["audit_chain_ok"]),
        )
    console.print(checks)
    if args.json:
        print(json.dumps({"setups": setups, "redis_cost": cost, "clients": args.clients}))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
