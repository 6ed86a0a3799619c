"""Audit sinks: the cost of recording one event, and of verifying the chain afterwards.

Per sink, the median (and 95th percentile) wall time of ``emit`` for one event, after one warm-up
event (which creates the file or the tables): the JSONL chain (with and without ``fsync``), and
the SQL chain on a SQLite file, PostgreSQL and MariaDB (the servers when they answer). Each SQL
write is one committed transaction (lock the head row, insert, move the head); a JSONL write is
one ``flock``ed append. Then the time to verify the whole chain (for the SQL chain that includes
connecting and checking the tables, about 0.1-0.3 s, then some 70 ms per 1,000 rows).

    python benchmarks/audit_bench.py [--events 200] [--pg URL] [--mysql URL] [--json]

Prints a table; with --json the last line is one JSON object. The figures depend mostly on how
fast the disk makes a commit durable (``fsync``): compare the SQL rows with "jsonl (fsync)".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from sqlagent.audit import (
    AuditEvent,
    AuditSink,
    JsonlAuditSink,
    SQLAuditSink,
    verify_chain,
    verify_sql_chain,
)

DB = "sqlagent_audit_bench"


def _event(i: int) -> AuditEvent:
    """An event the size of a real one: a question, SQL, tables and columns, a latency."""
    return AuditEvent(
        name="ask",
        verdict="allowed",
        role="analyst",
        policy_mode="policy",
        dialect="postgres",
        question=f"how many orders did each customer place in 2024? ({i})",
        sql_in="SELECT c.name, count(*) FROM customers c JOIN orders o ON o.customer_id = c.id "
        "WHERE o.year = 2024 GROUP BY c.name",
        tables=("customers", "orders"),
        columns=("customers.name", "orders.customer_id", "orders.year"),
        row_count=42,
        latency_ms=12.5 + i,
    )


def _server_db(admin_url: str, drop: str) -> str | None:
    """A fresh benchmark database on a server, or None when it does not answer."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(drop))
            conn.execute(sa.text(f"CREATE DATABASE {DB}"))
    except Exception as exc:  # no server here: skip it
        print(f"skipping {admin_url}: {type(exc).__name__}", file=sys.stderr)
        return None
    finally:
        engine.dispose()
    return sa.make_url(admin_url).set(database=DB).render_as_string(hide_password=False)


def _drop(admin_url: str, drop: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(drop))
    finally:
        engine.dispose()


def _measure(sink: AuditSink, events: int, verify: Callable[[], int]) -> dict[str, float]:
    try:
        sink.emit(_event(-1))  # creates the file or the tables
        times = []
        for i in range(events):
            start = time.perf_counter()
            sink.emit(_event(i))
            times.append((time.perf_counter() - start) * 1000)
    finally:
        sink.close()
    start = time.perf_counter()
    verify()
    verify_ms = (time.perf_counter() - start) * 1000
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(statistics.quantiles(times, n=20)[-1], 3),
        "events_per_s": round(1000 / statistics.median(times), 1),
        "verify_ms": round(verify_ms, 1),
    }


def _verified(report_ok: bool, records: int) -> int:
    if not report_ok:
        raise SystemExit("the chain did not verify")
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    servers = {
        "postgresql": (args.pg, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
        "mariadb": (args.mysql, f"DROP DATABASE IF EXISTS {DB}"),
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, fsync in (("jsonl", False), ("jsonl (fsync)", True)):
            path = Path(tmp) / f"{label.replace(' ', '_')}.jsonl"

            def verify_file(path: Path = path) -> int:
                report = verify_chain(path)
                return _verified(report.ok, report.lines)

            results[label] = _measure(JsonlAuditSink(path, fsync=fsync), args.events, verify_file)
        urls = {"sql: sqlite": f"sqlite:///{Path(tmp) / 'audit.db'}"}
        for name, (admin, drop) in servers.items():
            url = _server_db(admin, drop)
            if url:
                urls[f"sql: {name}"] = url
        try:
            for label, url in urls.items():

                def verify(url: str = url) -> int:
                    report = verify_sql_chain(url)
                    return _verified(report.ok, report.lines)

                results[label] = _measure(SQLAuditSink(url), args.events, verify)
        finally:
            for name, (admin, drop) in servers.items():
                if f"sql: {name}" in urls:
                    _drop(admin, drop)

    table = Table(title=f"Audit sinks: emit() of one event, {args.events} events")
    for column in ("sink", "median", "p95", "events/s", f"verify {args.events + 1} records"):
        table.add_column(column)
    for label, row in results.items():
        table.add_row(
            label,
            f"{row['median_ms']:.2f} ms",
            f"{row['p95_ms']:.2f} ms",
            f"{row['events_per_s']:.0f}",
            f"{row['verify_ms']:.0f} ms",
        )
    Console().print(table)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
