"""The audit chain in a SQL database: one hash chain in one table, shared by every writer.

Two tables (names configurable): the log, one row per event, and a one-row *head* table that
holds the chain's last ``seq`` and ``hash`` plus the schema version. A write is one transaction:
lock the head row (``SELECT ... FOR UPDATE`` on PostgreSQL and MariaDB/MySQL; ``BEGIN
IMMEDIATE`` on SQLite, which locks the whole database), seal the event after the head, insert
the row, move the head, commit. The database therefore serializes writers from any number of
processes and hosts, and a write that fails anywhere (a dropped connection, a crash, a refused
insert) is rolled back whole: the log never holds half a chain step. ``seq`` is the log's
primary key, so even a writer that skipped the lock could not fork the chain.

Each row stores the sealed record as the very text a JSONL line holds (:func:`seal_record`,
:func:`canonical_json`: one definition for both stores), plus ``seq``/``prev``/``hash`` and
the event's fields as plain columns for queries. The record is what the hash covers; the
verifier also checks every column against it, so editing a column is found like editing the
record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import URL, Connection, Engine
from sqlalchemy.dialects import mysql

from sqlagent.audit._chain import (
    GENESIS_HASH,
    ROWS,
    ChainReport,
    canonical_json,
    seal_record,
    verify_records,
)
from sqlagent.audit._events import AuditEvent
from sqlagent.dialects import database_url, sqlite_file
from sqlagent.errors import AuditError, ConfigError

__all__ = [
    "DEFAULT_TABLE",
    "SCHEMA_VERSION",
    "SQLAuditSink",
    "probe_sql_target",
    "verify_sql_chain",
]

DEFAULT_TABLE: Final = "sqlagent_audit"
"""The log table's default name; the head table defaults to the log's name plus ``_head``."""

SCHEMA_VERSION: Final = 1
"""Stored in the head row; a sink or verifier refuses a chain with another version."""

#: URL query keys that name the tables (removed before the URL reaches the driver).
_TABLE_KEY: Final = "audit_table"
_HEAD_TABLE_KEY: Final = "audit_head_table"

_SERVERS = frozenset({"postgresql", "mysql", "mariadb"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")
_CONNECT_TIMEOUT_S = 10
_SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_BATCH = 1000
_SETUP_LOCK_TIMEOUT_S = 30
#: How often a write is tried when the database rolls it back for a lock conflict.
_WRITE_ATTEMPTS = 4
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock
_TRANSIENT_MYSQL_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock

_LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
# Event fields kept as plain columns, beside the sealed record: bounded strings are cut to their
# column's length (so no database truncates or refuses them differently), lists and dicts are
# canonical JSON text (sorted keys: the same text whatever the event's key order). The verifier
# derives the same values from the record and compares.
_STRINGS: Final = {
    "request_id": 255,
    "created": 64,
    "name": 64,
    "verdict": 32,
    "role": 255,
    "policy_mode": 32,
    "dialect": 64,
}
_TEXTS: Final = ("question", "sql_in", "sql_out", "error")
_JSONS: Final = ("violations", "tables", "columns", "masked_columns", "extra")
_CHAIN_COLUMNS: Final = frozenset({"seq", "prev", "hash", "record"})
_HEAD_COLUMNS: Final = frozenset({"id", "seq", "hash", "schema_version"})
_HEAD_ID: Final = 1


@dataclass(frozen=True, slots=True)
class _Tables:
    log: sa.Table
    head: sa.Table


def _tables(log_name: str, head_name: str) -> _Tables:
    for name in (log_name, head_name):
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"audit table name {name!r} must be a letter or underscore followed by up to "
                "47 letters, digits or underscores"
            )
    if log_name == head_name:
        raise ConfigError(f"the audit log and head tables need two names, not {log_name!r} twice")
    metadata = sa.MetaData()
    log = sa.Table(
        log_name,
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("prev", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        *(sa.Column(name, sa.String(size)) for name, size in _STRINGS.items()),
        *(sa.Column(name, _LONG_TEXT) for name in _TEXTS + _JSONS),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("latency_ms", sa.Double),
        sa.Column("record", _LONG_TEXT, nullable=False),
        sa.Index(f"ix_{log_name}_request_id", "request_id"),
        sa.Index(f"ix_{log_name}_created", "created"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    head = sa.Table(
        head_name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    return _Tables(log, head)


def _text(value: Any, size: int | None = None) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else canonical_json(value)
    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL; the record can
    return text if size is None else text[:size]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _columns(body: Mapping[str, Any]) -> dict[str, Any]:
    """The plain columns of a sealed record (the same function writes and verifies them)."""
    values: dict[str, Any] = {}
    for name, size in _STRINGS.items():
        values[name] = _text(body.get(name), size)
    for name in _TEXTS:
        values[name] = _text(body.get(name))
    for name in _JSONS:
        values[name] = canonical_json(body[name]) if name in body else None
    count = body.get("row_count")
    in_range = isinstance(count, int) and not isinstance(count, bool) and abs(count) < 2**63
    values["row_count"] = count if in_range else None
    values["latency_ms"] = _number(body.get("latency_ms"))
    return values


def _split_url(target: str | URL) -> tuple[URL, str | None, str | None]:
    """The URL without the table-name keys, and the names it gave (``None`` when absent)."""
    try:
        url = sa.make_url(target)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigError(f"not a database URL: {_safe(target)!r} ({exc})") from exc
    names: list[str | None] = []
    for key in (_TABLE_KEY, _HEAD_TABLE_KEY):
        value = url.query.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"the audit URL gives {key} more than once")
        names.append(value)
    return url.difference_update_query([_TABLE_KEY, _HEAD_TABLE_KEY]), names[0], names[1]


def _safe(target: str | URL) -> str:
    try:
        return sa.make_url(target).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<unparseable URL>" if isinstance(target, str) and "@" in target else str(target)


def _engine_for(url: URL, *, connect_timeout: int, read_only: bool) -> Engine:
    """An engine with ``pool_pre_ping``, a connect timeout, and a transactional isolation level
    (READ COMMITTED on the servers: the head row's lock makes the write serial). ``read_only``
    opens a SQLite file with ``mode=ro``, so that reading never creates or changes it."""
    url = database_url(url)  # the project's driver for a URL that names none
    backend = url.get_backend_name()
    file = sqlite_file(url)
    if read_only and file is not None:
        url = url.set(
            database=f"file:{Path(file).resolve()}?mode=ro", query={**url.query, "uri": "true"}
        )
    options: dict[str, Any] = {"pool_pre_ping": True}
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        if "timeout" not in url.query:
            connect_args["timeout"] = _SQLITE_BUSY_TIMEOUT_S
    elif backend in _SERVERS:
        options["isolation_level"] = "READ COMMITTED"
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = connect_timeout
    try:
        return sa.create_engine(url, connect_args=connect_args, **options)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigError(
            f"the database driver for {url.drivername!r} is not installed: {exc}"
        ) from exc


@dataclass(slots=True)
class _Target:
    engine: Engine
    owned: bool
    tables: _Tables
    url: URL  # as given, without the table keys (the engine's may be a read-only form)

    @property
    def where(self) -> str:
        url = self.url.render_as_string(hide_password=True)
        return f"{url} (table {self.tables.log.name})"

    def close(self) -> None:
        if self.owned:
            self.engine.dispose()

    @contextlib.contextmanager
    def errors(self, failed: str, *also: type[Exception]) -> Iterator[None]:
        """Errors inside as one :class:`~sqlagent.errors.AuditError` naming this target: an
        ``AuditError`` gets the target's name in front, a database error (or one of ``also``)
        becomes ``<target>: <failed>: <the driver's message>``."""
        caught: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError, *also)
        try:
            yield
        except AuditError as exc:
            raise AuditError(f"{self.where}: {exc}") from exc
        except caught as exc:
            raise AuditError(f"{self.where}: {failed}: {_reason(exc)}") from exc


def _target(
    engine_or_url: Engine | str | URL,
    table_name: str | None,
    head_table_name: str | None,
    *,
    connect_timeout: int = _CONNECT_TIMEOUT_S,
    read_only: bool = False,
) -> _Target:
    """Resolve the tables (argument, else URL query, else default) and the engine."""
    if isinstance(engine_or_url, Engine):
        tables = _tables(
            table_name or DEFAULT_TABLE, head_table_name or f"{table_name or DEFAULT_TABLE}_head"
        )
        return _Target(engine_or_url, False, tables, engine_or_url.url)
    url, url_table, url_head = _split_url(engine_or_url)
    log_name = table_name or url_table or DEFAULT_TABLE
    tables = _tables(log_name, head_table_name or url_head or f"{log_name}_head")
    engine = _engine_for(url, connect_timeout=connect_timeout, read_only=read_only)
    return _Target(engine, True, tables, url)


def _reason(exc: BaseException) -> str:
    """One line for a database error: the driver's own message, without SQLAlchemy's footer."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _inspect(conn: Connection, tables: _Tables) -> tuple[bool, bool]:
    """Whether the log and head tables exist; raises if one exists with another shape."""
    inspector = sa.inspect(conn)
    found = []
    for table, needed in ((tables.log, _CHAIN_COLUMNS), (tables.head, _HEAD_COLUMNS)):
        exists = inspector.has_table(table.name)
        if exists:
            names = {column["name"].lower() for column in inspector.get_columns(table.name)}
            missing = sorted(needed - names)
            if missing:
                raise AuditError(
                    f"table {table.name} exists but is not a sqlagent audit chain table (it has "
                    f"no {', '.join(missing)} column): a table written by an older, unchained "
                    f"SQLAuditSink? Rename it, or name other tables with ?{_TABLE_KEY}=NAME"
                )
        found.append(exists)
    return found[0], found[1]


def _head_row(conn: Connection, tables: _Tables) -> sa.Row[int, str, int] | None:
    """The chain-head row (``seq``, ``hash``, ``schema_version``), ``None`` when there is none;
    read without a lock (a write locks it in :meth:`SQLAuditSink._append`)."""
    head = tables.head
    return conn.execute(
        sa.select(head.c.seq, head.c.hash, head.c.schema_version).where(head.c.id == _HEAD_ID)
    ).one_or_none()


def _has_rows(conn: Connection, tables: _Tables) -> bool:
    return conn.execute(sa.select(tables.log.c.seq).limit(1)).first() is not None


def _check_version(version: object, tables: _Tables) -> None:
    if version != SCHEMA_VERSION:
        raise AuditError(
            f"the audit chain in {tables.log.name} has schema version {version}; this sqlagent "
            f"reads and writes version {SCHEMA_VERSION}"
        )


def _create_missing(conn: Connection, tables: _Tables) -> None:
    """Create the missing tables and the head row (inside the caller's transaction and lock)."""
    has_log, has_head = _inspect(conn, tables)
    missing = [t for t, has in ((tables.log, has_log), (tables.head, has_head)) if not has]
    if missing:
        tables.log.metadata.create_all(conn, tables=missing, checkfirst=False)
    head = tables.head
    row = _head_row(conn, tables)
    if row is not None:
        _check_version(row.schema_version, tables)
        return
    if _has_rows(conn, tables):
        raise AuditError(
            f"the chain-head row of {head.name} is missing while {tables.log.name} has rows: "
            "refusing to start a second chain (check the log with `sqlagent audit verify`)"
        )
    conn.execute(
        head.insert().values(id=_HEAD_ID, seq=-1, hash=GENESIS_HASH, schema_version=SCHEMA_VERSION)
    )


def _setup_lock_name(database: str | None, table: str) -> str:
    """The name of the server-wide lock that serializes setting up a chain's tables: a MySQL
    user lock's name (at most 64 characters)."""
    where = f"{database or ''}.{table}"
    return "sqlagent_audit_setup:" + hashlib.sha256(where.encode()).hexdigest()[:40]


def _advisory_key(name: str) -> int:
    """The PostgreSQL advisory-lock key (a signed 64-bit number) for a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _ensure_schema(conn: Connection, tables: _Tables) -> None:
    """Create what is missing and the head row, holding a lock named after the tables.

    Processes that start together take turns: each inspects, creates and inserts only once the
    one before it has committed, so none acts on half of another's work (a log table still
    getting its indexes, a head table without its row), and no DDL runs beside the first writers
    (on MariaDB a writer's row lock and another's metadata lock can wait on each other where
    no deadlock detector looks; a CI run once saw a writer time out on the head row while four
    processes set up one chain together). PostgreSQL takes a transaction-level advisory lock
    (its DDL is transactional), MariaDB/MySQL a ``GET_LOCK`` user lock around the DDL (which
    commits implicitly), SQLite ``BEGIN IMMEDIATE`` (the database's write lock). Another
    engine's dialect gets no lock and retries a lost race.
    """
    dialect = conn.dialect.name
    name = _setup_lock_name(conn.engine.url.database, tables.log.name)
    if dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            _create_missing(conn, tables)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    elif dialect == "postgresql":
        with conn.begin():
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_advisory_key(name))))
            _create_missing(conn, tables)
    elif dialect in _SERVERS:
        got = conn.execute(sa.select(sa.func.get_lock(name, _SETUP_LOCK_TIMEOUT_S))).scalar()
        conn.commit()
        if got != 1:
            raise AuditError(
                f"another process held the audit setup lock {name} for "
                f"{_SETUP_LOCK_TIMEOUT_S} s (a stuck sink setting up {tables.log.name}?)"
            )
        try:
            with conn.begin():
                _create_missing(conn, tables)
        finally:
            try:
                conn.execute(sa.select(sa.func.release_lock(name)))
                conn.commit()
            except sa.exc.SQLAlchemyError:  # the server frees a closed session's user locks
                conn.invalidate()
    else:
        last: sa.exc.DBAPIError | None = None
        for _ in range(3):
            try:
                with conn.begin():
                    _create_missing(conn, tables)
                return
            except sa.exc.DBAPIError as exc:  # another process created a table or the row first
                last = exc
        assert last is not None
        raise last


def _transient(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database rolled a write back for a lock conflict that a retry can win: a
    deadlock, a lock wait timeout, a serialization failure (never a lost connection)."""
    if exc.connection_invalidated:
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in _TRANSIENT_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _TRANSIENT_MYSQL_CODES


class SQLAuditSink:
    """Append events to a hash chain in a SQL database; any number of sinks, threads and
    processes may share it.

    Accepts an :class:`~sqlalchemy.Engine` or a URL (``postgresql://``, ``mysql://``/
    ``mariadb://``, ``sqlite:///file``; a URL naming no driver gets psycopg or PyMySQL). The
    tables are ``table_name`` and ``head_table_name``, else the URL's ``audit_table`` and
    ``audit_head_table`` query keys, else ``sqlagent_audit`` and ``<table>_head``. Nothing is
    done at construction: the first ``emit`` connects and creates missing tables (with the
    schema version in the head row), so a sink can be built while its database is down.

    Guarantees: ``emit`` returns only once its event is committed as the chain's next row, or
    raises :class:`~sqlagent.errors.AuditError` (database unreachable, schema refused, the write
    rolled back) and leaves the chain as it was. A write the database rolls back for a lock
    conflict (deadlock, lock wait timeout, serialization failure) is tried again, from a fresh
    read of the head, up to four times in all. The first event of each sink sets up the tables
    under a lock named after them, one process at a time. A URL's engine pools connections with
    ``pool_pre_ping``, survives ``fork`` (the child opens its own connections) and is disposed
    in :meth:`close`; an :class:`~sqlalchemy.Engine` passed in stays the caller's.
    """

    def __init__(
        self,
        engine_or_url: Engine | str | URL,
        table_name: str | None = None,
        *,
        head_table_name: str | None = None,
    ) -> None:
        self._target = _target(engine_or_url, table_name, head_table_name)
        self.engine = self._target.engine
        self.table = self._target.tables.log
        self.head_table = self._target.tables.head
        self._lock = threading.Lock()
        self._ready = False
        self._closed = False
        self._pid = os.getpid()

    def emit(self, event: AuditEvent) -> None:
        if self._closed:
            raise AuditError(f"the audit table {self.table.name!r} sink is closed")
        fields = event.to_dict()
        failed = f"could not record audit event {event.request_id}"
        with self._target.errors(failed, UnicodeError):
            self._after_fork()
            with self.engine.connect() as conn:
                if not self._target.owned and self.engine.dialect.name != "sqlite":
                    conn.execution_options(isolation_level="READ COMMITTED")
                if not self._ready:
                    with self._lock:
                        if not self._ready:
                            _ensure_schema(conn, self._target.tables)
                            self._ready = True
                for attempt in range(1, _WRITE_ATTEMPTS + 1):
                    try:
                        self._append(conn, fields)
                        break
                    except sa.exc.DBAPIError as exc:
                        if attempt == _WRITE_ATTEMPTS or not _transient(exc):
                            raise
                        conn.rollback()  # all of it (MariaDB keeps a timed-out transaction)

    def _append(self, conn: Connection, fields: dict[str, Any]) -> None:
        head, log = self.head_table, self.table
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, taken before reading
        last = conn.execute(
            sa.select(head.c.seq, head.c.hash).where(head.c.id == _HEAD_ID).with_for_update()
        ).one_or_none()
        if last is None:
            raise AuditError(f"the chain-head row of {head.name} is missing")
        seq = last.seq + 1
        body = seal_record(fields, seq, last.hash)
        conn.execute(
            log.insert().values(
                seq=seq,
                prev=last.hash,
                hash=body["hash"],
                record=canonical_json(body),
                **_columns(body),
            )
        )
        moved = conn.execute(
            sa.update(head)
            .where(head.c.id == _HEAD_ID, head.c.seq == last.seq, head.c.hash == last.hash)
            .values(seq=seq, hash=body["hash"])
        )
        if moved.rowcount != 1:  # cannot happen under the lock; never commit a forked chain
            raise AuditError(f"the chain head in {head.name} moved during the write")
        conn.commit()

    def _after_fork(self) -> None:
        if os.getpid() != self._pid:
            if self._target.owned:  # the parent's pooled connections are not ours to use
                self.engine.dispose(close=False)
            self._pid = os.getpid()

    def close(self) -> None:
        if not self._closed:
            self._target.close()
        self._closed = True

    def __enter__(self) -> SQLAuditSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SQLAuditSink({self._target.url.render_as_string(hide_password=True)!r}, "
            f"table_name={self.table.name!r}, head_table_name={self.head_table.name!r})"
        )


def _begin_snapshot(conn: Connection) -> None:
    """Make the following reads one consistent snapshot (head row and log rows agree)."""
    name = conn.dialect.name
    if name == "sqlite":
        conn.exec_driver_sql("BEGIN")
    elif name in _SERVERS:
        conn.execution_options(isolation_level="REPEATABLE READ")


def _mismatch(row: Mapping[Any, Any], text: str) -> str | None:
    """Why a row's columns contradict its record (``None`` when they agree or it is not JSON)."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    expected = _columns(body)
    expected["prev"], expected["hash"] = body.get("prev"), body.get("hash")
    wrong = []
    for name, want in expected.items():
        got = row[name]
        if isinstance(want, float) and isinstance(got, int | float):
            same = float(got) == want
        else:
            same = got == want
        if not same:
            wrong.append(repr(name))
    if not wrong:
        return None
    what = f"column {wrong[0]} does" if len(wrong) == 1 else f"columns {', '.join(wrong)} do"
    return f"{what} not match the row's sealed record: changed after it was written"


def _rows(result: Iterable[sa.Row[Any]]) -> Iterator[tuple[int, bytes, str | None]]:
    for row in result:
        values = row._mapping
        text = values["record"] or ""
        yield int(values["seq"]), text.encode("utf-8"), _mismatch(values, text)


def verify_sql_chain(
    engine_or_url: Engine | str | URL,
    *,
    table_name: str | None = None,
    head_table_name: str | None = None,
    expected_head: str | None = None,
) -> ChainReport:
    """Verify the chain a :class:`SQLAuditSink` wrote, the way :func:`verify_chain` checks a file.

    Rows are read in ``seq`` order, in one consistent snapshot, and classified exactly like the
    lines of a file (edited, inserted, reordered, dropped, broken_link, truncated, malformed);
    a problem's ``line`` is the row's ``seq`` column. Beyond a file's checks: a plain column
    that contradicts the row's sealed record makes the row ``edited``; the head table must name
    the last row (a head no row holds: ``truncated``, rows were removed from the end; rows
    after it: ``inserted``, not written by a sink). Someone who deletes the last rows *and*
    moves the head back leaves a valid, shorter chain: pass a head recorded elsewhere as
    ``expected_head`` to catch that. Tables are named as for :class:`SQLAuditSink`.

    Raises :class:`~sqlagent.errors.AuditError` when the database cannot be read, the log
    table does not exist or has another schema version; :class:`~sqlagent.errors.ConfigError`
    for an unparseable URL or table name.
    """
    target = _target(engine_or_url, table_name, head_table_name, read_only=True)
    tables = target.tables
    try:
        with target.errors("cannot read the audit chain"), target.engine.connect() as conn:
            _begin_snapshot(conn)
            has_log, has_head = _inspect(conn, tables)
            if not has_log:
                raise AuditError(f"there is no audit chain table {tables.log.name}")
            head = _head_row(conn, tables) if has_head else None
            if head is not None:
                _check_version(head.schema_version, tables)
            where = f"the head table {tables.head.name}"
            result = conn.execution_options(yield_per=_READ_BATCH).execute(
                sa.select(tables.log).order_by(tables.log.c.seq)
            )
            report = verify_records(
                _rows(result),
                unit=ROWS,
                expected_head=expected_head,
                pinned_head=(None if head is None else head.hash, where),
            )
            conn.rollback()
    finally:
        target.close()
    return report


def probe_sql_target(engine_or_url: Engine | str | URL, *, connect_timeout: int = 5) -> str:
    """Connect and check the tables, changing nothing; return a one-line description.

    A SQLite file that does not exist yet is not created: its folder must be writable. Raises
    :class:`~sqlagent.errors.AuditError` when the database cannot be reached or holds tables a
    sink would refuse, :class:`~sqlagent.errors.ConfigError` for a bad URL.
    """
    target = _target(engine_or_url, None, None, connect_timeout=connect_timeout, read_only=True)
    tables = target.tables
    file = sqlite_file(target.url)
    if file is not None:
        path = Path(file)
        if not path.exists():  # not an error: the first event creates it
            target.close()
            folder = path.parent
            if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
                raise AuditError(f"{target.where}: {folder} is not a writable folder")
            return f"{target.where}: the database file and chain tables will be created"
    try:
        with target.errors("not reachable"), target.engine.connect() as conn:
            has_log, has_head = _inspect(conn, tables)
            if not has_head:
                if has_log and _has_rows(conn, tables):
                    raise AuditError(f"the head table {tables.head.name} is missing")
                return f"{target.where}: reachable; the chain tables will be created"
            head = _head_row(conn, tables)
            if head is None:
                if _has_rows(conn, tables):
                    raise AuditError(f"the head table {tables.head.name} has no head row")
                return f"{target.where}: reachable; the chain starts with the first event"
            _check_version(head.schema_version, tables)
            return f"{target.where}: reachable; {head.seq + 1} events in the chain"
    finally:
        target.close()
