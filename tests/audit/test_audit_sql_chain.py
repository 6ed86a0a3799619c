"""SQLAuditSink's shared chain on real databases: SQLite files, PostgreSQL and MariaDB.

Every test runs on each database (the servers' tests skip when nothing answers on 127.0.0.1).
Tampering is done with plain SQL, as someone with write access to the table would.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from audit_helpers import make_event
from click.testing import CliRunner
from sql_helpers import Chain, append_from_process, die_after_insert, emit_all, new_chain

from sqlagent.audit import (
    GENESIS_HASH,
    AuditEvent,
    Auditor,
    JsonlAuditSink,
    SQLAuditSink,
    verify_chain,
    verify_sql_chain,
)
from sqlagent.audit._sql import _advisory_key, _setup_lock_name
from sqlagent.cli._audit import audit
from sqlagent.errors import AuditError
from tests.dbservers import create_test_database, drop_test_database

pytestmark = pytest.mark.slow  # integration: real processes, servers or models

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
N = 12


@pytest.fixture(scope="module", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """``(kind, url)`` of an empty database: a SQLite file, or a server's test database."""
    kind: str = request.param
    if kind == "sqlite":
        yield kind, f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"
        return
    url = create_test_database(kind, "sqlagent_audit")  # skips when the server is absent
    yield kind, url
    drop_test_database(kind, "sqlagent_audit")


@pytest.fixture
def chain(database: tuple[str, str]) -> Chain:
    """Fresh tables for one test, named through the URL's ``audit_table`` key."""
    return new_chain(*database)


@pytest.fixture
def chain12(chain: Chain) -> Chain:
    emit_all(chain.url, [make_event(i) for i in range(N)])
    return chain


def found(chain: Chain, **kwargs: Any) -> list[tuple[int, str]]:
    return [(p.line, p.kind) for p in verify_sql_chain(chain.url, **kwargs).problems]


def odd_events() -> list[AuditEvent]:
    """Values that stress storage: NUL, a lone surrogate, long text, floats, big counts."""
    return [
        AuditEvent(name="ask", verdict="allowed", question="nul \x00 inside", latency_ms=0.1 + 0.2),
        AuditEvent(
            name="ask", verdict="error", question="lone \ud800 surrogate", error="x" * 70000
        ),
        AuditEvent(name="ask", verdict="allowed", role="r" * 300, row_count=2**40, extra={"n": 1}),
        AuditEvent(name="ask", verdict="allowed", question="emoji 🦆 — naïve", latency_ms=1e-300),
    ]


def test_chain_of_events_verifies(chain12: Chain) -> None:
    report = verify_sql_chain(chain12.url)
    assert (report.ok, report.lines, report.problems) == (True, N, ())
    rows = chain12.rows()
    assert [row["seq"] for row in rows] == list(range(N))
    assert rows[0]["prev"] == GENESIS_HASH
    assert all(row["prev"] == before["hash"] for before, row in itertools.pairwise(rows))
    assert report.head == rows[-1]["hash"]
    head = chain12.head_row()
    assert (head["seq"], head["hash"], head["schema_version"]) == (N - 1, report.head, 1)


def test_rows_hold_the_jsonl_records(chain: Chain, tmp_path: Path) -> None:
    """One definition: the same events give the same sealed records in a file and a table, so
    the rows, written out one per line, are a valid JSONL chain."""
    events = [make_event(i) for i in range(3)] + odd_events()
    emit_all(chain.url, events)
    with JsonlAuditSink(tmp_path / "same.jsonl") as sink:
        for event in events:
            sink.emit(event)
    lines = (tmp_path / "same.jsonl").read_text(encoding="utf-8").splitlines()
    rows = chain.rows()
    assert [row["record"] for row in rows] == lines
    exported = tmp_path / "exported.jsonl"
    exported.write_text("".join(row["record"] + "\n" for row in rows), encoding="utf-8")
    assert verify_chain(exported).ok
    assert verify_sql_chain(chain.url).ok


def test_columns_hold_the_event_for_queries(chain: Chain) -> None:
    emit_all(chain.url, odd_events())
    first, second, third, fourth = chain.rows()
    assert first["question"] == "nul \ufffd inside"  # the record keeps the exact text
    assert "\\u0000" in first["record"]
    assert first["latency_ms"] == 0.1 + 0.2
    assert second["question"] == "lone \ufffd surrogate"
    assert len(second["error"]) == 70_000
    assert third["role"] == "r" * 255  # cut to the column; the record holds all 300
    assert third["row_count"] == 2**40
    assert json.loads(third["extra"]) == {"n": 1}
    assert fourth["question"] == "emoji 🦆 — naïve"
    assert json.loads(fourth["violations"]) == []


def test_edited_column(chain12: Chain) -> None:
    chain12.execute(f"UPDATE {chain12.table} SET verdict = 'allowed' WHERE seq = 3")
    report = verify_sql_chain(chain12.url)
    assert [(p.line, p.kind) for p in report.problems] == [(3, "edited")]
    assert "column 'verdict'" in report.problems[0].message


def test_edited_record(chain12: Chain) -> None:
    chain12.execute(
        f"UPDATE {chain12.table} SET record = REPLACE(record, 'SELECT 4', 'SELECT 40') "
        "WHERE seq = 4"
    )
    report = verify_sql_chain(chain12.url)
    assert [(p.line, p.kind) for p in report.problems] == [(4, "edited")]
    assert "hash does not match the content: the row was changed" in report.problems[0].message


def test_swapped_rows(chain12: Chain) -> None:
    chain12.swap(4, 5)
    report = verify_sql_chain(chain12.url)
    assert [(p.line, p.kind) for p in report.problems] == [(5, "reordered")]
    assert report.problems[0].message == "seq 4 is out of order: it belongs after row 3"


def test_deleted_middle_row(chain12: Chain) -> None:
    chain12.execute(f"DELETE FROM {chain12.table} WHERE seq = 5")
    report = verify_sql_chain(chain12.url)
    assert [(p.line, p.kind) for p in report.problems] == [(6, "dropped")]
    assert report.problems[0].message == "1 row is missing before this row (seq 5)"


def test_deleted_last_row_is_caught_by_the_head_table(chain12: Chain) -> None:
    chain12.execute(f"DELETE FROM {chain12.table} WHERE seq = {N - 1}")
    report = verify_sql_chain(chain12.url)
    assert [(p.line, p.kind) for p in report.problems] == [(N - 1, "truncated")]
    assert "head table" in report.problems[0].message


def test_deleted_last_row_with_the_head_moved_back_needs_an_anchor(chain12: Chain) -> None:
    anchor = verify_sql_chain(chain12.url).head
    before = chain12.rows()[-2]
    chain12.execute(f"DELETE FROM {chain12.table} WHERE seq = {N - 1}")
    chain12.execute(
        f"UPDATE {chain12.head} SET seq = :seq, hash = :hash", seq=N - 2, hash=before["hash"]
    )
    assert verify_sql_chain(chain12.url).ok  # the known limit: a valid, shorter chain
    assert found(chain12, expected_head=anchor) == [(N - 1, "truncated")]

    result = CliRunner().invoke(audit, ["verify", chain12.url, "--expect-head", anchor])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"row {N - 1}: truncated: expected head {anchor}")
    assert f"FAILED: 1 problem(s) in {N - 1} rows" in result.stderr


def test_a_row_written_past_the_head_is_inserted(chain12: Chain) -> None:
    last = chain12.rows()[-1]
    forged = {k: v for k, v in last.items() if k != "seq"}
    names = ", ".join(forged)
    chain12.execute(
        f"INSERT INTO {chain12.table} (seq, {names}) VALUES (:seq, :{', :'.join(forged)})",
        seq=N + 3,
        **forged,
    )
    assert found(chain12) == [(N + 3, "inserted")]


def test_emit_continues_after_tampering_is_seen(chain12: Chain) -> None:
    """The head row is the writers' truth: an edit elsewhere does not stop the log."""
    chain12.execute(f"UPDATE {chain12.table} SET role = 'admin' WHERE seq = 2")
    emit_all(chain12.url, [make_event(99)])
    assert found(chain12) == [(2, "edited")]


def test_threads_share_one_sink(chain: Chain) -> None:
    with SQLAuditSink(chain.url) as sink:

        def work() -> None:
            for i in range(10):
                sink.emit(make_event(i))

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    report = verify_sql_chain(chain.url)
    assert (report.ok, report.lines) == (True, 60)


@pytest.mark.slow
def test_concurrent_processes_share_one_chain(chain: Chain) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers, count = 4, 25
    processes = [
        ctx.Process(target=append_from_process, args=(chain.url, w, count)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    report = verify_sql_chain(chain.url)
    assert report.ok, report.problems
    rows = chain.rows()
    assert [row["seq"] for row in rows] == list(range(workers * count))  # no gaps, no forks
    tags = sorted((json.loads(row["extra"])["w"], json.loads(row["extra"])["i"]) for row in rows)
    assert tags == [(w, i) for w in range(workers) for i in range(count)]


@pytest.mark.slow
def test_a_writer_dying_mid_write_leaves_no_half_step(chain12: Chain) -> None:
    """The process exits after its INSERT reached the database, before the head moved and the
    transaction committed: the database rolls the row back, the lock is released."""
    process = multiprocessing.get_context("spawn").Process(
        target=die_after_insert, args=(chain12.url, chain12.table)
    )
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 3
    emit_all(chain12.url, [make_event(50)])  # not blocked by a lock the dead writer held
    rows = chain12.rows()
    assert [row["seq"] for row in rows] == list(range(N + 1))
    assert all(row["sql_in"] != "never committed" for row in rows)
    assert verify_sql_chain(chain12.url).ok


def test_schema_version_is_checked(chain12: Chain) -> None:
    chain12.execute(f"UPDATE {chain12.head} SET schema_version = 99")
    with pytest.raises(AuditError, match="schema version 99"):
        verify_sql_chain(chain12.url)
    with SQLAuditSink(chain12.url) as sink, pytest.raises(AuditError, match="schema version 99"):
        sink.emit(make_event(0))


def test_an_unchained_table_is_refused(chain: Chain) -> None:
    chain.execute(f"CREATE TABLE {chain.table} (request_id VARCHAR(64) PRIMARY KEY)")
    with SQLAuditSink(chain.url) as sink, pytest.raises(AuditError, match="not a sqlagent audit"):
        sink.emit(make_event(0))


def test_a_missing_head_row_is_refused_and_reported(chain12: Chain) -> None:
    chain12.execute(f"DELETE FROM {chain12.head}")
    with SQLAuditSink(chain12.url) as sink, pytest.raises(AuditError, match="head row"):
        sink.emit(make_event(0))
    assert found(chain12) == [(N, "malformed")]


def test_table_names_from_the_constructor(database: tuple[str, str]) -> None:
    kind, url = database
    chain = new_chain(kind, url)
    with SQLAuditSink(chain.plain, chain.table, head_table_name=f"{chain.table}_h") as sink:
        sink.emit(make_event(0))
    # Without the head table's name, the default one is looked for, and it is not there.
    assert [p.kind for p in verify_sql_chain(chain.plain, table_name=chain.table).problems] == [
        "malformed"
    ]
    report = verify_sql_chain(
        chain.plain, table_name=chain.table, head_table_name=f"{chain.table}_h"
    )
    assert (report.ok, report.lines) == (True, 1)


def test_auditor_fails_the_request_when_the_database_refuses(chain: Chain) -> None:
    chain.execute(f"CREATE TABLE {chain.table} (request_id VARCHAR(64) PRIMARY KEY)")
    auditor = Auditor([SQLAuditSink(chain.url)], on_sink_error="fail")
    with auditor, pytest.raises(AuditError, match="SQLAuditSink: AuditError") as info:
        auditor.emit(make_event(0))
    assert isinstance(info.value.__cause__, AuditError)


def test_cli_verify_url(chain12: Chain) -> None:
    head = verify_sql_chain(chain12.url).head
    result = CliRunner().invoke(audit, ["verify", chain12.url])
    assert result.exit_code == 0, result.output
    assert result.output == f"OK: {N} rows, head {head}\n"

    result = CliRunner().invoke(audit, ["verify", "--json", chain12.url])
    assert json.loads(result.output) == {"ok": True, "rows": N, "head": head, "problems": []}

    chain12.execute(f"DELETE FROM {chain12.table} WHERE seq = 5")
    chain12.execute(f"UPDATE {chain12.table} SET sql_in = 'SELECT 1' WHERE seq = 8")
    result = CliRunner().invoke(audit, ["verify", chain12.url])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "row 6: dropped: 1 row is missing before this row (seq 5)"
    assert lines[1].startswith("row 8: edited: column 'sql_in' does not match")
    assert f"FAILED: 2 problem(s) in {N - 1} rows" in result.stderr

    result = CliRunner().invoke(audit, ["verify", "--json", chain12.url])
    payload = json.loads(result.stdout)
    assert [(p["row"], p["kind"]) for p in payload["problems"]] == [(6, "dropped"), (8, "edited")]


def test_cli_verify_a_missing_table_exits_2(chain: Chain) -> None:
    result = CliRunner().invoke(audit, ["verify", chain.url])
    assert result.exit_code == 2
    assert f"there is no audit chain table {chain.table}" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _hold(
    chain: Chain, statement: str, seconds: float, release: threading.Event | None = None
) -> threading.Thread:
    """Run ``statement`` in a transaction of another session and keep it open for ``seconds``
    (or until ``release`` is set)."""
    ready = threading.Event()
    release = release or threading.Event()

    def hold() -> None:
        engine = sa.create_engine(chain.plain)
        try:
            with engine.begin() as conn:
                if chain.kind == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.execute(sa.text(statement))
                ready.set()
                release.wait(seconds)
        finally:
            engine.dispose()

    thread = threading.Thread(target=hold)
    thread.start()
    assert ready.wait(30)
    return thread


def _short_lock_waits(chain: Chain) -> sa.Engine:
    """An engine whose sessions give up a row-lock wait after one second."""
    if chain.kind == "sqlite":
        pytest.skip("SQLite has no row locks: a writer waits out its busy timeout instead")
    if chain.kind == "postgres":
        args: dict[str, Any] = {"options": "-c lock_timeout=1000"}
    else:
        args = {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}
    return sa.create_engine(chain.plain, connect_args=args)


def test_a_write_that_times_out_on_the_head_lock_is_tried_again(chain12: Chain) -> None:
    engine = _short_lock_waits(chain12)
    release = threading.Event()
    tries: list[str] = []

    def count_tries(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.rstrip().endswith("FOR UPDATE"):
            tries.append(statement)
            if len(tries) == 2:  # the first try timed out: let the second one have the lock
                release.set()

    sa.event.listen(engine, "before_cursor_execute", count_tries)
    event = make_event(77)
    holder = _hold(chain12, f"SELECT seq FROM {chain12.head} WHERE id = 1 FOR UPDATE", 60, release)
    try:
        with SQLAuditSink(engine, chain12.table) as sink:
            sink.emit(event)
    finally:
        release.set()
        holder.join()
        engine.dispose()
    assert len(tries) >= 2  # it was tried again
    rows = chain12.rows()
    assert [row["seq"] for row in rows] == list(range(N + 1))
    assert json.loads(rows[-1]["record"])["request_id"] == event.request_id
    assert verify_sql_chain(chain12.url).ok


def test_a_write_blocked_past_every_try_fails_and_leaves_the_chain(chain12: Chain) -> None:
    engine = _short_lock_waits(chain12)
    release = threading.Event()
    holder = _hold(chain12, f"SELECT seq FROM {chain12.head} WHERE id = 1 FOR UPDATE", 60, release)
    try:
        with SQLAuditSink(engine, chain12.table) as sink, pytest.raises(AuditError) as caught:
            sink.emit(make_event(77))  # four tries of one second each
    finally:
        release.set()
        holder.join()
        engine.dispose()
    assert "lock" in str(caught.value).lower()
    assert [row["seq"] for row in chain12.rows()] == list(range(N))
    report = verify_sql_chain(chain12.url)
    assert (report.ok, report.lines) == (True, N)


def test_setting_up_a_chain_waits_for_the_setup_lock(chain: Chain) -> None:
    """A sink creates nothing while another process holds the tables' setup lock."""
    database = sa.make_url(chain.plain).database
    name = _setup_lock_name(database, chain.table)
    lock = {
        "sqlite": "SELECT 1",  # BEGIN IMMEDIATE, taken by _hold, is SQLite's lock
        "postgres": f"SELECT pg_advisory_xact_lock({_advisory_key(name)})",
        "mysql": f"SELECT GET_LOCK('{name}', 0)",
    }[chain.kind]
    holder = _hold(chain, lock, 1.5)
    errors: list[BaseException] = []

    def first_event() -> None:
        try:
            emit_all(chain.url, [make_event(0)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=first_event)
    writer.start()
    time.sleep(0.8)
    engine = sa.create_engine(chain.plain)
    try:
        with engine.connect() as conn:
            created = sa.inspect(conn).has_table(chain.table)
    finally:
        engine.dispose()
    holder.join()
    writer.join(30)
    assert (created, writer.is_alive(), errors) == (False, False, [])
    assert [row["seq"] for row in chain.rows()] == [0]
