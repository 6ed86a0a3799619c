"""PostgreSQL (psycopg 3): a read-only transaction, a statement timeout, always rolled back.

Each run, on its own pooled connection:

* ``BEGIN TRANSACTION READ ONLY`` then ``SET LOCAL statement_timeout``: the server refuses every
  write to tables, sequences (``nextval``), schemas and data-modifying CTEs with SQLSTATE 25006,
  and cancels the statement once ``timeout_s`` has passed (SQLSTATE 57014);
* the statement is sent with the *extended* query protocol (psycopg's ``stream``), which carries
  exactly one statement: ``SELECT 1; COMMIT; DELETE FROM t`` is refused by the server instead of
  committing the read-only transaction and running the ``DELETE`` in a new one, as the simple
  protocol would;
* rows are streamed and at most ``max_rows + 1`` are read; a longer result is cancelled on the
  server, so memory stays bounded;
* the transaction is always rolled back (never committed), which also undoes ``SET`` and
  ``set_config`` of the run; the connection's ``autocommit`` flag is restored.

Only statements that return rows can run: a bare ``COMMIT`` or ``SET`` gets an error.

Not guaranteed (use a database role with only ``SELECT`` grants for these): a read-only
transaction does not stop side effects outside table data, such as session advisory locks
(``pg_advisory_lock``), ``pg_terminate_backend``, ``dblink`` or untrusted-language functions, or
reading server files through superuser-only functions.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row
from sqlalchemy.engine import Engine

from sqlagent.errors import ExecutionError, QueryTimeoutError, ReadOnlyViolationError
from sqlagent.execution._base import (
    Fetched,
    Limits,
    Session,
    one_line,
    read_only_message,
    timeout_message,
)

__all__ = ["PostgresBackend"]

_READ_ONLY_SQL_TRANSACTION = "25006"
_QUERY_CANCELED = "57014"


class PostgresBackend:
    """Every guarantee is set up per run and ends with it: nothing is installed on the engine."""

    def __init__(self, engine: Engine) -> None:
        del engine

    def run(self, conn: Any, sql: str, limits: Limits, session: Session) -> Fetched:
        pg: psycopg.Connection[Any] = conn
        deadline = 0.0
        try:
            if pg.info.transaction_status != pq.TransactionStatus.IDLE:
                pg.rollback()
            autocommit = pg.autocommit
            pg.autocommit = True  # so that our BEGIN/ROLLBACK are the only transaction control
        except psycopg.Error as exc:
            session.spoiled = True
            raise ExecutionError(one_line(exc), code=exc.sqlstate) from exc
        try:
            with pg.cursor(row_factory=tuple_row) as cur:
                cur.execute("BEGIN TRANSACTION READ ONLY")
                cur.execute(f"SET LOCAL statement_timeout = {limits.timeout_ms}")
                deadline = time.monotonic() + limits.timeout_s
                return _stream(pg, cur, sql, limits)
        except psycopg.Error as exc:
            raise _translate(exc, limits, deadline) from exc
        finally:
            session.quietly(pg.execute, "ROLLBACK")
            session.quietly(setattr, pg, "autocommit", autocommit)
            if pg.closed or pg.info.transaction_status != pq.TransactionStatus.IDLE:
                session.spoiled = True


def _stream(
    pg: psycopg.Connection[Any], cur: psycopg.Cursor[tuple[Any, ...]], sql: str, limits: Limits
) -> Fetched:
    rows: list[tuple[Any, ...]] = []
    columns: tuple[str, ...] = ()
    # A generator, though typed as an Iterator: closing it early cancels the query.
    stream = cast(Generator[tuple[Any, ...], None, None], cur.stream(sql))
    try:
        for row in stream:
            if not rows:
                columns = tuple(d.name for d in cur.description or ())
            rows.append(row)
            if len(rows) > limits.max_rows:
                break
    finally:
        stream.close()  # cancels a query that still has rows to send
    if not rows:
        columns = _describe(pg, sql)
    return Fetched(columns, tuple(rows[: limits.max_rows]), len(rows) > limits.max_rows)


def _describe(pg: psycopg.Connection[Any], sql: str) -> tuple[str, ...]:
    """Column names of a statement that returned no rows (a stream reports none then)."""
    encoding = pg.info.encoding
    pgconn = pg.pgconn
    if pgconn.prepare(b"", sql.encode(encoding)).status != pq.ExecStatus.COMMAND_OK:
        return ()
    described = pgconn.describe_prepared(b"")
    if described.status != pq.ExecStatus.COMMAND_OK:
        return ()
    return tuple(
        (described.fname(i) or b"?column?").decode(encoding) for i in range(described.nfields)
    )


def _translate(exc: psycopg.Error, limits: Limits, deadline: float) -> ExecutionError:
    state = exc.sqlstate
    if state is None and isinstance(exc, psycopg.ProgrammingError) and "stream()" in str(exc):
        return ExecutionError("the statement returned no rows to read; only queries can run")
    primary = exc.diag.message_primary or str(exc)
    message = one_line(primary)
    if exc.diag.message_hint:
        message += f" (hint: {one_line(exc.diag.message_hint)})"
    if state == _READ_ONLY_SQL_TRANSACTION:
        return ReadOnlyViolationError(read_only_message(message), code=state)
    if state == _QUERY_CANCELED and deadline and time.monotonic() >= deadline:
        return QueryTimeoutError(timeout_message(limits), code=state)
    return ExecutionError(message, code=state)
