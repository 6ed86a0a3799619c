"""The read-only executor: one statement per run, on a connection the database keeps read-only."""

from __future__ import annotations

import importlib
import time
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sqlagent.dialects import database_url
from sqlagent.errors import ConfigError, ExecutionError, QueryTimeoutError
from sqlagent.execution._base import (
    DEFAULT_MAX_RESULT_BYTES,
    Backend,
    ExecutionResult,
    Limits,
    Session,
    one_line,
    timeout_message,
)

__all__ = ["ReadOnlyExecutor", "executor_for"]

# (SQLAlchemy dialect, driver) -> backend. Only drivers whose single-statement behaviour and
# session controls each backend relies on are accepted.
_BACKENDS: dict[tuple[str, str], str] = {
    ("sqlite", "pysqlite"): "_sqlite:SQLiteBackend",
    ("postgresql", "psycopg"): "_postgres:PostgresBackend",
    ("mysql", "pymysql"): "_mysql:MySQLBackend",
    ("mariadb", "pymysql"): "_mysql:MySQLBackend",
    ("oracle", "oracledb"): "_oracle:OracleBackend",
    ("oracle", "cx_oracle"): "_oracle:OracleBackend",
}
# The smallest result cap accepted: below it, ordinary one-row answers would not fit.
_MIN_RESULT_BYTES = 1024


class ReadOnlyExecutor:
    """Run SQL so that the database itself refuses to write: the second, independent safety layer.

    The validator (:mod:`sqlagent.safety`) refuses writes on the syntax tree; this layer holds even
    if the validator were bypassed or wrong. Every :meth:`run` takes a pooled connection and
    makes it read-only *at the database*: SQLite through a ``mode=ro`` open, ``query_only``, an
    authorizer and a progress-handler deadline; PostgreSQL through a ``READ ONLY`` transaction
    with ``statement_timeout`` and the one-statement extended protocol; MySQL/MariaDB through a
    read-only session and transaction with ``max_statement_time``/``max_execution_time``;
    Oracle (untested) through ``SET TRANSACTION READ ONLY`` and ``call_timeout``. Each backend's
    module docstring spells out its guarantees and what it does *not* guarantee. The transaction
    is always rolled back, never committed.

    Where the engine can tell, a statement that is not a plain query is refused *before it runs*:
    PostgreSQL checks that it can be prepared as a query (``COPY``, ``SET``, ``DO``, ``CALL``,
    ``SELECT ... INTO`` cannot) and describes a result; MySQL/MariaDB prepare it and must report a
    result set (``SELECT ... INTO OUTFILE``, ``SET GLOBAL``, ``DO``, ``KILL`` report none). Session
    state a query can leave behind a rollback is cleared or the connection discarded (advisory
    locks on PostgreSQL, ``GET_LOCK`` locks and user variables on MySQL/MariaDB).

    ``run`` returns at most ``max_rows`` rows (only ``max_rows + 1`` are ever fetched, to tell
    whether the result was ``truncated``) holding at most about ``max_result_bytes`` bytes in
    memory: rows are counted as they are fetched and the run stops once the cap is passed, and a
    single huge value is refused by the engine where it allows (SQLite's
    ``SQLITE_LIMIT_LENGTH``, a per-row size check on the PostgreSQL server; MariaDB returns
    ``NULL`` for a function result above ``max_allowed_packet``). It raises, from the one error
    tree, :class:`~sqlagent.errors.ReadOnlyViolationError` when the database refused a write or
    a statement that is not a query, :class:`~sqlagent.errors.QueryTimeoutError` when the
    statement ran past ``timeout_s`` (a result that arrives after the deadline counts as a
    timeout too), :class:`~sqlagent.errors.ResultTooLargeError` when the result passed
    ``max_result_bytes``, or :class:`~sqlagent.errors.ExecutionError` with the database's
    one-line message for any other failure. After any failure the executor stays usable: the
    connection is rolled back, or discarded when that is not certain to have worked.

    ``engine_or_url`` is an Engine or a URL. From a URL the executor builds its engine and
    disposes of it on :meth:`close`: SQLite files are opened read-only and must exist (a missing
    file is a :class:`~sqlagent.errors.ConfigError`, never a new empty database); a URL naming no
    driver gets psycopg, PyMySQL or python-oracledb. A borrowed engine is not disposed, but its
    SQLite connections stay ``query_only`` (and unable to ``ATTACH``) for good: give the executor
    an engine of its own.
    Runs may come from several threads at once (each takes its own pooled connection).

    The strongest guarantee is still a database account that can only read: the executor stops
    writes to data and non-queries, not every side effect a query run by a privileged account
    could cause (reading server files, signalling other sessions).
    :func:`~sqlagent.execution.check_privileges` tells whether the login is such an account.
    """

    def __init__(
        self,
        engine_or_url: Engine | str,
        *,
        timeout_s: float = 10.0,
        max_rows: int = 1000,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    ) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ConfigError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigError(f"max_rows must be a positive integer, not {max_rows!r}")
        if (
            isinstance(max_result_bytes, bool)
            or not isinstance(max_result_bytes, int)
            or max_result_bytes < _MIN_RESULT_BYTES
        ):
            raise ConfigError(
                f"max_result_bytes must be an integer of at least {_MIN_RESULT_BYTES}, "
                f"not {max_result_bytes!r}"
            )
        self._limits = Limits(
            timeout_s=float(timeout_s), max_rows=max_rows, max_result_bytes=max_result_bytes
        )
        self._owned = isinstance(engine_or_url, str)
        engine = _engine_for(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
        try:
            self._backend = _backend_for(engine)
        except BaseException:
            if self._owned:
                engine.dispose()
            raise
        self._engine: Engine | None = engine

    @property
    def timeout_s(self) -> float:
        return self._limits.timeout_s

    @property
    def max_rows(self) -> int:
        return self._limits.max_rows

    @property
    def max_result_bytes(self) -> int:
        return self._limits.max_result_bytes

    @property
    def engine(self) -> Engine:
        """The engine runs go through (for read-only introspection such as
        :func:`~sqlagent.execution.check_privileges`); raises once the executor is closed."""
        if self._engine is None:
            raise ExecutionError("the executor is closed")
        return self._engine

    def server_dialect(self) -> str:
        """The dialect of the server behind the engine: ``"mariadb"`` for a MariaDB server even
        on a ``mysql+`` URL (SQLAlchemy tells it from the server's version string, read on the
        first connection, which this may open), else the SQLAlchemy dialect name."""
        engine = self.engine
        dialect = engine.dialect
        if dialect.name not in ("mysql", "mariadb"):
            return str(dialect.name)
        if dialect.server_version_info is None:  # not connected yet: connect once
            try:
                engine.raw_connection().close()
            except (sa.exc.DBAPIError, dialect.loaded_dbapi.Error) as exc:
                cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
                raise ExecutionError(f"cannot connect to the database: {one_line(cause)}") from exc
        return "mariadb" if getattr(dialect, "is_mariadb", False) else "mysql"

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name of the engine (``sqlite``, ``postgresql`` ...)."""
        if self._engine is None:
            raise ExecutionError("the executor is closed")
        return str(self._engine.dialect.name)

    def run(self, sql: str) -> ExecutionResult:
        """Run one statement read-only; see the class docstring for every guarantee."""
        if self._engine is None:
            raise ExecutionError("the executor is closed")
        try:
            pooled = self._engine.raw_connection()
        except (sa.exc.DBAPIError, self._engine.dialect.loaded_dbapi.Error) as exc:
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
            raise ExecutionError(f"cannot connect to the database: {one_line(cause)}") from exc
        session = Session()
        healthy = False
        start = time.perf_counter()
        try:
            fetched = self._backend.run(pooled.dbapi_connection, sql, self._limits, session)
            elapsed = time.perf_counter() - start
            healthy = not session.spoiled
        except ExecutionError:
            healthy = not session.spoiled
            raise
        finally:
            if not healthy:  # also on an unexpected exception: the connection's state is unknown
                pooled.invalidate()
            pooled.close()
        if elapsed >= self._limits.timeout_s:
            raise QueryTimeoutError(timeout_message(self._limits))
        return ExecutionResult(
            columns=fetched.columns,
            rows=fetched.rows,
            row_count=len(fetched.rows),
            truncated=fetched.truncated,
            elapsed_ms=elapsed * 1000,
        )

    def close(self) -> None:
        """Release the engine if the executor built it; further runs raise. Idempotent."""
        engine, self._engine = self._engine, None
        if engine is not None and self._owned:
            engine.dispose()

    def __enter__(self) -> ReadOnlyExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._engine is None else self._engine.dialect.name
        return (
            f"ReadOnlyExecutor({state}, timeout_s={self._limits.timeout_s:g}, "
            f"max_rows={self._limits.max_rows}, max_result_bytes={self._limits.max_result_bytes})"
        )


def executor_for(
    url_or_engine: Engine | str,
    *,
    timeout_s: float = 10.0,
    max_rows: int = 1000,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> ReadOnlyExecutor:
    """The executor for a database URL or Engine (a :class:`ReadOnlyExecutor`)."""
    return ReadOnlyExecutor(
        url_or_engine, timeout_s=timeout_s, max_rows=max_rows, max_result_bytes=max_result_bytes
    )


def _engine_for(url_text: str) -> Engine:
    url = database_url(url_text)
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            from sqlagent.execution._sqlite import sqlite_engine

            return sqlite_engine(url)
        return sa.create_engine(url)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigError(
            f"the database driver for {url.drivername!r} is not installed "
            f"(pip install 'sqlagent[{_EXTRAS.get(backend, backend)}]'): {exc}"
        ) from exc
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid database URL {url_text!r}: {one_line(exc)}") from exc


_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "oracle": "oracle"}


def _backend_for(engine: Engine) -> Backend:
    dialect, driver = str(engine.dialect.name), str(engine.dialect.driver)
    target = _BACKENDS.get((dialect, driver))
    if target is None:
        supported = ", ".join(f"{d}+{v}" for d, v in _BACKENDS)
        raise ConfigError(f"no read-only executor for {dialect}+{driver}; supported: {supported}")
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(f"sqlagent.execution.{module_name}")
    backend: Any = getattr(module, class_name)
    result: Backend = backend(engine)
    return result
