"""SQLite: a read-only file, ``query_only``, an authorizer and a progress-handler deadline.

Three independent locks against writes (each alone stops INSERT, UPDATE, DELETE and DDL on the
database file) and a deadline:

* files opened from a URL use ``mode=ro`` (the OS-level open is read-only; a missing file is an
  error, never a new empty database);
* ``PRAGMA query_only = ON`` on every connection: when it is opened (an engine ``connect``
  listener) *and* at the start of every run, so an engine the caller built in read-write mode,
  with connections already pooled, is read-only too;
* an authorizer, installed for the run and removed after it, that admits only reads: ``SELECT``,
  column reads, recursive CTEs, functions (except ``load_extension`` and ``fts3_tokenizer``) and a
  few introspection pragmas. It refuses what the first two do not cover: ``ATTACH`` (which would
  create a new file even on a read-only connection), ``VACUUM INTO``, temporary tables, pragmas
  that change settings (``journal_mode``, ``query_only = OFF`` ...), ``ANALYZE``, transaction
  control. ``SQLITE_LIMIT_ATTACHED`` is also set to 0;
* a progress handler, installed for the run with that run's deadline and removed after it, that
  aborts the statement (execution *and* fetching) once ``timeout_s`` has passed;
* ``SQLITE_LIMIT_LENGTH`` lowered to ``max_result_bytes`` for the run (and restored after it):
  SQLite refuses to build or read any string, BLOB or row larger than that (``SQLITE_TOOBIG``,
  raised as :class:`~sqlagent.errors.ResultTooLargeError`), so ``printf('%.*c', 900000000,
  'x')`` fails inside the engine instead of materializing; rows are counted as they are fetched
  and the run stops once the result passes the cap.

Python's ``sqlite3`` runs one statement per ``execute`` (``SELECT 1; DROP TABLE t`` is an error)
and leaves extension loading disabled. Not guaranteed: a caller-supplied engine keeps
``query_only`` on its connections after the executor is closed (give the executor its own
engine); reading a WAL-mode database through ``mode=ro`` needs its ``-shm`` file (or write access
to the directory to create it); the engine's working memory within the time limit (a large sort,
many values each under the length limit) is not capped.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from sqlagent.errors import (
    ConfigError,
    ExecutionError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    ResultTooLargeError,
)
from sqlagent.execution._base import (
    Fetched,
    Limits,
    Session,
    one_line,
    read_only_message,
    take_rows,
    timeout_message,
    too_large_message,
)

__all__ = ["SQLiteBackend", "sqlite_engine"]

# How many virtual-machine steps between two deadline checks: frequent enough for a prompt stop,
# rare enough to cost nothing measurable.
_PROGRESS_STEPS = 1000

_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_FUNCTION}
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
# Pragmas that only ever report, whatever their argument (a table or index name).
_INTROSPECTION_PRAGMAS = frozenset(
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
        "foreign_key_list", "collation_list", "function_list", "module_list", "pragma_list",
        "database_list", "compile_options", "data_version", "page_count", "freelist_count",
    }
)  # fmt: skip
# Settings that may be read (no argument) but not changed.
_READABLE_SETTINGS = frozenset(
    {"query_only", "user_version", "application_id", "schema_version", "journal_mode",
     "foreign_keys", "encoding", "page_size"}
)  # fmt: skip
# SQLite's own nested parse, when a table-valued function (json_each, pragma_table_info, an FTS5
# table) is first used on a connection, reports updates of the schema table. A statement that
# really updates it is still refused by query_only (and by SQLite unless writable_schema is on,
# a pragma the authorizer refuses).
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_temp_master", "sqlite_schema"})

_ACTION_NAMES = {
    getattr(sqlite3, name): name.removeprefix("SQLITE_").replace("_", " ")
    for name in (
        "SQLITE_INSERT", "SQLITE_UPDATE", "SQLITE_DELETE", "SQLITE_ATTACH", "SQLITE_DETACH",
        "SQLITE_ALTER_TABLE", "SQLITE_ANALYZE", "SQLITE_REINDEX", "SQLITE_TRANSACTION",
        "SQLITE_SAVEPOINT", "SQLITE_PRAGMA", "SQLITE_CREATE_INDEX", "SQLITE_CREATE_TABLE",
        "SQLITE_CREATE_TEMP_INDEX", "SQLITE_CREATE_TEMP_TABLE", "SQLITE_CREATE_TEMP_TRIGGER",
        "SQLITE_CREATE_TEMP_VIEW", "SQLITE_CREATE_TRIGGER", "SQLITE_CREATE_VIEW",
        "SQLITE_CREATE_VTABLE", "SQLITE_DROP_INDEX", "SQLITE_DROP_TABLE", "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_TABLE", "SQLITE_DROP_TEMP_TRIGGER", "SQLITE_DROP_TEMP_VIEW",
        "SQLITE_DROP_TRIGGER", "SQLITE_DROP_VIEW", "SQLITE_DROP_VTABLE",
    )
}  # fmt: skip


_ROW_WRITES = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
# Actions whose first argument is not an object name (it is BEGIN/COMMIT/ROLLBACK/RELEASE).
_UNNAMED_ACTIONS = frozenset({sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT})


def sqlite_engine(url: sa.URL) -> Engine:
    """An engine that opens the database of ``url`` read-only; a missing file is refused.

    ``sqlite://`` and ``:memory:`` give a private empty in-memory database. A plain path or a
    ``file:`` URI is opened as a URI with ``mode=ro`` (whatever mode the URL asked for), so the
    open itself can neither write nor create a file.
    """
    database = url.database or ""
    query = dict(url.query)
    if database in ("", ":memory:"):
        return sa.create_engine(url)
    if database.startswith("file:"):
        path_part, _, inline = database[len("file:") :].partition("?")
        query = {**dict(parse_qsl(inline)), **query, "uri": "true"}
        if query.get("mode") == "memory" or path_part in ("", ":memory:"):
            return sa.create_engine(url.set(database=f"file:{path_part}", query=query))
        path_text = unquote(path_part.removeprefix("//localhost").removeprefix("//"))
    else:
        path_text = database
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"SQLite database file not found: {path}")
    uri = "file:" + quote(str(path.resolve()))
    return sa.create_engine(url.set(database=uri, query={**query, "mode": "ro", "uri": "true"}))


@dataclass
class _Guard:
    """The per-run authorizer and progress handler, and what they saw."""

    deadline: float
    fired: bool = False
    denied: list[str] = field(default_factory=list)

    def progress(self) -> int:
        if time.monotonic() >= self.deadline:
            self.fired = True
            return 1
        return 0

    def authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, origin: str | None
    ) -> int:
        if action in _ALLOWED_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
                self.denied.append(f"function {arg2}()")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in _INTROSPECTION_PRAGMAS or (name in _READABLE_SETTINGS and arg2 is None):
                return sqlite3.SQLITE_OK
            self.denied.append(f"PRAGMA {arg1}" + ("" if arg2 is None else f" = {arg2}"))
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_UPDATE and (arg1 or "").lower() in _SCHEMA_TABLES:
            return sqlite3.SQLITE_OK
        what = _ACTION_NAMES.get(action, f"action {action}")
        if action in _ROW_WRITES and (arg1 or "").lower() in _SCHEMA_TABLES:
            what, arg1 = "schema change", None  # SQLite's own bookkeeping of a CREATE or DROP
        elif action == sqlite3.SQLITE_ALTER_TABLE:
            arg1 = arg2  # (database, table)
        self.denied.append(f"{what} ({arg1})" if arg1 and action not in _UNNAMED_ACTIONS else what)
        return sqlite3.SQLITE_DENY


def _lock_down(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA query_only = ON")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)


class SQLiteBackend:
    def __init__(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _read_only_on_connect(dbapi_conn: Any, _record: Any) -> None:
            _lock_down(dbapi_conn)

    def run(self, conn: Any, sql: str, limits: Limits, session: Session) -> Fetched:
        if not isinstance(conn, sqlite3.Connection):  # the driver is checked when built
            raise ConfigError("the SQLite executor needs the standard sqlite3 driver")
        guard = _Guard(deadline=time.monotonic() + limits.timeout_s)
        cursor: sqlite3.Cursor | None = None
        saved_length: int | None = None
        rows: list[tuple[Any, ...]] = []
        try:
            _lock_down(conn)  # connections pooled before the listener existed
            conn.execute(f"PRAGMA busy_timeout = {limits.timeout_ms}")
            saved_length = conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_result_bytes)
            conn.set_authorizer(guard.authorize)
            conn.set_progress_handler(guard.progress, _PROGRESS_STEPS)
            cursor = conn.cursor()
            cursor.execute(sql)
            columns = tuple(str(d[0]) for d in cursor.description or ())
            if cursor.description:
                rows, _ = take_rows(cursor, limits)
        except sqlite3.Error as exc:
            raise _translate(exc, guard, limits) from exc
        finally:
            if cursor is not None:
                session.quietly(cursor.close)
            session.quietly(conn.set_progress_handler, None, 0)
            session.quietly(conn.set_authorizer, None)
            if saved_length is not None:
                session.quietly(conn.setlimit, sqlite3.SQLITE_LIMIT_LENGTH, saved_length)
            session.quietly(conn.rollback)
        truncated = len(rows) > limits.max_rows
        return Fetched(columns, tuple(tuple(r) for r in rows[: limits.max_rows]), truncated)


def _translate(exc: sqlite3.Error, guard: _Guard, limits: Limits) -> ExecutionError:
    code = getattr(exc, "sqlite_errorname", None)
    errcode = getattr(exc, "sqlite_errorcode", None)
    primary = errcode & 0xFF if isinstance(errcode, int) else None
    if guard.fired and primary == sqlite3.SQLITE_INTERRUPT:
        return QueryTimeoutError(timeout_message(limits), code=code)
    if primary == sqlite3.SQLITE_TOOBIG:
        return ResultTooLargeError(
            too_large_message(limits, what="a value of the result"), code=code
        )
    if guard.denied:  # the statement failed because the authorizer refused part of it
        what = guard.denied[0]
        if what.startswith("function "):
            return ExecutionError(f"{what} is not allowed", code=code)
        return ReadOnlyViolationError(read_only_message(f"{what} is not allowed"), code=code)
    if primary == sqlite3.SQLITE_READONLY:
        return ReadOnlyViolationError(read_only_message(one_line(exc)), code=code)
    return ExecutionError(one_line(exc), code=code)
