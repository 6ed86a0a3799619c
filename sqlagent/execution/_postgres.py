"""PostgreSQL (psycopg 3): only plain queries, in a read-only transaction, size- and time-bounded.

Each run, on its own pooled connection:

* ``BEGIN TRANSACTION READ ONLY`` then ``SET LOCAL statement_timeout``: the server refuses every
  write to tables, sequences (``nextval``), schemas and data-modifying CTEs with SQLSTATE 25006,
  and cancels the statement once ``timeout_s`` has passed (SQLSTATE 57014);
* **only a plain query runs**, and the server decides what that is before anything runs. A
  protocol-level Parse accepts any statement (``COPY``, ``SET``, ``DO``, ``CALL``, ``VACUUM``:
  utility statements are parsed and stored, not analysed), so it cannot tell. SQL-level
  ``PREPARE name AS ...`` can: its grammar takes only optimizable statements (``SELECT``,
  ``VALUES``, ``TABLE``, ``INSERT``/``UPDATE``/``DELETE``/``MERGE``), and it parses and analyses
  without running anything. So the statement is first prepared that way (sent with the
  extended protocol, which carries exactly one statement), described, and deallocated at once.
  It must prepare and describe at least one result column: ``COPY ... TO '/file'``, ``SET``,
  ``SHOW``, ``EXPLAIN``, ``DO``, ``CALL``, ``LISTEN``, ``SELECT ... INTO`` and every DDL are
  refused with :class:`~sqlagent.errors.ReadOnlyViolationError` without having run. A statement
  PostgreSQL cannot prepare is told apart from a syntax error by parsing it alone (a Parse
  message, which runs nothing): a syntax error is reported as such. Writes that do prepare
  (``INSERT ... RETURNING``, a data-modifying ``WITH``) are left to the read-only transaction;
* the statement then runs with the *extended* query protocol (psycopg's ``stream``), which also
  carries exactly one statement: ``SELECT 1; COMMIT; DELETE FROM t`` is refused by the server
  instead of committing the read-only transaction and running the ``DELETE`` in a new one, as
  the simple protocol would;
* **results are bounded in bytes.** libpq receives a whole row before handing it over, so a
  single huge value (``repeat(name, 100000000)``, a ``string_agg`` over a cross join) would be
  in the client's memory before any client-side check could look at it. The query therefore
  runs wrapped as ``SELECT *, <check> FROM (<statement>) AS q(c1, ..., cn)``, where ``<check>``
  makes the *server* fail the row (error 22P02 with a marker, raised as
  :class:`~sqlagent.errors.ResultTooLargeError`) when the sum of its values' sizes passes
  ``max_result_bytes``: ``octet_length`` for text, ``varchar``, ``char`` and ``bytea`` (their
  full size, read from the value's header without detoasting), ``pg_column_size`` for the rest.
  The wrapper does not change the result: the columns are described from the statement itself,
  a subquery's ``ORDER BY`` and ``LIMIT`` hold, PostgreSQL does not flatten a subquery whose
  output has volatile functions (so nothing is evaluated twice), and the check column is dropped
  before rows are returned. A statement the wrapper cannot hold (only writes:
  ``INSERT ... RETURNING``, a data-modifying ``WITH``) runs as written, where the read-only
  transaction refuses it. The client also counts every row as it arrives and stops once the
  result passes ``max_result_bytes``;
* rows are streamed and at most ``max_rows + 1`` are read; a longer or larger result is
  cancelled on the server, so memory stays bounded;
* the transaction is always rolled back (never committed), which also undoes ``SET`` and
  ``set_config`` of the run, then ``pg_advisory_unlock_all()`` releases any *session* advisory
  lock the statement took (``pg_advisory_lock`` survives a rollback); the connection's
  ``autocommit`` flag is restored.

Not guaranteed (use a database role with only ``SELECT`` grants; see
:func:`~sqlagent.execution.check_privileges`): a query can still call functions whose effect is
outside table data, such as ``pg_read_file`` or ``lo_export`` (superuser or
``pg_read_server_files``/``pg_write_server_files`` only), ``pg_terminate_backend`` (own role's
sessions, or ``pg_signal_backend``), ``dblink`` or untrusted-language functions. The per-row
size check reads stored compressed values of types other than text/bytea (``jsonb``, arrays) at
their compressed size; the client-side count still stops such a result after that row.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from psycopg.rows import tuple_row
from sqlalchemy.engine import Engine

from sqlagent.errors import (
    ExecutionError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    ResultTooLargeError,
)
from sqlagent.execution._base import (
    Fetched,
    Limits,
    Session,
    not_a_query_message,
    one_line,
    read_only_message,
    take_rows,
    timeout_message,
    too_large_message,
)

__all__ = ["PostgresBackend"]

_READ_ONLY_SQL_TRANSACTION = "25006"
_QUERY_CANCELED = "57014"
_SYNTAX_ERROR = "42601"
_INVALID_PREPARED_DEFINITION = "42P14"
_INVALID_TEXT_REPRESENTATION = "22P02"
_FEATURE_NOT_SUPPORTED = "0A000"
_DUPLICATE_PREPARED = "42P05"
# The SQL-level prepared statement of the gate; deallocated before the query runs.
_GATE = b"sqlagent_gate"
# The server-side size check fails a row with this text inside its error message.
_TOO_LARGE_MARKER = "sqlagent:max_result_bytes:"
# Types whose size octet_length() reads in full from the value's header (no detoasting).
_OCTET_TYPES = frozenset({17, 25, 1042, 1043})  # bytea, text, bpchar, varchar


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the server said the statement returns: column names and type OIDs."""

    names: tuple[str, ...]
    types: tuple[int, ...]


class PostgresBackend:
    """Every guarantee is set up per run and ends with it: nothing is installed on the engine."""

    def __init__(self, engine: Engine) -> None:
        del engine

    def run(self, conn: Any, sql: str, limits: Limits, session: Session) -> Fetched:
        pg: psycopg.Connection[Any] = conn
        text = _statement_text(sql)
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
                _begin(cur, limits)
                deadline = time.monotonic() + limits.timeout_s
                shape = _gate(pg, cur, text, limits, session)
                try:
                    return _stream(cur, _bounded(text, shape, limits), shape, limits, extra=1)
                except psycopg.Error as exc:
                    if exc.sqlstate not in (_SYNTAX_ERROR, _FEATURE_NOT_SUPPORTED):
                        raise
                # Only a write does not fit in the wrapper (it prepared, so it is no syntax
                # error): run it as written, for the read-only transaction to refuse.
                cur.execute("ROLLBACK")
                _begin(cur, limits)
                return _stream(cur, text, shape, limits, extra=0)
        except psycopg.Error as exc:
            raise _translate(exc, limits, deadline) from exc
        finally:
            # A session advisory lock outlives the rollback: release any the statement took.
            session.quietly(_end, pg)
            session.quietly(setattr, pg, "autocommit", autocommit)
            if pg.closed or pg.info.transaction_status != pq.TransactionStatus.IDLE:
                session.spoiled = True


def _end(pg: psycopg.Connection[Any]) -> None:
    pg.execute("ROLLBACK; SELECT pg_advisory_unlock_all()", prepare=False)  # one round trip


def _statement_text(sql: str) -> str:
    """``sql`` without trailing semicolons (a trailing ``;`` either ends the statement or sits in
    a closing line comment, so dropping it changes nothing), so it fits inside the wrapper."""
    if "\x00" in sql:
        raise ExecutionError("the statement contains a NUL character")
    text = sql.rstrip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _begin(cur: psycopg.Cursor[tuple[Any, ...]], limits: Limits) -> None:
    cur.execute("BEGIN TRANSACTION READ ONLY")
    cur.execute(f"SET LOCAL statement_timeout = {limits.timeout_ms}")


def _gate(
    pg: psycopg.Connection[Any],
    cur: psycopg.Cursor[tuple[Any, ...]],
    text: str,
    limits: Limits,
    session: Session,
) -> _Shape:
    """Prepare ``text`` as a SQL-level prepared statement (nothing runs), describe it and
    deallocate it; refuse it when it is no query. Returns its result columns."""
    pgconn = pg.pgconn
    encoding = pg.info.encoding
    body = text.encode(encoding)
    prepared = pgconn.exec_params(b"PREPARE " + _GATE + b" AS " + body, None)
    if prepared.status == pq.ExecStatus.COMMAND_OK:
        described = pgconn.describe_prepared(_GATE)
        released = pgconn.exec_params(b"DEALLOCATE " + _GATE, None)
        if released.status != pq.ExecStatus.COMMAND_OK:
            session.spoiled = True  # a prepared statement outlives a rollback: discard it all
            raise error_from_result(released, encoding=encoding)
        if described.status != pq.ExecStatus.COMMAND_OK:
            raise error_from_result(described, encoding=encoding)
        if described.nfields == 0:
            raise ReadOnlyViolationError(
                not_a_query_message(
                    "this statement returns no rows (a write without RETURNING, or "
                    "SELECT ... INTO), so it was not run"
                )
            )
        names = tuple(
            (described.fname(i) or b"?column?").decode(encoding) for i in range(described.nfields)
        )
        return _Shape(names, tuple(described.ftype(i) for i in range(described.nfields)))
    refused = error_from_result(prepared, encoding=encoding)
    if refused.sqlstate == _DUPLICATE_PREPARED:  # left by a run that was interrupted
        session.spoiled = True
    if refused.sqlstate not in (_SYNTAX_ERROR, _INVALID_PREPARED_DEFINITION):
        raise refused
    if refused.sqlstate == _SYNTAX_ERROR:
        # Not preparable, or not valid SQL at all: parse the statement alone to tell which
        # (a Parse message runs nothing), in a fresh transaction since this one has failed.
        cur.execute("ROLLBACK")
        _begin(cur, limits)
        parsed = pgconn.prepare(b"", body)
        if parsed.status != pq.ExecStatus.COMMAND_OK:
            raise error_from_result(parsed, encoding=encoding)
    reason = one_line(refused.diag.message_primary or "it cannot be prepared")
    raise ReadOnlyViolationError(
        not_a_query_message(
            f"PostgreSQL cannot prepare this statement as a query ({reason}), so it was not run"
        ),
        code=refused.sqlstate,
    ) from refused


def _bounded(text: str, shape: _Shape, limits: Limits) -> str:
    """``text`` wrapped so that the server fails any row larger than ``max_result_bytes``; the
    wrapper adds one column (always NULL when the row passes) after the statement's own."""
    aliases = ", ".join(f"c{i}" for i in range(1, len(shape.types) + 1))
    sizes = " + ".join(
        f"coalesce({'octet_length' if oid in _OCTET_TYPES else 'pg_column_size'}(c{i})::int8, 0)"
        for i, oid in enumerate(shape.types, start=1)
    )
    # The error's text depends on the row (never a constant), so the planner cannot fold the
    # cast and fail a query whose rows are all small.
    check = (
        f"CASE WHEN ({sizes}) > {limits.max_result_bytes} "
        f"THEN ('{_TOO_LARGE_MARKER}' || ({sizes}))::int4 END"
    )
    return f"SELECT *, {check}\nFROM (\n{text}\n) AS sqlagent_q ({aliases})"


def _stream(
    cur: psycopg.Cursor[tuple[Any, ...]], query: str, shape: _Shape, limits: Limits, *, extra: int
) -> Fetched:
    # A generator, though typed as an Iterator: closing it early cancels the query.
    stream = cast(Generator[tuple[Any, ...], None, None], cur.stream(query))
    try:
        rows, _ = take_rows((row[: len(row) - extra] for row in stream), limits)
    finally:
        stream.close()  # cancels a query that still has rows to send
    return Fetched(shape.names, tuple(rows[: limits.max_rows]), len(rows) > limits.max_rows)


def _translate(exc: psycopg.Error, limits: Limits, deadline: float) -> ExecutionError:
    state = exc.sqlstate
    if state is None and isinstance(exc, psycopg.ProgrammingError) and "stream()" in str(exc):
        return ExecutionError("the statement returned no rows to read; only queries can run")
    primary = exc.diag.message_primary or str(exc)
    return _error(state, primary, exc.diag.message_hint, limits, deadline)


def _error(
    state: str | None,
    primary: str,
    hint: str | None,
    limits: Limits,
    deadline: float,
) -> ExecutionError:
    if state == _INVALID_TEXT_REPRESENTATION and _TOO_LARGE_MARKER in primary:
        return ResultTooLargeError(
            too_large_message(limits, what="a row of the result"), code=state
        )
    message = one_line(primary)
    if hint:
        message += f" (hint: {one_line(hint)})"
    if state == _READ_ONLY_SQL_TRANSACTION:
        return ReadOnlyViolationError(read_only_message(message), code=state)
    if state == _QUERY_CANCELED and deadline and time.monotonic() >= deadline:
        return QueryTimeoutError(timeout_message(limits), code=state)
    return ExecutionError(message, code=state)
