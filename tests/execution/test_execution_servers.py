"""The execution layer on real PostgreSQL and MariaDB servers, with the validator bypassed.

Each server gets its own ``sqlagent_exec_test`` database (so the masking tests' ``sqlagent_test``
is never touched); tests skip with the reason when a server does not answer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from sqlagent.errors import ConfigError, ExecutionError, QueryTimeoutError, ReadOnlyViolationError
from sqlagent.execution import ReadOnlyExecutor
from tests.dbservers import server_database

DB = "sqlagent_exec_test"
ITEMS = 50
BIG = 5000


def _fill(url: str, kind: str) -> None:
    """The items (and, on PostgreSQL, a sequence) every test here reads or tries to change."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50), "
                                 "price NUMERIC(10, 2))"))  # fmt: skip
            conn.execute(sa.text("CREATE TABLE big (id INTEGER PRIMARY KEY)"))
            conn.execute(
                sa.text("INSERT INTO items VALUES (:id, :name, :price)"),
                [{"id": i, "name": f"item {i}", "price": i * 1.25} for i in range(1, ITEMS + 1)],
            )
            conn.execute(sa.text("INSERT INTO big VALUES (:id)"), [{"id": i} for i in range(BIG)])
            if kind == "postgres":
                conn.execute(sa.text("CREATE SEQUENCE item_seq"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with server_database("postgres", DB, fill=lambda url: _fill(url, "postgres")) as url:
        yield url


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    with server_database("mysql", DB, fill=lambda url: _fill(url, "mysql")) as url:
        yield url


def _snapshot(url: str, kind: str) -> tuple[Any, ...]:
    """Tables, row counts, a checksum of every row, and (PostgreSQL) the sequence position."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if kind == "postgres":
                tables = conn.execute(sa.text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
                )).all()  # fmt: skip
                extra = conn.execute(sa.text("SELECT last_value, is_called FROM item_seq")).all()
            else:
                # This test's database and anything named "evil": other test runs may create
                # and drop their own databases on the same server meanwhile.
                tables = conn.execute(sa.text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() OR table_schema LIKE '%evil%' ORDER BY 1, 2"
                )).all()  # fmt: skip
                extra = conn.execute(sa.text(
                    "SELECT schema_name FROM information_schema.schemata "
                    "WHERE schema_name = DATABASE() OR schema_name LIKE '%evil%' ORDER BY 1"
                )).all()  # fmt: skip
            rows = conn.execute(sa.text("SELECT id, name, price FROM items ORDER BY id")).all()
            big = conn.execute(sa.text("SELECT count(*) FROM big")).scalar()
    finally:
        engine.dispose()
    digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    return [tuple(t) for t in tables], len(rows), digest, big, [tuple(e) for e in extra]


def _borrowed_or_owned(url: str, how: str) -> tuple[ReadOnlyExecutor, sa.Engine | None]:
    if how == "url":
        return ReadOnlyExecutor(url, timeout_s=5), None
    # An engine built for writing, in autocommit mode: the executor must still hold.
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    return ReadOnlyExecutor(engine, timeout_s=5), engine


@pytest.fixture(params=["url", "autocommit_engine"])
def how(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _assert_clean(error: ExecutionError) -> None:
    message = str(error)
    assert "\n" not in message
    assert "Background on this error" not in message
    assert error.__cause__ is not None


# --- PostgreSQL ----------------------------------------------------------------------------------

# Writes PostgreSQL prepares as queries: the read-only transaction refuses them (25006).
PG_WRITES = [
    "INSERT INTO items VALUES (998, 'evil', 1) RETURNING id",
    "WITH d AS (DELETE FROM items RETURNING *) SELECT count(*) FROM d",
    "WITH u AS (UPDATE items SET price = 0 RETURNING id) SELECT id FROM u",
    "SELECT * FROM items FOR UPDATE",
    "SELECT nextval('item_seq')",
    "SELECT setval('item_seq', 42)",
]
# Statements that are no plain query: refused before they run (they cannot be prepared as a
# query, or describe no result).
PG_NOT_QUERIES = [
    "INSERT INTO items VALUES (999, 'evil', 1)",
    "UPDATE items SET price = 0",
    "DELETE FROM items",
    "MERGE INTO items USING big ON false WHEN NOT MATCHED THEN INSERT VALUES (1, 'x', 1)",
    "CREATE TABLE evil (a int)",
    "CREATE TABLE evil AS SELECT * FROM items",
    "SELECT * INTO evil FROM items",
    "DROP TABLE items",
    "TRUNCATE items",
    "ALTER TABLE items ADD COLUMN evil int",
    "CREATE INDEX evil ON items (name)",
    "CREATE SCHEMA evil",
    "CREATE TEMP TABLE evil (a int)",
    "COMMENT ON TABLE items IS 'evil'",
    "VACUUM items",
    "CREATE DATABASE evil",
    "COMMIT",
    "SET TRANSACTION READ WRITE",
    "SET default_transaction_read_only = off",
    "COPY items TO STDOUT",
    "SHOW work_mem",
    "EXPLAIN ANALYZE DELETE FROM items",
    "DO $$BEGIN DELETE FROM items; END$$",
    "LISTEN evil",
    "PREPARE evil AS DELETE FROM items",
    "DECLARE evil CURSOR WITH HOLD FOR SELECT 1",
    "DISCARD ALL",
    "LOCK TABLE items",
]
PG_OTHER_FAILURES = [
    "SELECT 1; DELETE FROM items",
    "COMMIT; DELETE FROM items",
    "SELECT 1; COMMIT; SET default_transaction_read_only = off; DELETE FROM items",
    "CALL nothing()",
    "SELEC 1",
]


def _writes_fail_and_nothing_changes(
    url: str,
    kind: str,
    how: str,
    writes: list[str],
    not_queries: list[str],
    others: list[str],
    code: str,
) -> None:
    """Every write is refused by the server with ``code``, every non-query before it runs, other
    statements fail cleanly, and a snapshot of the database is identical afterwards."""
    before = _snapshot(url, kind)
    executor, engine = _borrowed_or_owned(url, how)
    try:
        for sql in writes:
            with pytest.raises(ReadOnlyViolationError) as info:
                executor.run(sql)
            assert info.value.code == code, sql
            _assert_clean(info.value)
        for sql in not_queries:
            with pytest.raises(
                ReadOnlyViolationError, match="only a single plain query"
            ) as refused:
                executor.run(sql)
            assert "was not run" in str(refused.value), sql
        for sql in others:
            with pytest.raises(ExecutionError) as other:
                executor.run(sql)
            assert not isinstance(other.value, ReadOnlyViolationError), sql
            _assert_clean(other.value)
        assert executor.run("SELECT count(*) FROM items").rows == ((ITEMS,),)
    finally:
        executor.close()
        if engine is not None:
            engine.dispose()
    assert _snapshot(url, kind) == before


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_writes_fail_and_nothing_changes(pg_url: str, how: str) -> None:
    _writes_fail_and_nothing_changes(
        pg_url, "postgres", how, PG_WRITES, PG_NOT_QUERIES, PG_OTHER_FAILURES, "25006"
    )


@pytest.mark.postgres
def test_postgres_session_settings_are_allowed_and_rolled_back(pg_url: str) -> None:
    with ReadOnlyExecutor(pg_url) as executor:
        assert executor.run("SELECT set_config('x.y', '1', false)").rows == (("1",),)
        leftover = executor.run("SELECT current_setting('x.y', true)").rows[0][0]
        assert leftover in (None, "")  # the whole transaction, SET included, was rolled back
        read_only = "SELECT current_setting('transaction_read_only')"
        assert executor.run(read_only).rows == (("on",),)


@pytest.mark.postgres
@pytest.mark.parametrize("isolation", ["AUTOCOMMIT", "READ COMMITTED"])
def test_postgres_borrowed_connections_are_handed_back_as_they_were(
    pg_url: str, isolation: str
) -> None:
    engine = sa.create_engine(pg_url, isolation_level=isolation, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            before = conn.connection.dbapi_connection.autocommit
        with ReadOnlyExecutor(engine) as executor:
            executor.run("SELECT 1")
            with pytest.raises(ReadOnlyViolationError):
                executor.run("DELETE FROM items")
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit == before
            assert conn.execute(sa.text("SHOW transaction_read_only")).scalar() == "off"
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_timeout_then_recovery(pg_url: str) -> None:
    with ReadOnlyExecutor(pg_url, timeout_s=0.5) as executor:
        for slow in ("SELECT pg_sleep(5)",
                     "SELECT count(*) FROM generate_series(1, 100000) a, "
                     "generate_series(1, 100000) b"):  # fmt: skip
            start = time.monotonic()
            with pytest.raises(QueryTimeoutError) as info:
                executor.run(slow)
            assert time.monotonic() - start < 4  # 0.5 s, not the 5 s sleep
            assert info.value.code == "57014"
            _assert_clean(info.value)
            assert executor.run("SELECT count(*) FROM items").rows == ((ITEMS,),)


def _row_cap_and_columns(executor: ReadOnlyExecutor, repeats: int, false: str) -> None:
    """A capped long result, a short one and an empty one, on the same executor."""
    for _ in range(repeats):  # a cut-off long result must never disturb the next run
        capped = executor.run("SELECT id, id * 2 AS twice FROM big ORDER BY id")
        assert capped.columns == ("id", "twice")
        assert (capped.row_count, capped.truncated) == (100, True)
        assert capped.rows[:2] == ((0, 0), (1, 2))
        assert executor.run("SELECT 1 AS one").rows == ((1,),)
    small = executor.run("SELECT id FROM items WHERE id <= 50")
    assert (small.row_count, small.truncated) == (50, False)
    empty = executor.run(f"SELECT id, name FROM items WHERE {false}")
    assert (empty.columns, empty.rows, empty.truncated) == (("id", "name"), (), False)


@pytest.mark.postgres
def test_postgres_row_cap_and_columns(pg_url: str) -> None:
    with ReadOnlyExecutor(pg_url, max_rows=100) as executor:
        _row_cap_and_columns(executor, repeats=5, false="false")  # cancelled results
        percent = executor.run("SELECT name FROM items WHERE name LIKE 'item 1%' ORDER BY id")
        assert percent.rows[0] == ("item 1",)


@pytest.mark.postgres
def test_postgres_error_messages(pg_url: str) -> None:
    with ReadOnlyExecutor(pg_url) as executor:
        with pytest.raises(ExecutionError, match='column "nope" does not exist') as info:
            executor.run("SELECT nope FROM items")
        assert info.value.code == "42703"
        _assert_clean(info.value)
        with pytest.raises(ExecutionError, match=r"hint: Perhaps .*items\.name") as hinted:
            executor.run("SELECT nme FROM items")  # PostgreSQL's hint is kept for the model
        _assert_clean(hinted.value)
        assert executor.run("SELECT 1").rows == ((1,),)


# --- MariaDB / MySQL -----------------------------------------------------------------------------

# Writes the read-only session refuses (1792), when prepared or when run.
MYSQL_WRITES = [
    "SELECT * FROM items FOR UPDATE",
    "INSERT INTO items VALUES (999, 'evil', 1)",
    "INSERT INTO items VALUES (997, 'evil', 1) RETURNING id",
    "REPLACE INTO items VALUES (1, 'evil', 1)",
    "REPLACE INTO items VALUES (1, 'evil', 1) RETURNING id",
    "UPDATE items SET price = 0",
    "DELETE FROM items",
    "DELETE FROM items RETURNING id",
    "CREATE TABLE evil (a int)",
    "CREATE TABLE evil AS SELECT * FROM items",
    "CREATE SEQUENCE evil",
    "OPTIMIZE TABLE items",
    "REPAIR TABLE items",
    "EXPLAIN DELETE FROM items",
]
# No result set: refused before they run.
MYSQL_NOT_QUERIES = [
    "CREATE TEMPORARY TABLE evil (a int)",
    "DROP TABLE items",
    "TRUNCATE TABLE items",
    "ALTER TABLE items ADD COLUMN evil int",
    "RENAME TABLE items TO evil",
    "CREATE INDEX evil ON items (name)",
    "CREATE VIEW evil AS SELECT 1",
    "CREATE DATABASE sqlagent_exec_evil",
    "DROP DATABASE sqlagent_exec_test",
    "SET SESSION sql_mode = ''",
    "SET @x = 1",
    "SELECT 1 INTO @x",
    "START TRANSACTION",
    "COMMIT",
    "SAVEPOINT evil",
    "LOCK TABLES items READ",
    "HANDLER items OPEN",
    "FLUSH TABLES",
    "KILL QUERY 999999",
    "DO SLEEP(0)",
]
MYSQL_OTHER_FAILURES = [
    "SELECT 1; DELETE FROM items",
    "DELETE FROM items; SELECT 1",
    "WITH d AS (DELETE FROM items) SELECT 1",
    "SELEC 1",
]


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_writes_fail_and_nothing_changes(mysql_url: str, how: str) -> None:
    _writes_fail_and_nothing_changes(
        mysql_url, "mysql", how, MYSQL_WRITES, MYSQL_NOT_QUERIES, MYSQL_OTHER_FAILURES, "1792"
    )


@pytest.mark.mysql
def test_mariadb_session_is_restored_after_each_run(mysql_url: str) -> None:
    engine = sa.create_engine(mysql_url, pool_size=1, max_overflow=0)
    settings = "SELECT @@SESSION.tx_read_only, @@SESSION.max_statement_time"
    try:
        with engine.connect() as conn:
            before = tuple(conn.execute(sa.text(settings)).one())
        with ReadOnlyExecutor(engine, timeout_s=2) as executor:
            assert executor.run(settings).rows == ((1, 2.0),)  # what the statement runs under
            with pytest.raises(ReadOnlyViolationError):
                executor.run("DELETE FROM items")
        with engine.connect() as conn:  # the same pooled connection, back to how it was
            assert tuple(conn.execute(sa.text(settings)).one()) == before
    finally:
        engine.dispose()


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_timeout_then_recovery(mysql_url: str) -> None:
    heavy = ("SELECT count(*) FROM information_schema.columns a, information_schema.columns b, "
             "information_schema.columns c")  # fmt: skip
    with ReadOnlyExecutor(mysql_url, timeout_s=1) as executor:
        for slow in ("SELECT SLEEP(5)", heavy):
            start = time.monotonic()
            with pytest.raises(QueryTimeoutError) as info:
                executor.run(slow)
            assert time.monotonic() - start < 4  # 1 s, not the 5 s sleep
            _assert_clean(info.value)
            assert executor.run("SELECT count(*) FROM items").rows == ((ITEMS,),)


@pytest.mark.mysql
def test_mariadb_row_cap_and_columns(mysql_url: str) -> None:
    with ReadOnlyExecutor(mysql_url, max_rows=100) as executor:
        # the connection left mid-result is discarded, not drained
        _row_cap_and_columns(executor, repeats=3, false="1 = 0")


@pytest.mark.mysql
def test_mariadb_error_messages(mysql_url: str) -> None:
    with ReadOnlyExecutor(mysql_url) as executor:
        with pytest.raises(ExecutionError, match="Unknown column 'nope'") as info:
            executor.run("SELECT nope FROM items")
        assert info.value.code == "1054"
        _assert_clean(info.value)
        assert executor.run("SELECT 1").rows == ((1,),)


@pytest.mark.mysql
def test_mysql_multi_statement_connections_are_refused(mysql_url: str) -> None:
    before = _snapshot(mysql_url, "mysql")
    multi = sa.create_engine(mysql_url, connect_args={"client_flag": 1 << 16})
    try:
        with ReadOnlyExecutor(multi) as executor, pytest.raises(ConfigError, match="MULTI"):
            executor.run("SELECT 1; COMMIT; SET SESSION tx_read_only = 0; DELETE FROM items")
    finally:
        multi.dispose()
    assert _snapshot(mysql_url, "mysql") == before


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:1/nothing", "mysql://root@127.0.0.1:1/nothing"]
)
def test_an_unreachable_server_is_an_execution_error(url: str) -> None:
    with ReadOnlyExecutor(url) as executor:
        with pytest.raises(ExecutionError, match="cannot connect to the database") as info:
            executor.run("SELECT 1")
        _assert_clean(info.value)
