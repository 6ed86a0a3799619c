"""Side effects a *query* can have, on the real servers, with the validator bypassed.

A red-team pass ran statements through the executor alone, connected as the server's superuser,
and found: ``COPY ... TO '/file'`` writing a file inside the read-only transaction, session
advisory locks (PostgreSQL) and ``GET_LOCK`` locks (MariaDB) left on the pooled connection,
``SELECT ... INTO OUTFILE`` and ``SET GLOBAL`` running, and results of any size. Each test shows
what the executor now refuses before anything runs, what it cleans up after a run, and what only
a least-privilege login stops (then that the reader login is refused by the server). Controls
show the gap is real where that is cheap: the same statement run without the executor.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from sqlagent.errors import (
    ExecutionError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    ResultTooLargeError,
)
from sqlagent.execution import ReadOnlyExecutor
from tests.dbservers import create_items, create_test_database, drop_test_database
from tests.execution.readers import create_reader, drop_reader

DB = "sqlagent_exec_fx"
READER = "sqlagent_exec_reader"
ROWS = 5000


def _fill(url: str) -> None:
    create_items(url, [f"item {i}" for i in range(ROWS)])


@pytest.fixture(scope="module")
def pg() -> Iterator[tuple[str, str]]:
    """(superuser URL, reader URL) of a filled database."""
    url = create_test_database("postgres", DB)
    _fill(url)
    reader = create_reader("postgres", url, READER)
    yield url, reader
    drop_test_database("postgres", DB)
    drop_reader("postgres", READER)


@pytest.fixture(scope="module")
def maria() -> Iterator[tuple[str, str]]:
    url = create_test_database("mysql", DB)
    _fill(url)
    reader = create_reader("mysql", url, READER)
    yield url, reader
    drop_test_database("mysql", DB)
    drop_reader("mysql", READER)


def _scratch_file() -> Path:
    """A path in /tmp the database server may write to (it runs on this machine)."""
    return Path("/tmp") / f"sqlagent_exec_fx_{uuid.uuid4().hex}.txt"


def _single(url: str) -> sa.Engine:
    """An engine with exactly one pooled connection, so consecutive runs share a session."""
    return sa.create_engine(url, pool_size=1, max_overflow=0)


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_copy_to_a_file_is_refused_before_it_runs(pg: tuple[str, str]) -> None:
    url, _ = pg
    control = _scratch_file()
    # Control: as the superuser, a READ ONLY transaction alone does not stop COPY TO a file.
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("BEGIN TRANSACTION READ ONLY")
        conn.execute(f"COPY (SELECT 1) TO '{control}'")
        conn.execute("ROLLBACK")
    try:
        assert control.exists()
    finally:
        control.unlink(missing_ok=True)
    target = _scratch_file()
    with ReadOnlyExecutor(url) as executor:
        for sql in (
            f"COPY (SELECT name FROM items) TO '{target}'",
            f"COPY items TO '{target}'",
            f"COPY (SELECT 1) TO PROGRAM 'touch {target}'",
            f"  copy items to '{target}' ;",
        ):
            with pytest.raises(ReadOnlyViolationError, match="cannot prepare") as info:
                executor.run(sql)
            assert "was not run" in str(info.value)
            assert info.value.__cause__ is not None
        assert executor.run("SELECT count(*) FROM items").rows == ((ROWS,),)
    assert not target.exists()


@pytest.mark.postgres
def test_postgres_syntax_errors_stay_syntax_errors(pg: tuple[str, str]) -> None:
    with ReadOnlyExecutor(pg[0]) as executor:
        with pytest.raises(ExecutionError, match='syntax error at or near "SELEC"') as info:
            executor.run("SELEC 1")
        assert not isinstance(info.value, ReadOnlyViolationError)
        assert info.value.code == "42601"
        with pytest.raises(ExecutionError, match="procedure nothing\\(\\) does not exist"):
            executor.run("CALL nothing()")
        # A trailing semicolon (or several) is no reason to refuse a query.
        assert executor.run("SELECT 1 AS one;; ").rows == ((1,),)
        assert executor.run("SELECT 'a;' AS t -- the end;").rows == (("a;",),)


@pytest.mark.postgres
def test_postgres_advisory_locks_do_not_outlive_the_run(pg: tuple[str, str]) -> None:
    url, _ = pg
    keys = (424201, 424202, 424203)
    held = (
        f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid IN {keys} AND granted"
    )
    engine = _single(url)
    observer = sa.create_engine(url)
    # Control: a session advisory lock survives the rollback of its read-only transaction.
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("BEGIN TRANSACTION READ ONLY")
        conn.execute(f"SELECT pg_advisory_lock({keys[0]})")
        conn.execute("ROLLBACK")
        with observer.connect() as other:
            assert other.execute(sa.text(held)).scalar() == 1
    try:
        with ReadOnlyExecutor(engine) as executor:
            pid = executor.run("SELECT pg_backend_pid()").rows[0][0]
            for sql in (
                f"SELECT pg_advisory_lock({keys[0]})",
                f"SELECT pg_advisory_lock_shared({keys[1]})",
                f"SELECT pg_try_advisory_lock({keys[2]})",
                f"SELECT pg_advisory_lock({keys[0]}), pg_advisory_lock({keys[0]})",  # re-entrant
            ):
                executor.run(sql)
                with observer.connect() as other:
                    assert other.execute(sa.text(held)).scalar() == 0, sql
            # Cleaned up, not discarded: the same session serves the next run.
            assert executor.run("SELECT pg_backend_pid()").rows == ((pid,),)
            assert executor.run(held).rows == ((0,),)
    finally:
        engine.dispose()
        observer.dispose()


@pytest.mark.postgres
def test_postgres_a_leftover_gate_statement_costs_one_run_not_the_connection(
    pg: tuple[str, str],
) -> None:
    # Prepared statements outlive a rollback: one left by an interrupted run (simulated here)
    # fails that run, and the connection holding it is discarded rather than reused.
    engine = sa.create_engine(pg[0], pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PREPARE sqlagent_gate AS SELECT 1")
        with ReadOnlyExecutor(engine) as executor:
            with pytest.raises(ExecutionError) as info:
                executor.run("SELECT 1")
            assert info.value.code == "42P05"
            assert executor.run("SELECT count(*) FROM pg_prepared_statements").rows == ((0,),)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_server_files_only_a_reader_login_stops(pg: tuple[str, str]) -> None:
    url, reader = pg
    # The executor cannot tell pg_read_file from any other function in a query: as the
    # superuser it runs (this is what least privilege is for) ...
    with ReadOnlyExecutor(url) as executor:
        version = executor.run("SELECT pg_read_file('PG_VERSION')").rows[0][0]
        assert version.strip().isdigit()
    # ... and the reader login is refused by the server.
    with ReadOnlyExecutor(reader) as executor:
        for sql in (
            "SELECT pg_read_file('PG_VERSION')",
            "SELECT pg_ls_dir('.')",
            "SELECT pg_reload_conf()",
            "SELECT lo_export(1, '/tmp/sqlagent_never_written')",
        ):
            with pytest.raises(ExecutionError) as info:
                executor.run(sql)
            assert info.value.code == "42501", sql  # insufficient_privilege
        assert executor.run("SELECT count(*) FROM items").rows == ((ROWS,),)
    assert not Path("/tmp/sqlagent_never_written").exists()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_result_size_is_bounded(pg: tuple[str, str]) -> None:
    url, _ = pg
    cap = 256 * 1024
    # A generous timeout: the point is memory, and a loaded machine builds big values slowly.
    with ReadOnlyExecutor(url, max_rows=100_000, max_result_bytes=cap, timeout_s=60) as executor:
        # One huge value (~90 MB, 350x the cap): the server refuses the row before sending it.
        for sql in (
            "SELECT repeat(name, 10000000) FROM items",
            "SELECT string_agg(a.name, ',') FROM items a, generate_series(1, 20)",
            "SELECT id, repeat('x', 300000) AS big FROM items ORDER BY id",
        ):
            with pytest.raises(ResultTooLargeError, match="a row of the result") as info:
                executor.run(sql)
            assert info.value.code == "22P02"
        # Many small rows: the client stops counting past the cap.
        with pytest.raises(ResultTooLargeError, match="256 KiB") as many:
            executor.run("SELECT name, repeat('y', 100) FROM items")
        assert many.value.code is None
        # Under the cap, the wrapper changes nothing: names (duplicates too), order, types.
        small = executor.run("SELECT id, id, name FROM items ORDER BY id DESC LIMIT 3")
        assert small.columns == ("id", "id", "name")
        assert small.rows == ((4999, 4999, "item 4999"), (4998, 4998, "item 4998"),
                              (4997, 4997, "item 4997"))  # fmt: skip
        empty = executor.run("SELECT id, name FROM items WHERE false")
        assert (empty.columns, empty.rows) == (("id", "name"), ())
        assert executor.run("VALUES (1, 'a'), (2, 'b')").rows == ((1, "a"), (2, "b"))


# --- MariaDB -------------------------------------------------------------------------------------


def _maria_admin() -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host="127.0.0.1", user="root", autocommit=True)


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_outfile_and_set_global_are_refused_before_they_run(
    maria: tuple[str, str],
) -> None:
    url, _ = maria
    control = _scratch_file()
    admin = _maria_admin()
    try:
        with admin.cursor() as cur:
            # Control: a read-only session and transaction alone do not stop INTO OUTFILE.
            cur.execute("SET SESSION tx_read_only = 1")
            cur.execute("START TRANSACTION READ ONLY")
            cur.execute(f"SELECT 1 INTO OUTFILE '{control}'")
            cur.execute("ROLLBACK")
            assert control.exists()
            cur.execute("SELECT @@GLOBAL.max_connections")
            (connections,) = cur.fetchone()
    finally:
        admin.close()
        control.unlink(missing_ok=True)
    target = _scratch_file()
    with ReadOnlyExecutor(url) as executor:
        for sql in (
            f"SELECT name FROM items INTO OUTFILE '{target}'",
            f"SELECT name FROM items LIMIT 1 INTO DUMPFILE '{target}'",
            f"SET GLOBAL max_connections = {connections + 1}",
            "SET GLOBAL general_log = ON",
            "SELECT 1 INTO @stolen",
            "DO GET_LOCK('sqlagent_exec_fx_do', 0)",
        ):
            with pytest.raises(ReadOnlyViolationError, match="no result set") as info:
                executor.run(sql)
            assert "was not run" in str(info.value)
        max_connections = executor.run("SELECT @@GLOBAL.max_connections").rows[0][0]
        assert max_connections == connections
        assert executor.run("SELECT IS_USED_LOCK('sqlagent_exec_fx_do')").rows == ((None,),)
    assert not target.exists()


@pytest.mark.mysql
def test_mariadb_user_locks_do_not_outlive_the_run(maria: tuple[str, str]) -> None:
    url, _ = maria
    # Control: a user-level lock survives the rollback of its read-only transaction.
    holder, observer = _maria_admin(), _maria_admin()
    try:
        with holder.cursor() as cur, observer.cursor() as other:
            cur.execute("START TRANSACTION READ ONLY")
            cur.execute("SELECT GET_LOCK('sqlagent_exec_fx_lock', 0)")
            cur.execute("ROLLBACK")
            other.execute("SELECT IS_USED_LOCK('sqlagent_exec_fx_lock')")
            assert other.fetchone() != (None,)
    finally:
        holder.close()
        observer.close()
    engine = _single(url)
    try:
        with ReadOnlyExecutor(engine) as executor:
            session = executor.run("SELECT CONNECTION_ID()").rows[0][0]
            assert executor.run("SELECT GET_LOCK('sqlagent_exec_fx_lock', 0)").rows == ((1,),)
            admin = _maria_admin()
            try:
                with admin.cursor() as cur:
                    cur.execute("SELECT IS_USED_LOCK('sqlagent_exec_fx_lock')")
                    assert cur.fetchone() == (None,)
            finally:
                admin.close()
            # Released, not discarded: the same session serves the next run.
            assert executor.run("SELECT CONNECTION_ID()").rows == ((session,),)
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mariadb_user_variables_never_reach_the_next_run(maria: tuple[str, str]) -> None:
    url, _ = maria
    engine = _single(url)
    try:
        with ReadOnlyExecutor(engine) as executor:
            session = executor.run("SELECT CONNECTION_ID()").rows[0][0]
            assert executor.run("SELECT @secret := MAX(name) FROM items").rows == (("item 999",),)
            assert executor.run("SELECT @secret").rows == ((None,),)
            assert executor.run("SELECT CONNECTION_ID()").rows != ((session,),)  # discarded
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mariadb_file_and_admin_functions_only_a_reader_login_stops(
    maria: tuple[str, str],
) -> None:
    url, reader = maria
    # Queries with a result set run; as root, LOAD_FILE reads a server file ...
    with ReadOnlyExecutor(url) as executor:
        assert executor.run("SELECT LOAD_FILE('/etc/hostname')").rows[0][0]
        assert executor.run("ANALYZE TABLE items").rows  # statistics: not table data
    # ... while the reader gets NULL (no FILE privilege) and ANALYZE is refused.
    with ReadOnlyExecutor(reader) as executor:
        assert executor.run("SELECT LOAD_FILE('/etc/hostname')").rows == ((None,),)
        with pytest.raises(ExecutionError) as info:
            executor.run("ANALYZE TABLE items")
        assert info.value.code == "1142"  # command denied
        with pytest.raises(ExecutionError) as denied:
            executor.run("SELECT * FROM mysql.user")
        assert denied.value.code == "1142"
        assert executor.run("SELECT count(*) FROM items").rows == ((ROWS,),)


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_a_statement_that_lifts_its_time_limit_is_stopped(
    maria: tuple[str, str],
) -> None:
    url, _ = maria
    with ReadOnlyExecutor(url, timeout_s=1) as executor:
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError):
            executor.run("SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(30)")
        assert time.monotonic() - start < 5  # the limit plus the 2 s read grace
        assert executor.run("SELECT 1").rows == ((1,),)
    # The statement was killed on the server (KILL QUERY), not left sleeping there.
    sleeping = (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE INFO LIKE 'SET STATEMENT max_statement_time = 0%'"
    )
    admin = _maria_admin()
    try:
        with admin.cursor() as cur:
            deadline = time.monotonic() + 5
            while True:
                cur.execute(sleeping)
                (left,) = cur.fetchone()
                if left == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert left == 0
    finally:
        admin.close()


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_result_size_is_bounded(maria: tuple[str, str]) -> None:
    url, _ = maria
    with ReadOnlyExecutor(url, max_rows=100_000, max_result_bytes=256 * 1024) as executor:
        # One huge value: MariaDB returns NULL past max_allowed_packet (with a warning).
        assert executor.run("SELECT REPEAT(name, 100000000) FROM items LIMIT 1").rows == ((None,),)
        # Many rows: counted as they arrive, stopped past the cap.
        with pytest.raises(ResultTooLargeError, match="256 KiB"):
            executor.run("SELECT name, REPEAT('y', 100) FROM items")
        assert executor.run("SELECT count(*) FROM items").rows == ((ROWS,),)
