"""Real database servers for tests: PostgreSQL and MariaDB on 127.0.0.1, loaded with demo data.

Tests that need a server skip with the reason when it does not answer. The URLs can be changed
with SQLAGENT_TEST_PG_URL / SQLAGENT_TEST_MYSQL_URL (an admin login on the server's default
database); a dedicated ``sqlagent_test`` database is (re)created so nothing else is touched.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "SQLAGENT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN_URL = os.environ.get("SQLAGENT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
TEST_DB = "sqlagent_test"
# Appended to every database name the tests create, so that several test runs can share one
# server at once (e.g. SQLAGENT_TEST_DB_SUFFIX=_w1).
DB_SUFFIX = os.environ.get("SQLAGENT_TEST_DB_SUFFIX", "")

_TYPES = {"INTEGER": sa.BigInteger, "REAL": sa.Float, "TEXT": sa.String(200)}


def _server_or_skip(url: str, what: str) -> sa.Engine:
    args = {"connect_timeout": 3}
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args=args)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or connection error means: no server here
        engine.dispose()
        pytest.skip(f"{what} server not reachable at {url}: {type(exc).__name__}")
    return engine


def _admin(kind: str) -> tuple[sa.Engine, str]:
    """An autocommit admin engine for ``kind`` (skipping when no server answers) and the
    statement prefix that drops a database even while sessions are connected to it."""
    if kind == "postgres":
        return _server_or_skip(
            PG_ADMIN_URL, "PostgreSQL"
        ), "DROP DATABASE IF EXISTS {} WITH (FORCE)"
    return _server_or_skip(MYSQL_ADMIN_URL, "MariaDB/MySQL"), "DROP DATABASE IF EXISTS {}"


def create_test_database(kind: str, name: str = TEST_DB) -> str:
    """(Re)create database ``name`` (plus ``DB_SUFFIX``) on a server and return its URL."""
    name += DB_SUFFIX
    admin, drop = _admin(kind)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(drop.format(name)))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        return admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin.dispose()


def drop_test_database(kind: str, name: str = TEST_DB) -> None:
    name += DB_SUFFIX
    admin, drop = _admin(kind)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(drop.format(name)))
    finally:
        admin.dispose()


@contextlib.contextmanager
def server_database(
    kind: str, name: str = TEST_DB, fill: Callable[[str], object] | None = None
) -> Iterator[str]:
    """A fresh database ``name`` on the ``kind`` server ("postgres" or "mysql"), filled by
    ``fill(url)``, for the block; dropped after it. Skips when the server does not answer.

    The one shape of every module's server fixture::

        @pytest.fixture(scope="module")
        def pg_url() -> Iterator[str]:
            with server_database("postgres", "sqlagent_x_test", fill=_tables) as url:
                yield url
    """
    url = create_test_database(kind, name)
    try:
        if fill is not None:
            fill(url)
        yield url
    finally:
        drop_test_database(kind, name)


def execute_sql(url: str, *statements: str, **params: Any) -> None:
    """Run ``statements`` (bound to ``params``) in one transaction on the database at ``url``,
    through an engine of its own."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def copy_sqlite(sqlite_path: Path, url: str) -> None:
    """Copy every table of a SQLite file (columns and rows) into the database at ``url``."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    rows: dict[str, list[tuple[object, ...]]] = {}
    with closing(sqlite3.connect(sqlite_path)) as src:
        names = [r[0] for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]  # fmt: skip
        for name in names:
            info = src.execute(f'PRAGMA table_info("{name}")').fetchall()
            cols = [sa.Column(c[1], _TYPES.get(c[2].upper(), sa.String(200))) for c in info]
            sa.Table(name, metadata, *cols)
            rows[name] = src.execute(f'SELECT * FROM "{name}"').fetchall()
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                data = [dict(zip(table.columns.keys(), r, strict=True)) for r in rows[table.name]]
                if data:
                    conn.execute(table.insert(), data)
    finally:
        engine.dispose()


def create_items(url: str, names: list[str]) -> None:
    """Create table ``items (id, name)`` in the database at ``url``, one row per name (ids from 0):
    the small table the executor's tests read, write and overflow."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50))"))
            conn.execute(
                sa.text("INSERT INTO items VALUES (:id, :name)"),
                [{"id": i, "name": name} for i, name in enumerate(names)],
            )
    finally:
        engine.dispose()
