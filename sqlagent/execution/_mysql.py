"""MySQL and MariaDB (PyMySQL): only queries, in a read-only session and transaction, bounded.

Each run, on its own pooled connection:

* the session's transaction mode is set to read-only (``tx_read_only`` on MariaDB,
  ``transaction_read_only`` on MySQL) *and* the statement runs inside
  ``START TRANSACTION READ ONLY``. The transaction alone is not enough: DDL (``CREATE TABLE``,
  ``DROP TABLE``, ``CREATE DATABASE`` ...) commits it implicitly and would then run; with the
  session read-only too, the server refuses it with error 1792, like every DML statement;
* **only a statement that returns a result set runs**, and the server says which before anything
  runs: the statement is first prepared with the binary protocol (``COM_STMT_PREPARE``, which
  parses and resolves it without running it, then ``COM_STMT_CLOSE``), and the server's answer
  gives its number of result columns. Zero means it is no query: ``SELECT ... INTO OUTFILE`` /
  ``DUMPFILE`` / ``@var``, ``SET`` (``SET GLOBAL`` too), ``DO``, ``CALL``, ``KILL``, ``FLUSH``,
  ``INSERT``/``UPDATE``/``DELETE`` and every DDL are refused with
  :class:`~sqlagent.errors.ReadOnlyViolationError` without having run. PyMySQL has no public
  call for this; the packet exchange (a documented part of the client/server protocol) goes
  through its connection's ``_execute_command``/``_read_packet``. ``SHOW``, ``EXPLAIN`` and
  ``SELECT``s that call functions (``GET_LOCK``, ``LOAD_FILE``, ``SLEEP``) do return a result set
  and run;
* the time limit is the session's ``max_statement_time`` (seconds) on MariaDB or
  ``max_execution_time`` (milliseconds, SELECT only) on MySQL, told apart by the server's
  version string. A run that comes back after the deadline is a timeout even without an error,
  because MariaDB may interrupt ``SLEEP()`` by returning 1 instead of failing. As a backstop
  for a statement that lifts its own limit (MariaDB's ``SET STATEMENT max_statement_time = 0
  FOR SELECT ...``), the socket read time-out is set to the limit plus two seconds for the run:
  past it the connection is dropped, the statement is killed (``KILL QUERY`` from a connection of
  its own) and the run is a timeout;
* rows are read with an unbuffered cursor, at most ``max_rows + 1`` of them, and counted as they
  arrive: once the result passes ``max_result_bytes`` the run stops with
  :class:`~sqlagent.errors.ResultTooLargeError`. When a result is left unread (too long or too
  large), the connection is closed instead of draining it, so memory stays bounded. A single
  value cannot grow past the server's ``max_allowed_packet`` (16 MiB by default on MariaDB
  10.11): a string function whose result would (``REPEAT``, ``LPAD``, ``GROUP_CONCAT`` past
  ``group_concat_max_len``) returns ``NULL`` with a warning instead; a row of many such values
  is still received whole before it is counted;
* the transaction is always rolled back and both session settings are restored to their previous
  values; then ``RELEASE_ALL_LOCKS()`` frees user-level locks the statement took (``GET_LOCK``
  outlives a rollback), and a connection left holding user variables (``SELECT @a := ...``) is
  discarded rather than handed to the next run.

PyMySQL sends one statement per call unless the connection enables ``CLIENT.MULTI_STATEMENTS``;
such an engine is refused (:class:`~sqlagent.errors.ConfigError`), because a ``COMMIT`` in the
middle of a multi-statement string would end the read-only transaction.

Tested on MariaDB 10.11 only; the MySQL branch (variable names, error 3024, user variables in
``performance_schema``) follows MySQL 8's documentation. Not guaranteed (use an account with
only ``SELECT`` grants; see :func:`~sqlagent.execution.check_privileges`): queries that call
functions with effects outside table data still run, such as ``LOAD_FILE()`` (needs the FILE
privilege; without it the server returns ``NULL``) or ``SLEEP()`` within the time limit.
"""

from __future__ import annotations

import contextlib
import importlib
import struct
import time
from typing import Any

from sqlalchemy.engine import Engine

from sqlagent.errors import ConfigError, ExecutionError, QueryTimeoutError, ReadOnlyViolationError
from sqlagent.execution._base import (
    Fetched,
    Limits,
    Session,
    not_a_query_message,
    one_line,
    read_only_message,
    take_rows,
    timeout_message,
)

__all__ = ["MySQLBackend"]

_MULTI_STATEMENTS = 1 << 16  # CLIENT.MULTI_STATEMENTS
_READ_ONLY_TRANSACTION = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
_TIMEOUTS = frozenset({1969, 3024})  # MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT
_INTERRUPTED = 1317  # ER_QUERY_INTERRUPTED
_SERVER_LOST = 2013  # CR_SERVER_LOST: the socket read time-out fired
_COM_STMT_PREPARE = 0x16
_COM_STMT_CLOSE = 0x19
_DEPRECATE_EOF = 1 << 24  # CLIENT.DEPRECATE_EOF: no EOF packet after column definitions
# Seconds past the time limit before the client stops waiting for the server.
_READ_GRACE_S = 2.0
# What a run can leave on the session past its rollback: user-level locks (released here) and
# user variables (counted: a connection holding any is discarded).
_CLEANUP = {
    True: "SELECT RELEASE_ALL_LOCKS(), (SELECT COUNT(*) FROM information_schema.USER_VARIABLES)",
    False: (
        "SELECT RELEASE_ALL_LOCKS(), (SELECT COUNT(*) FROM "
        "performance_schema.user_variables_by_thread WHERE THREAD_ID = PS_CURRENT_THREAD_ID())"
    ),
}


class MySQLBackend:
    def __init__(self, engine: Engine) -> None:
        dbapi = engine.dialect.loaded_dbapi
        self._engine = engine
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
        thread_id = conn.thread_id()
        saved_read_timeout = getattr(conn, "_read_timeout", None)
        columns: tuple[str, ...] = ()
        rows: list[tuple[Any, ...]] = []
        truncated = False
        try:
            if _result_columns(conn, sql) == 0:
                raise ReadOnlyViolationError(
                    not_a_query_message(
                        "this statement returns no result set (SET, DO, CALL, SELECT ... INTO, "
                        "a write or DDL), so it was not run"
                    )
                )
            if hasattr(conn, "_read_timeout"):
                conn._read_timeout = limits.timeout_s + _READ_GRACE_S
            cursor = conn.cursor(self._streaming_cursor)
            drained = False
            try:
                cursor.execute(sql)
                if cursor.description is None:  # cannot happen after the check above
                    raise ReadOnlyViolationError(not_a_query_message("it returned no result set"))
                columns = tuple(str(d[0]) for d in cursor.description)
                rows, drained = take_rows(
                    (tuple(row) for row in iter(cursor.fetchone, None)), limits
                )
                truncated = not drained
            finally:
                if drained:
                    session.quietly(cursor.close)
                else:  # rows left unread, or a failure mid-result: close, never drain
                    session.spoiled = True
                    _abandon(cursor)
        except self._error as exc:
            error = _translate(exc, limits, deadline)
            if not getattr(conn, "open", True):  # the read time-out dropped the connection
                session.spoiled = True
                session.quietly(self._kill, thread_id)
            raise error from exc
        finally:
            if hasattr(conn, "_read_timeout"):
                conn._read_timeout = saved_read_timeout
            if not session.spoiled:
                session.quietly(conn.rollback)
                restore = (
                    f"SET SESSION {read_only_var} = {int(saved_read_only)}, "
                    f"SESSION {time_var} = {_number(saved_time)}"
                )
                session.quietly(_execute, conn, self._plain_cursor, restore)
                session.quietly(self._clean, conn, mariadb, session)
        return Fetched(columns, tuple(rows[: limits.max_rows]), truncated)

    def _clean(self, conn: Any, mariadb: bool, session: Session) -> None:
        with conn.cursor(self._plain_cursor) as cur:
            cur.execute(_CLEANUP[mariadb])
            _released, variables = cur.fetchone()
        if variables:
            session.spoiled = True

    def _kill(self, thread_id: int) -> None:
        """Stop a statement whose connection was dropped, from a new connection of its own (not
        the pool's: a pool of one, busy with this very run, would make it wait)."""
        dialect = self._engine.dialect
        cargs, cparams = dialect.create_connect_args(self._engine.url)
        other = dialect.connect(*cargs, **cparams)
        with contextlib.closing(other), contextlib.closing(other.cursor()) as cur:
            cur.execute(f"KILL QUERY {int(thread_id)}")


def _abandon(cursor: Any) -> None:
    """Leave an unbuffered result unread: PyMySQL would otherwise read the rest of it when the
    cursor is closed or collected (draining a huge result, or failing on a closed connection).
    The connection is discarded right after."""
    result = getattr(cursor, "_result", None)
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False


def _result_columns(conn: Any, sql: str) -> int:
    """How many columns the server says ``sql`` returns, from a binary-protocol prepare that
    parses and resolves it without running it; the prepared statement is closed at once. A
    statement the server cannot parse or resolve raises the server's error, as running it would.
    """
    conn._execute_command(_COM_STMT_PREPARE, sql)
    answer = conn._read_packet()  # an error packet raises the driver's error
    answer.read_uint8()  # status: 0 (OK)
    statement_id = answer.read_uint32()
    columns = int(answer.read_uint16())
    params = int(answer.read_uint16())
    try:
        eof = 0 if getattr(conn, "client_flag", 0) & _DEPRECATE_EOF else 1
        definitions = params + (eof if params else 0) + columns + (eof if columns else 0)
        for _ in range(definitions):
            conn._read_packet()
    finally:
        conn._execute_command(_COM_STMT_CLOSE, struct.pack("<I", statement_id))  # no answer
    return columns


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
    if code in _TIMEOUTS or (code in (_INTERRUPTED, _SERVER_LOST) and past_deadline):
        return QueryTimeoutError(timeout_message(limits), code=code_text)
    return ExecutionError(message, code=code_text)
