"""Least-privilege reader logins on the test servers, made the way docs/databases.md shows.

Every login name ends with ``DB_SUFFIX`` so parallel test runs on one server do not collide;
:func:`drop_reader` removes it again. Both servers here trust local logins, so readers have no
password.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.dbservers import DB_SUFFIX, MYSQL_ADMIN_URL, PG_ADMIN_URL


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_reader(kind: str, database_url: str, name: str, *, extra: tuple[str, ...] = ()) -> str:
    """Create login ``name + DB_SUFFIX`` that may only read the database of ``database_url``
    (run ``extra`` statements after, as the admin, in that database, with ``{user}`` filled in);
    return the URL that logs in as it."""
    user = name + DB_SUFFIX
    url = sa.make_url(database_url)
    if kind == "postgres":
        drop_reader(kind, name)
        server = _admin(PG_ADMIN_URL)
        database = _admin(url.render_as_string(hide_password=False))
        try:
            with server.connect() as conn:
                conn.execute(sa.text(f"CREATE ROLE {user} LOGIN"))
            with database.connect() as conn:
                for sql in (
                    f"GRANT CONNECT ON DATABASE {url.database} TO {user}",
                    f"GRANT USAGE ON SCHEMA public TO {user}",
                    f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}",
                    *extra,
                ):
                    conn.execute(sa.text(sql.format(user=user)))
        finally:
            server.dispose()
            database.dispose()
        return url.set(username=user, password=None).render_as_string(hide_password=False)
    drop_reader(kind, name)
    server = _admin(MYSQL_ADMIN_URL)
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f"CREATE USER '{user}'@'%'"))
            conn.execute(sa.text(f"GRANT SELECT ON `{url.database}`.* TO '{user}'@'%'"))
            for sql in extra:
                conn.execute(sa.text(sql.format(user=f"'{user}'@'%'")))
    finally:
        server.dispose()
    return url.set(username=user, password=None).render_as_string(hide_password=False)


def drop_reader(kind: str, name: str) -> None:
    """Drop the login (on PostgreSQL, after the database it was granted on)."""
    user = name + DB_SUFFIX
    if kind == "postgres":
        # Its grants live in the test database (and CONNECT in that database's entry): drop the
        # database first, then the role has nothing left to depend on.
        server = _admin(PG_ADMIN_URL)
        try:
            with server.connect() as conn:
                conn.execute(sa.text(f"DROP ROLE IF EXISTS {user}"))
        finally:
            server.dispose()
        return
    server = _admin(MYSQL_ADMIN_URL)
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
    finally:
        server.dispose()
