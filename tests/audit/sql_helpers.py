"""Helpers for the SQL chain tests: a chain's tables on a real database, and process workers.

The workers are module-level functions so that ``multiprocessing`` (spawn) can import them.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sqlagent.audit import AuditEvent, SQLAuditSink
from tests.dbservers import execute_sql


@dataclass(frozen=True)
class Chain:
    """Where one test's chain lives: ``url`` names its tables, ``plain`` is for tampering."""

    kind: str
    url: str
    plain: str
    table: str
    head: str

    def execute(self, statement: str, **params: Any) -> None:
        execute_sql(self.plain, statement, **params)

    def rows(self) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.plain)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(f"SELECT * FROM {self.table} ORDER BY seq"))
                return [dict(row) for row in result.mappings()]
        finally:
            engine.dispose()

    def head_row(self) -> dict[str, Any]:
        engine = sa.create_engine(self.plain)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(f"SELECT * FROM {self.head}"))
                [row] = result.mappings().all()
                return dict(row)
        finally:
            engine.dispose()

    def swap(self, first: int, second: int) -> None:
        """Exchange everything but the ``seq`` key between two rows."""
        rows = {row["seq"]: row for row in self.rows()}
        columns = [name for name in rows[first] if name != "seq"]
        assignments = ", ".join(f"{name} = :{name}" for name in columns)
        engine = sa.create_engine(self.plain)
        try:
            with engine.begin() as conn:
                for target, source in ((first, second), (second, first)):
                    values = {name: rows[source][name] for name in columns}
                    conn.execute(
                        sa.text(f"UPDATE {self.table} SET {assignments} WHERE seq = :target"),
                        {**values, "target": target},
                    )
        finally:
            engine.dispose()


def new_chain(kind: str, database_url: str) -> Chain:
    """Fresh table names in ``database_url`` (created by the sink on its first event)."""
    table = f"a_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(database_url)
    named = url.update_query_dict({"audit_table": table})
    return Chain(
        kind=kind,
        url=named.render_as_string(hide_password=False),
        plain=url.render_as_string(hide_password=False),
        table=table,
        head=f"{table}_head",
    )


def emit_all(url: str, events: Sequence[AuditEvent]) -> None:
    with SQLAuditSink(url) as sink:
        for event in events:
            sink.emit(event)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def append_from_process(url: str, worker: int, count: int) -> None:
    """A writer process: ``count`` events tagged with the worker's number."""
    with SQLAuditSink(url) as sink:
        for i in range(count):
            sink.emit(AuditEvent(name="validate", verdict="allowed", extra={"w": worker, "i": i}))


def die_after_insert(url: str, table: str) -> None:
    """A writer process that dies (``os._exit``) right after its INSERT reached the database,
    before the head moves and the transaction commits: the database must roll it back."""
    sink = SQLAuditSink(url)

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(f"INSERT INTO {table} "):
            os._exit(3)

    sa.event.listen(sink.engine, "after_cursor_execute", after)
    sink.emit(AuditEvent(name="validate", verdict="allowed", sql_in="never committed"))
