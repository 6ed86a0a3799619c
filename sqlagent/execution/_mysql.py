"""MySQL and MariaDB (PyMySQL): a read-only session and transaction, a statement time limit.

Each run, on its own pooled connection:

* the session's transaction mode is set to read-only (``tx_read_only`` on MariaDB,
  ``transaction_read_only`` on MySQL) *and* the statement runs inside
  ``START TRANSACTION READ ONLY``. The transaction alone is not enough: DDL (``CREATE TABLE``,
  ``DROP TABLE``, ``CREATE DATABASE`` ...) commits it implicitly and would then run; with the
  session read-only too, the server refuses it with error 1792, like every DML statement;
* the time limit is the session's ``max_statement_time`` (seconds) on MariaDB or
  ``max_execution_time`` (milliseconds, SELECT only) on MySQL, told apart by the server's
  version string. A run that comes back after the deadline is a timeout even without an error,
  because MariaDB may interrupt ``SLEEP()`` by returning 1 instead of failing;
* rows are read with an unbuffered cursor, at most ``max_rows + 1`` of them: when a result is
  longer, the connection is closed instead of draining it, so memory stays bounded;
* the transaction is always rolled back and both session settings are restored to their previous
  values.

PyMySQL sends one statement per call unless the connection enables ``CLIENT.MULTI_STATEMENTS``;
such an engine is refused (:class:`~sqlagent.errors.ConfigError`), because a ``COMMIT`` in the
middle of a multi-statement string would end the read-only transaction.

Tested on MariaDB 10.11 only; the MySQL branch (variable names, error 3024) follows MySQL 8's
documentation. Not guaranteed (use an account with only ``SELECT`` grants for these): statements
that change no table data still run, such as ``SET GLOBAL``, ``FLUSH``, ``KILL``,
``SELECT ... INTO OUTFILE`` (needs the FILE privilege), ``GET_LOCK`` or user variables.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from sqlalchemy.engine import Engine

from sqlagent.errors import ConfigError, ExecutionError, QueryTimeoutError, ReadOnlyViolationError
from sqlagent.execution._base import (
    Fetched,
    Limits,
    Session,
    one_line,
    read_only_message,
    timeout_message,
)

__all__ = ["MySQLBackend"]

_MULTI_STATEMENTS = 1 << 16  # CLIENT.MULTI_STATEMENTS
_READ_ONLY_TRANSACTION = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
_TIMEOUTS = frozenset({1969, 3024})  # MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT
_INTERRUPTED = 1317  # ER_QUERY_INTERRUPTED


class MySQLBackend:
    def __init__(self, engine: Engine) -> None:
        dbapi = engine.dialect.loaded_dbapi
        self._error: type[Exception] = dbapi.Error
        cursors = importlib.import_module(f"{dbapi.__name__}.cursors")
        self._plain_cursor: Any = cursors.Cursor
        self._streaming_cursor: Any = cursors.SSCursor

    def run(self, conn: Any, sql: str, limits: Limits, session: Session) -> Fetched:
        if getattr(conn, "client_flag", 0) & _MULTI_STATEMENTS:
            raise ConfigError(
                "the MySQL connection accepts several statements per call "
                "(CLIENT.MULTI_STATEMENTS); the read-only executor needs one statement per call"
            )
        mariadb = "mariadb" in str(conn.get_server_info()).lower()
        read_only_var = "tx_read_only" if mariadb else "transaction_read_only"
        time_var = "max_statement_time" if mariadb else "max_execution_time"
        limit = f"{limits.timeout_s:.3f}" if mariadb else str(limits.timeout_ms)
        try:
            with conn.cursor(self._plain_cursor) as cur:
                cur.execute("ROLLBACK")
                cur.execute(f"SELECT @@SESSION.{read_only_var}, @@SESSION.{time_var}")
                saved_read_only, saved_time = cur.fetchone()
                cur.execute(f"SET SESSION {read_only_var} = 1, SESSION {time_var} = {limit}")
                cur.execute("START TRANSACTION READ ONLY")
        except self._error as exc:
            session.spoiled = True
            raise _translate(exc, limits, deadline=None) from exc
        deadline = time.monotonic() + limits.timeout_s
        truncated = False
        try:
            cursor = conn.cursor(self._streaming_cursor)
            try:
                cursor.execute(sql)
                columns = tuple(str(d[0]) for d in cursor.description or ())
                rows = cursor.fetchmany(limits.max_rows + 1) if cursor.description else ()
                truncated = len(rows) > limits.max_rows
            finally:
                if truncated:
                    session.spoiled = True  # rows left unread: close the connection, never drain
                else:
                    session.quietly(cursor.close)
        except self._error as exc:
            raise _translate(exc, limits, deadline) from exc
        finally:
            if not session.spoiled:
                session.quietly(conn.rollback)
                restore = (
                    f"SET SESSION {read_only_var} = {int(saved_read_only)}, "
                    f"SESSION {time_var} = {_number(saved_time)}"
                )
                session.quietly(_execute, conn, self._plain_cursor, restore)
        return Fetched(columns, tuple(tuple(r) for r in rows[: limits.max_rows]), truncated)


def _execute(conn: Any, cursor_class: Any, sql: str) -> None:
    with conn.cursor(cursor_class) as cur:
        cur.execute(sql)


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _translate(exc: Exception, limits: Limits, deadline: float | None) -> ExecutionError:
    args = exc.args
    code = args[0] if args and isinstance(args[0], int) else None
    message = one_line(args[1] if len(args) > 1 else exc)
    code_text = None if code is None else str(code)
    if code == _READ_ONLY_TRANSACTION:
        return ReadOnlyViolationError(read_only_message(message), code=code_text)
    past_deadline = deadline is not None and time.monotonic() >= deadline
    if code in _TIMEOUTS or (code == _INTERRUPTED and past_deadline):
        return QueryTimeoutError(timeout_message(limits), code=code_text)
    return ExecutionError(message, code=code_text)
