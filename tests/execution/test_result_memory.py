"""A huge result stops with ResultTooLargeError and the process's memory stays bounded.

The red team drove the client to 2.3 GB (PostgreSQL ``repeat(name, 100000000)``) and ~940 MB
(SQLite ``printf('%.*c', 900000000, 'x')``). Each engine's statements run through the executor
alone in a fresh subprocess, which reports its peak RSS (``ru_maxrss``) after connecting and
after the statements; the growth must stay under ``GROWTH_LIMIT`` with a 4 MiB result cap.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.dbservers import create_items, server_database

CAP = 4 * 1024 * 1024
#: Peak RSS growth allowed while the statements run: the cap, one row, driver buffers.
GROWTH_LIMIT_MB = 64

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from sqlagent.errors import SQLAgentError
    from sqlagent.execution import ReadOnlyExecutor

    url, cap, statements = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    outcomes = []
    with ReadOnlyExecutor(url, timeout_s=20, max_rows=10_000_000, max_result_bytes=cap) as ex:
        ex.run("SELECT 1")
        baseline = peak()
        for sql in statements:
            try:
                result = ex.run(sql)
                outcomes.append(["ok", result.row_count, repr(result.rows[:1])[:80]])
            except SQLAgentError as exc:
                outcomes.append([type(exc).__name__, None, str(exc)[:200]])
        ex.run("SELECT 1")
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak(), "outcomes": outcomes}))
    """
)


def _run_child(url: str, statements: list[str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(CAP), json.dumps(statements)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    # The children, as the parent sees them (largest peak of any child so far).
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    assert children_mb >= int(str(report["peak_mb"]))
    return report


def _check(report: dict[str, object], expected: list[str]) -> None:
    outcomes = report["outcomes"]
    assert isinstance(outcomes, list)
    assert [o[0] for o in outcomes] == expected, outcomes
    growth = int(str(report["peak_mb"])) - int(str(report["baseline_mb"]))
    assert growth < GROWTH_LIMIT_MB, report


@pytest.mark.slow
def test_sqlite_huge_values_and_results(tmp_path: Path) -> None:
    db = tmp_path / "mem.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (name TEXT)"))
        conn.execute(sa.text("INSERT INTO items VALUES ('item one'), ('item two')"))
    engine.dispose()
    many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
    report = _run_child(
        f"sqlite:///{db}",
        [
            "SELECT zeroblob(900000000)",
            "SELECT replace(printf('%.*c', 1000000, 'x'), 'x', 'xxxxxxxx')",
            "SELECT group_concat(name || printf('%.*c', 100000, 'x')) FROM items, "
            "(SELECT 1 FROM items a, items b, items c, items d, items e, items f)",
            many + "SELECT printf('%.*c', 1000, 'x') FROM c",
            # SQLite's printf returns NULL past SQLITE_LIMIT_LENGTH instead of failing: bounded.
            "SELECT printf('%.*c', 900000000, 'x')",
        ],
    )
    _check(report, ["ResultTooLargeError"] * 4 + ["ok"])
    outcomes = report["outcomes"]
    assert isinstance(outcomes, list)
    assert outcomes[-1][2] == "((None,),)"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with server_database("postgres", "sqlagent_mem_test", fill=_items) as url:
        yield url


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    with server_database("mysql", "sqlagent_mem_test", fill=_items) as url:
        yield url


def _items(url: str) -> None:
    # Short names: repeat(name, 100000000) builds 200 MB on the server, not more.
    create_items(url, [f"n{i % 10}" for i in range(100)])


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_huge_values_and_results(pg_url: str) -> None:
    report = _run_child(
        pg_url,
        [
            "SELECT repeat(name, 100000000) FROM items",
            "SELECT string_agg(a.name || b.name || c.name, ',') FROM items a, items b, items c",
            "SELECT repeat('x', 10000) FROM generate_series(1, 100000)",
        ],
    )
    _check(report, ["ResultTooLargeError"] * 3)


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_huge_values_and_results(mysql_url: str) -> None:
    report = _run_child(
        mysql_url,
        [
            # NULL past max_allowed_packet: nothing large ever reaches the client.
            "SELECT REPEAT(name, 100000000) FROM items",
            "SELECT REPEAT('x', 10000) FROM items a, items b, items c",
        ],
    )
    _check(report, ["ok", "ResultTooLargeError"])
