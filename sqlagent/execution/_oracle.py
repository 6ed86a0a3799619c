"""Oracle (python-oracledb or cx_Oracle): a read-only transaction and a call timeout.

UNTESTED: no Oracle server is available where sqlagent is developed, so this backend has never
run against a real database; it follows the drivers' and Oracle's documentation. Each run:

* refuses, before sending anything, text that is not a query: after comments, the first word must
  be ``SELECT`` or ``WITH`` (and not ``WITH FUNCTION``/``WITH PROCEDURE``). This lexical check is
  deliberately crude and only a backstop: in Oracle, DDL commits the current transaction and runs
  even inside ``SET TRANSACTION READ ONLY``, and a PL/SQL block could ``COMMIT`` and then write;
* ``SET TRANSACTION READ ONLY`` (with ``autocommit`` off for the run), so DML fails with
  ORA-01456; ``SELECT ... FOR UPDATE`` is refused too;
* ``connection.call_timeout`` set to the time limit (it bounds each round trip, so the run's
  total is also checked against the deadline), then restored;
* at most ``max_rows + 1`` rows fetched, counted as they arrive and stopped past
  ``max_result_bytes`` (:class:`~sqlagent.errors.ResultTooLargeError`; a ``VARCHAR2`` value is at
  most 32 KiB, LOBs arrive as locators); always rolled back; a trailing ``;`` is dropped (Oracle
  rejects it in a SQL statement).

Not guaranteed: functions declared ``PRAGMA AUTONOMOUS_TRANSACTION`` run in their own transaction
and can write even when called from a query; after a call timeout the connection is discarded
rather than trusted. Use a database user with only ``SELECT`` grants.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy.engine import Engine

from sqlagent.errors import ExecutionError, QueryTimeoutError, ReadOnlyViolationError
from sqlagent.execution._base import (
    Fetched,
    Limits,
    Session,
    one_line,
    read_only_message,
    take_rows,
    timeout_message,
)

__all__ = ["OracleBackend", "leading_words"]

_READ_ONLY_CODES = frozenset({1456})  # ORA-01456: DML inside a READ ONLY transaction
_TIMEOUT_CODES = frozenset({"DPY-4024", "DPI-1067", "ORA-03156", "ORA-01013"})
_SKIP = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()+", re.S)
_WORD = re.compile(r"[A-Za-z_]+")


def leading_words(sql: str, count: int = 2) -> list[str]:
    """The first ``count`` words of ``sql`` in upper case, skipping comments and parentheses."""
    words: list[str] = []
    pos = 0
    while len(words) < count:
        skipped = _SKIP.match(sql, pos)
        if skipped:
            pos = skipped.end()
        word = _WORD.match(sql, pos)
        if not word:
            break
        words.append(word.group().upper())
        pos = word.end()
    return words


def _refuse_non_query(sql: str) -> None:
    words = leading_words(sql)
    first = words[0] if words else ""
    if first not in ("SELECT", "WITH") or words[1:2] in (["FUNCTION"], ["PROCEDURE"]):
        raise ReadOnlyViolationError(
            read_only_message(f"only queries (SELECT or WITH) may run on Oracle, not {first!r}")
        )


class OracleBackend:
    def __init__(self, engine: Engine) -> None:
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def run(self, conn: Any, sql: str, limits: Limits, session: Session) -> Fetched:
        text = sql.strip().rstrip(";").rstrip()
        _refuse_non_query(text)
        saved_timeout, saved_autocommit = conn.call_timeout, conn.autocommit
        deadline = time.monotonic() + limits.timeout_s
        try:
            conn.autocommit = False
            conn.call_timeout = limits.timeout_ms
            cursor = conn.cursor()
            try:
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.arraysize = min(limits.max_rows + 1, 1000)
                cursor.execute(text)
                if cursor.description is None:
                    raise ReadOnlyViolationError(read_only_message("the statement was not a query"))
                columns = tuple(str(d[0]) for d in cursor.description)
                rows, _ = take_rows(cursor, limits)  # arraysize rows per round trip
            finally:
                session.quietly(cursor.close)
        except self._error as exc:
            error = _translate(exc, limits, deadline)
            if isinstance(error, QueryTimeoutError):
                session.spoiled = True
            raise error from exc
        finally:
            session.quietly(conn.rollback)
            session.quietly(setattr, conn, "call_timeout", saved_timeout)
            session.quietly(setattr, conn, "autocommit", saved_autocommit)
        truncated = len(rows) > limits.max_rows
        return Fetched(columns, tuple(tuple(r) for r in rows[: limits.max_rows]), truncated)


def _translate(exc: Exception, limits: Limits, deadline: float) -> ExecutionError:
    detail = exc.args[0] if exc.args else exc
    number = getattr(detail, "code", None)
    full_code = getattr(detail, "full_code", None)
    message = one_line(getattr(detail, "message", None) or detail)
    if number in _READ_ONLY_CODES:
        return ReadOnlyViolationError(read_only_message(message), code=full_code)
    if full_code in _TIMEOUT_CODES or (
        full_code is None and "timeout" in message.lower() and time.monotonic() >= deadline
    ):
        return QueryTimeoutError(timeout_message(limits), code=full_code)
    return ExecutionError(message, code=full_code)
