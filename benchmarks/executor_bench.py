"""Read-only executor: latency per run, and peak memory of a huge result.

Per engine (SQLite always; PostgreSQL and MariaDB when their servers answer), the median wall
time of ``ReadOnlyExecutor.run`` for a one-row query, a 100-row query and a 1,000-row query
(what the agent's answers look like), and, each in a fresh subprocess, the peak RSS growth of a
statement built to exhaust memory (PostgreSQL ``repeat(name, 100000000)``, SQLite
``zeroblob(900000000)``, MariaDB rows of ``REPEAT('x', 10000)``) under the default 16 MiB
``max_result_bytes``.

    python benchmarks/executor_bench.py [--runs 200] [--pg URL] [--mysql URL] [--json]

The per-run cost includes everything a run does: setting up the read-only transaction, asking
the server whether the statement is a query (PostgreSQL ``PREPARE``/``DEALLOCATE``, MariaDB
``COM_STMT_PREPARE``), the size check, the rollback and the session clean-up. Prints a table;
with --json the last line is one JSON object. Goals: a one-row run under 2 ms on a local server,
peak RSS growth under 64 MiB for every huge statement.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sqlagent.errors import ExecutionError
from sqlagent.execution import ReadOnlyExecutor

QUERIES = {
    "1 row": "SELECT count(*) FROM items",
    "100 rows": "SELECT id, name FROM items WHERE id < 100 ORDER BY id",
    "1000 rows": "SELECT id, name FROM items WHERE id < 1000 ORDER BY id",
}
HUGE = {
    "sqlite": "SELECT zeroblob(900000000)",
    "postgresql": "SELECT repeat(name, 100000000) FROM items",
    "mysql": "SELECT REPEAT('x', 10000) FROM items a, items b",
}
_CHILD = """
import resource, sys
from sqlagent.errors import SQLAgentError
from sqlagent.execution import ReadOnlyExecutor
with ReadOnlyExecutor(sys.argv[1], timeout_s=60, max_rows=10_000_000) as ex:
    ex.run("SELECT 1")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        ex.run(sys.argv[2]); outcome = "ok"
    except SQLAgentError as exc:
        outcome = type(exc).__name__
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024, outcome)
"""


def _fill(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS items"))
            conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(40))"))
            conn.execute(
                sa.text("INSERT INTO items VALUES (:id, :name)"),
                [{"id": i, "name": f"n{i % 10}"} for i in range(5000)],
            )
    finally:
        engine.dispose()


def _server_db(admin_url: str, drop: str) -> str | None:
    """A fresh ``sqlagent_bench`` database on a server, or None when it does not answer."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(drop))
            conn.execute(sa.text("CREATE DATABASE sqlagent_bench"))
    except Exception as exc:  # no server here: skip it
        print(f"skipping {admin_url}: {type(exc).__name__}", file=sys.stderr)
        return None
    finally:
        engine.dispose()
    url = sa.make_url(admin_url).set(database="sqlagent_bench")
    return url.render_as_string(hide_password=False)


def _latency(url: str, runs: int) -> dict[str, float]:
    out = {}
    with ReadOnlyExecutor(url) as executor:
        for label, sql in QUERIES.items():
            executor.run(sql)  # warm: connection, caches
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                executor.run(sql)
                times.append((time.perf_counter() - start) * 1000)
            out[label] = round(statistics.median(times), 3)
    return out


def _huge(url: str, sql: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, sql], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise ExecutionError(done.stderr.strip().splitlines()[-1])
    growth, outcome = done.stdout.split()
    return int(growth), outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        lite = Path(tmp) / "bench.sqlite"
        with closing(sqlite3.connect(lite)):
            pass
        urls = {"sqlite": f"sqlite:///{lite}"}
        pg = _server_db(args.pg, "DROP DATABASE IF EXISTS sqlagent_bench WITH (FORCE)")
        if pg:
            urls["postgresql"] = pg
        my = _server_db(args.mysql, "DROP DATABASE IF EXISTS sqlagent_bench")
        if my:
            urls["mysql"] = my
        results: dict[str, dict[str, object]] = {}
        try:
            for engine, url in urls.items():
                _fill(url)
                growth, outcome = _huge(url, HUGE[engine])
                results[engine] = {
                    "median_ms": _latency(url, args.runs),
                    "huge_rss_growth_mb": growth,
                    "huge_outcome": outcome,
                }
        finally:
            for admin, key, drop in (
                (args.pg, "postgresql", "DROP DATABASE IF EXISTS sqlagent_bench WITH (FORCE)"),
                (args.mysql, "mysql", "DROP DATABASE IF EXISTS sqlagent_bench"),
            ):
                if key in urls:
                    import sqlalchemy as sa

                    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
                    with engine.connect() as conn:
                        conn.execute(sa.text(drop))
                    engine.dispose()

    table = Table(title=f"ReadOnlyExecutor.run, median of {args.runs} runs")
    for column in ("engine", *QUERIES, "huge statement", "peak RSS growth"):
        table.add_column(column)
    for engine, row in results.items():
        times = row["median_ms"]
        assert isinstance(times, dict)
        table.add_row(
            engine,
            *(f"{times[label]:.2f} ms" for label in QUERIES),
            str(row["huge_outcome"]),
            f"{row['huge_rss_growth_mb']} MiB",
        )
    Console().print(table)
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
