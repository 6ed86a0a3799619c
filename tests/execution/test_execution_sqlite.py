"""The execution layer on SQLite: writes fail at the database even with the validator bypassed.

Every statement here goes straight to :class:`ReadOnlyExecutor` (no validation at all), against a
real database file, through an executor built from a URL and through an engine the test built in
ordinary read-write mode.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from sqlagent.errors import (
    ConfigError,
    ExecutionError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    ResultTooLargeError,
    SQLAgentError,
)
from sqlagent.execution import (
    DEFAULT_MAX_RESULT_BYTES,
    ExecutionResult,
    Executor,
    ReadOnlyExecutor,
    executor_for,
)

ROWS = 5000
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"

# Statements the database must refuse as writes.
WRITES = [
    "INSERT INTO items VALUES (9999, 'evil', 1.0)",
    "REPLACE INTO items VALUES (1, 'evil', 1.0)",
    "INSERT INTO items SELECT id + 100000, name, price FROM items RETURNING id",
    "UPDATE items SET price = 0",
    "DELETE FROM items",
    "DROP TABLE items",
    "DROP VIEW cheap",
    "CREATE TABLE evil (a)",
    "CREATE TEMP TABLE evil (a)",
    "CREATE VIEW evil AS SELECT 1",
    "CREATE INDEX evil ON items (name)",
    "CREATE TRIGGER evil AFTER INSERT ON items BEGIN DELETE FROM items; END",
    "ALTER TABLE items ADD COLUMN evil TEXT",
    "ALTER TABLE items RENAME TO evil",
    "PRAGMA user_version = 42",
    "PRAGMA journal_mode = WAL",
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "VACUUM",
    "ANALYZE",
    "REINDEX",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "SAVEPOINT evil",
]
# Statements that must fail one way or another (syntax, several statements, refused functions).
OTHER_FAILURES = [
    "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",  # not even SQLite syntax (3.40)
    "SELECT 1; DELETE FROM items",
    "DELETE FROM items; SELECT 1",
    "UPDATE sqlite_master SET sql = 'x'",
    "SELECT load_extension('/nonexistent/evil')",
    "SELECT fts3_tokenizer('simple')",
]


def _build(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?)",
            [(i, f"item {i}", round(i * 1.25, 2)) for i in range(1, ROWS + 1)],
        )
        conn.execute("CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10")
        conn.execute("CREATE INDEX items_name ON items (name)")
        conn.commit()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A real database file, alone in its directory (so stray files would show)."""
    return _build(tmp_path / "data dir" / "shop#1.db")


@pytest.fixture
def rw_engine(db: Path) -> Iterator[sa.Engine]:
    """An ordinary read-write engine, with a connection already pooled before any executor."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["url", "rw_engine"])
def executor(request: pytest.FixtureRequest, db: Path) -> Iterator[ReadOnlyExecutor]:
    if request.param == "url":
        ex = ReadOnlyExecutor(f"sqlite:///{db}", timeout_s=2)
    else:
        ex = ReadOnlyExecutor(request.getfixturevalue("rw_engine"), timeout_s=2)
    with ex:
        yield ex


def _state(path: Path) -> tuple[Any, ...]:
    """Everything a write could change: files, their size and mtime, tables, rows, settings."""
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.parent.iterdir())
    with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as conn:
        schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows = conn.execute("SELECT * FROM items ORDER BY id").fetchall()
        settings = [
            conn.execute(f"PRAGMA {p}").fetchone() for p in ("user_version", "journal_mode")
        ]
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()
    return files, schema, len(rows), digest, settings


def test_writes_fail_and_nothing_changes(executor: ReadOnlyExecutor, db: Path) -> None:
    before = _state(db)
    for sql in WRITES:
        with pytest.raises(ReadOnlyViolationError):
            executor.run(sql)
    for sql in OTHER_FAILURES:
        with pytest.raises(ExecutionError):
            executor.run(sql)
    assert executor.run("SELECT count(*) FROM items").rows == ((ROWS,),)
    assert _state(db) == before


@pytest.mark.parametrize("mode", ["", "?mode=rwc"])
def test_attach_never_creates_a_file(executor: ReadOnlyExecutor, db: Path, mode: str) -> None:
    before = _state(db)
    target = db.parent / "attached.db"
    for sql in (f"ATTACH DATABASE 'file:{target}{mode}' AS evil",
                f"ATTACH DATABASE '{target}' AS evil",
                f"VACUUM INTO '{target}'"):  # fmt: skip
        with pytest.raises(ReadOnlyViolationError, match="not allowed"):
            executor.run(sql)
    assert not target.exists()
    assert _state(db) == before


def test_reads_work(executor: ReadOnlyExecutor) -> None:
    result = executor.run("SELECT id, name FROM cheap WHERE id <= 3 ORDER BY id")
    assert result.columns == ("id", "name")
    assert result.rows == ((1, "item 1"), (2, "item 2"), (3, "item 3"))
    assert (result.row_count, result.truncated) == (3, False)
    assert result.elapsed_ms > 0
    # Introspection and table-valued functions still work under the authorizer.
    assert executor.run("PRAGMA query_only").rows == ((1,),)
    assert len(executor.run("SELECT * FROM pragma_table_info('items')").rows) == 3
    assert executor.run("SELECT value FROM json_each('[1, 2]')").rows == ((1,), (2,))


def test_a_borrowed_engine_is_read_only_even_outside_the_executor(
    rw_engine: sa.Engine, db: Path
) -> None:
    before = _state(db)
    with ReadOnlyExecutor(rw_engine) as ex:
        ex.run("SELECT 1")
    # query_only holds on the engine's pooled connection on its own, without the authorizer.
    with rw_engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match="readonly"):
        conn.execute(sa.text("DELETE FROM items"))
    assert _state(db) == before


def test_a_file_opened_from_a_url_is_read_only_at_the_os_level(db: Path) -> None:
    with ReadOnlyExecutor(f"sqlite:///{db}") as ex:
        engine = ex._engine  # white box: prove the open itself is read-only, without query_only
        assert engine is not None
        with closing(engine.raw_connection()) as raw:
            conn = raw.dbapi_connection
            assert isinstance(conn, sqlite3.Connection)
            conn.execute("PRAGMA query_only = OFF")
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("DELETE FROM items")
            conn.rollback()


def test_in_memory_databases(tmp_path: Path) -> None:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (a INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
        with ReadOnlyExecutor(engine) as ex:
            assert ex.run("SELECT a FROM t ORDER BY a").rows == ((1,), (2,))
            with pytest.raises(ReadOnlyViolationError):
                ex.run("DELETE FROM t")
            assert ex.run("SELECT count(*) FROM t").rows == ((2,),)
    finally:
        engine.dispose()
    with ReadOnlyExecutor("sqlite://") as ex:
        assert ex.run("SELECT 1 AS one").rows == ((1,),)


@pytest.mark.parametrize("form", ["sqlite:///file:{}", "sqlite:///file:{}?mode=rwc&uri=true"])
def test_file_uris_are_opened_read_only_whatever_mode_they_ask(db: Path, form: str) -> None:
    before = _state(db)
    with ReadOnlyExecutor(form.format(quote(str(db)))) as ex:
        assert ex.run("SELECT count(*) FROM items").rows == ((ROWS,),)
        engine = ex._engine  # white box: the mode the file was opened with
        assert engine is not None
        assert engine.url.query["mode"] == "ro"
        with pytest.raises(ReadOnlyViolationError):
            ex.run("DELETE FROM items")
    assert _state(db) == before


@pytest.mark.parametrize("form", ["sqlite:///{}", "sqlite:///file:{}?mode=rwc&uri=true"])
def test_a_missing_file_is_refused_never_created(tmp_path: Path, form: str) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(ConfigError, match="not found"):
        ReadOnlyExecutor(form.format(missing))
    assert not missing.exists()


def test_a_file_deleted_under_the_executor_is_not_recreated(tmp_path: Path) -> None:
    path = _build(tmp_path / "gone.db")
    with ReadOnlyExecutor(f"sqlite:///{path}") as ex:
        path.unlink()
        with pytest.raises(ExecutionError, match="cannot connect"):
            ex.run("SELECT 1")
    assert not path.exists()


@pytest.mark.slow
def test_a_runaway_query_times_out_and_the_executor_recovers(db: Path) -> None:
    with ReadOnlyExecutor(f"sqlite:///{db}", timeout_s=0.5) as ex:
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError, match=r"0\.5 s") as info:
            ex.run(ENDLESS)
        assert time.monotonic() - start < 4  # 0.5 s and the interrupt, not a hang
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert ex.run("SELECT count(*) FROM items").rows == ((ROWS,),)
        time.sleep(0.6)  # the next run gets its own deadline, not the last one's
        assert ex.run("SELECT count(*) FROM items").rows == ((ROWS,),)


@pytest.mark.slow
def test_handlers_are_removed_after_each_run(db: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{db}", poolclass=StaticPool)
    try:
        with ReadOnlyExecutor(engine, timeout_s=0.2) as ex:
            ex.run("SELECT 1")
        time.sleep(0.25)  # past that run's deadline: a leftover progress handler would abort now
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM items a, items b WHERE a.id < 30"))
            assert count.scalar() == 29 * ROWS
            # The attach limit stays on the connection; the authorizer ("not authorized") does not.
            with pytest.raises(sa.exc.OperationalError, match="too many attached databases"):
                conn.execute(sa.text("ATTACH DATABASE ':memory:' AS scratch"))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_result_that_arrives_after_the_deadline_is_a_timeout(db: Path) -> None:
    # A Python function blocks SQLite's progress handler; the deadline check still catches it.
    engine = sa.create_engine(f"sqlite:///{db}")

    @sa.event.listens_for(engine, "connect")
    def _slow(conn: Any, _record: Any) -> None:
        conn.create_function("slow", 0, lambda: time.sleep(0.4) or 1)

    try:
        with ReadOnlyExecutor(engine, timeout_s=0.3) as ex:
            with pytest.raises(QueryTimeoutError):
                ex.run("SELECT slow()")
            assert ex.run("SELECT 2").rows == ((2,),)
    finally:
        engine.dispose()


def test_row_cap(db: Path) -> None:
    with executor_for(f"sqlite:///{db}", max_rows=100) as ex:
        capped = ex.run("SELECT id, name, price FROM items ORDER BY id")
        assert capped.columns == ("id", "name", "price")
        assert (capped.row_count, len(capped.rows), capped.truncated) == (100, 100, True)
        assert capped.rows[0] == (1, "item 1", 1.25)
        assert capped.rows[-1][0] == 100
        small = ex.run("SELECT id FROM items WHERE id <= 50")
        assert (small.row_count, small.truncated) == (50, False)
        exact = ex.run("SELECT id FROM items WHERE id <= 100")
        assert (exact.row_count, exact.truncated) == (100, False)
        one_more = ex.run("SELECT id FROM items WHERE id <= 101")
        assert (one_more.row_count, one_more.truncated) == (100, True)
        empty = ex.run("SELECT id, name FROM items WHERE id < 0")
        assert (empty.columns, empty.rows, empty.truncated) == (("id", "name"), (), False)
        # An endless generator is fine as long as only max_rows + 1 rows are read.
        endless = ex.run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                         "SELECT x FROM c")  # fmt: skip
        assert (endless.row_count, endless.truncated) == (100, True)


def test_error_messages_are_clean_one_liners(executor: ReadOnlyExecutor) -> None:
    cases = {
        "SELECT nope FROM items": "no such column: nope",
        "SELECT * FROM nowhere": "no such table: nowhere",
        "SELEC 1": "syntax error",
        "SELECT 1; SELECT 2": "one statement",
        "DROP TABLE items": "read-only",
    }
    for sql, expected in cases.items():
        with pytest.raises(ExecutionError) as info:
            executor.run(sql)
        message = str(info.value)
        assert expected in message
        assert "\n" not in message
        assert "Background on this error" not in message
        assert "sqlalche.me" not in message
        assert info.value.send_to_llm == message
        assert info.value.__cause__ is not None  # the driver's exception is chained
    with pytest.raises(ExecutionError) as info:
        executor.run("SELECT nope FROM items")
    assert info.value.code == "SQLITE_ERROR"


def test_concurrent_runs(db: Path) -> None:
    errors: list[BaseException] = []
    with ReadOnlyExecutor(f"sqlite:///{db}", max_rows=10) as ex:

        def work() -> None:
            try:
                for _ in range(20):
                    assert ex.run("SELECT count(*) FROM items").rows == ((ROWS,),)
                    with pytest.raises(ReadOnlyViolationError):
                        ex.run("DELETE FROM items")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_configuration_errors(db: Path) -> None:
    for kwargs in ({"timeout_s": 0}, {"timeout_s": -1.0}, {"max_rows": 0}, {"max_rows": True}):
        with pytest.raises(ConfigError):
            ReadOnlyExecutor(f"sqlite:///{db}", **kwargs)
    with pytest.raises(ConfigError, match="not a database URL"):
        ReadOnlyExecutor("definitely not a url")
    # mysqlclient enables several statements per call: refused whether installed or not.
    with pytest.raises(ConfigError, match="mysqldb"):
        ReadOnlyExecutor("mysql+mysqldb://root@127.0.0.1/x")


def test_lifecycle(db: Path) -> None:
    ex = ReadOnlyExecutor(f"sqlite:///{db}", timeout_s=3, max_rows=7)
    assert isinstance(ex, Executor)
    assert (ex.timeout_s, ex.max_rows, ex.dialect) == (3.0, 7, "sqlite")
    assert "sqlite" in repr(ex)
    result = ex.run("SELECT 1")
    assert isinstance(result, ExecutionResult)
    with pytest.raises(AttributeError):
        result.row_count = 2
    ex.close()
    ex.close()
    assert "closed" in repr(ex)
    with pytest.raises(ExecutionError, match="closed"):
        ex.run("SELECT 1")


def test_errors_belong_to_the_one_tree() -> None:
    assert issubclass(QueryTimeoutError, ExecutionError)
    assert issubclass(ReadOnlyViolationError, ExecutionError)
    assert issubclass(ExecutionError, SQLAgentError)
    assert not issubclass(ExecutionError, ConfigError)


# --- result size ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_huge_values_are_refused_inside_sqlite(db: Path) -> None:
    with ReadOnlyExecutor(f"sqlite:///{db}", max_result_bytes=32 * 1024) as ex:
        for sql in (
            "SELECT zeroblob(1000000)",
            "SELECT randomblob(100000)",
            "SELECT replace(printf('%.*c', 20000, 'x'), 'x', 'xx')",
            "SELECT group_concat(name) FROM items",
        ):
            with pytest.raises(ResultTooLargeError, match="a value of the result") as info:
                ex.run(sql)
            assert info.value.code == "SQLITE_TOOBIG"
        # printf itself returns NULL past the limit rather than failing.
        assert ex.run("SELECT printf('%.*c', 900000000, 'x')").rows == ((None,),)
        assert ex.run("SELECT length(group_concat(name)) FROM items WHERE id < 100").rows[0][0]


def test_a_large_result_stops_while_fetching(db: Path) -> None:
    with ReadOnlyExecutor(f"sqlite:///{db}", max_rows=100_000, max_result_bytes=64 * 1024) as ex:
        with pytest.raises(ResultTooLargeError, match="64 KiB") as info:
            ex.run("SELECT id, name, price FROM items")
        assert info.value.code is None
        assert ex.run("SELECT count(*) FROM items").rows == ((ROWS,),)
        assert ex.run("SELECT id FROM items WHERE id <= 10").row_count == 10


def test_the_length_limit_is_restored_after_each_run(db: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{db}", poolclass=StaticPool)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert isinstance(raw, sqlite3.Connection)
            before = raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
        with ReadOnlyExecutor(engine, max_result_bytes=4096) as ex:
            ex.run("SELECT 1")
            with pytest.raises(ResultTooLargeError):
                ex.run("SELECT zeroblob(10000)")
        assert raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == before
    finally:
        engine.dispose()


def test_result_size_configuration(db: Path) -> None:
    url = f"sqlite:///{db}"
    for bad in (0, 1023, True, 2.5, "16MiB"):
        with pytest.raises(ConfigError, match="max_result_bytes"):
            ReadOnlyExecutor(url, max_result_bytes=bad)  # type: ignore[arg-type]
    with ReadOnlyExecutor(url) as ex:
        assert ex.max_result_bytes == DEFAULT_MAX_RESULT_BYTES == 16 * 1024 * 1024
        assert "max_result_bytes=16777216" in repr(ex)
    with executor_for(url, max_result_bytes=2048) as ex:
        assert ex.max_result_bytes == 2048
