"""Least privilege: does the database login hold more than answering questions needs?

The read-only executor stops writes and non-queries, but a *query* run by a privileged login can
still reach outside the data (``pg_read_file``, ``LOAD_FILE``, signalling other sessions), and
every guarantee of the executor is one bug away from a login that could write. The strongest
layer is therefore a login that can only read. :func:`check_privileges` asks the database, from
its structured catalogs (never by parsing ``SHOW GRANTS`` where a catalog has the answer),
what the login holds beyond that, and returns one :class:`PrivilegeFinding` per kind of excess:

* **PostgreSQL**: superuser (nothing else is reported then: it implies everything); the role
  attributes ``CREATEROLE``, ``CREATEDB``, ``REPLICATION``, ``BYPASSRLS``; membership (direct or
  inherited, so also what ``SET ROLE`` would reach) of a superuser role or of the predefined roles
  ``pg_read_server_files``, ``pg_write_server_files``, ``pg_execute_server_program``,
  ``pg_write_all_data``, ``pg_signal_backend``, ``pg_checkpoint`` (``pg_roles``,
  ``pg_has_role``); ``CREATE`` on the current database or on a non-system schema
  (``has_database_privilege``, ``has_schema_privilege``); ``INSERT``/``UPDATE`` (table or any
  column), ``DELETE``, ``TRUNCATE`` or ``TRIGGER`` on any table, view or foreign table outside
  the system schemas, which an owner always holds (``has_table_privilege``,
  ``has_any_column_privilege``).
* **MariaDB / MySQL**: every privilege outside the allow-list ``SELECT``, ``SHOW VIEW``,
  ``SHOW DATABASES``, ``USAGE`` granted to the login globally, on a database, a table or a column
  (``information_schema.USER_PRIVILEGES``, ``SCHEMA_PRIVILEGES``, ``TABLE_PRIVILEGES``,
  ``COLUMN_PRIVILEGES``), classified as server files (``FILE``), write (``INSERT``, ``CREATE``,
  ``DROP``, ``ALTER``, ``EXECUTE``, ``LOCK TABLES`` ...) or admin (``SUPER`` and anything else).
  On MariaDB, ``information_schema`` does not show a role's privileges to its members, so the
  privileges of each role granted to the login (``information_schema.APPLICABLE_ROLES``) are
  read from ``SHOW GRANTS FOR role``, which lists nested roles' grants too: the one place where
  grant text is parsed. On MySQL, privileges held through roles are not read (untested branch,
  written from MySQL 8's documentation).
* **Oracle** (UNTESTED, from Oracle's documentation): system privileges in ``SESSION_PRIVS``
  outside ``CREATE SESSION``, ``SET CONTAINER``, ``SELECT ANY TABLE``, ``READ ANY TABLE``,
  ``SELECT ANY DICTIONARY``; object privileges other than ``SELECT``/``READ`` received by the
  login or its enabled roles (``USER_TAB_PRIVS_RECD``, ``ROLE_TAB_PRIVS``); tables the login owns
  (``USER_TABLES``: an owner can write them); directories it can reach (``ALL_DIRECTORIES``).
* **SQLite**: nothing to check; the executor opens the file read-only.

Not covered: PostgreSQL ``EXECUTE`` on ``SECURITY DEFINER`` functions and untrusted languages,
row-level security, privileges granted to ``PUBLIC`` (``TEMP`` on databases by default); MySQL
roles and dynamic privileges held through them; grants that change after the check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import Engine

from sqlagent.dialects import database_url
from sqlagent.errors import ConfigError, ExecutionError
from sqlagent.execution._executor import ReadOnlyExecutor

__all__ = ["FindingKind", "PrivilegeFinding", "check_privileges", "summarize_findings"]

FindingKind = Literal["superuser", "server_files", "admin", "write"]

_Run = Callable[[str], Sequence[tuple[Any, ...]]]
#: How many object names a finding lists before "and N more".
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class PrivilegeFinding:
    """One privilege the database login holds that reading does not need.

    ``kind`` groups findings by risk: ``superuser`` (everything), ``server_files`` (read or
    write files or run programs on the database server), ``admin`` (server administration,
    other sessions, roles), ``write`` (change data or schema). ``privilege`` is the database's
    own name (``SUPERUSER``, ``pg_write_server_files``, ``FILE``, ``INSERT``); ``scope`` says
    where it applies; ``why`` says what a statement could do with it.
    """

    kind: FindingKind
    privilege: str
    scope: str
    why: str

    def __str__(self) -> str:
        return f"{self.privilege} on {self.scope} ({self.why})"

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "privilege": self.privilege,
            "scope": self.scope,
            "why": self.why,
        }


def check_privileges(
    target: ReadOnlyExecutor | Engine | str, *, timeout_s: float = 10.0
) -> list[PrivilegeFinding]:
    """What the login behind ``target`` (an executor, an Engine or a URL) holds beyond reading;
    an empty list means a least-privilege login. The queries run read-only through a
    :class:`ReadOnlyExecutor` of their own (an engine given or taken from an executor is
    borrowed, not disposed). Raises :class:`~sqlagent.errors.ExecutionError` when the database
    cannot be asked (an unreachable server, a catalog the login may not read).
    """
    engine: Engine | str = target.engine if isinstance(target, ReadOnlyExecutor) else target
    name = _dialect_name(engine)
    if name == "sqlite":
        return []
    with ReadOnlyExecutor(engine, timeout_s=timeout_s, max_rows=10_000) as executor:

        def run(sql: str) -> Sequence[tuple[Any, ...]]:
            return executor.run(sql).rows

        if name == "postgresql":
            return _postgres(run)
        if name in ("mysql", "mariadb"):
            return _mysql(run, mariadb=executor.server_dialect() == "mariadb")
        if name == "oracle":
            return _oracle(run)
    raise ConfigError(f"no privilege check for the {name} dialect")  # pragma: no cover


def summarize_findings(findings: Sequence[PrivilegeFinding], *, limit: int = 4) -> str:
    """One line for a log or a report: how many findings, the gravest few, and how to fix it."""
    rank = {"superuser": 0, "server_files": 1, "admin": 2, "write": 3}
    ordered = sorted(findings, key=lambda f: rank[f.kind])
    shown = "; ".join(str(f) for f in ordered[:limit])
    more = len(ordered) - limit
    return (
        f"the database login holds {len(ordered)} privilege(s) beyond reading: {shown}"
        + (f"; and {more} more" if more > 0 else "")
        + " (connect with a read-only login: see docs/databases.md)"
    )


def _dialect_name(engine: Engine | str) -> str:
    if isinstance(engine, Engine):
        return str(engine.dialect.name)
    return database_url(engine).get_backend_name()


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


# --- PostgreSQL ----------------------------------------------------------------------------------

_PG_ROLE = """SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       current_user, current_database(), has_database_privilege(current_database(), 'CREATE')
FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user"""
_PG_MEMBERSHIPS = """SELECT r.rolname, r.rolsuper FROM pg_catalog.pg_roles AS r
WHERE r.rolname <> current_user
  AND (r.rolsuper OR r.rolname IN ('pg_read_server_files', 'pg_write_server_files',
       'pg_execute_server_program', 'pg_write_all_data', 'pg_signal_backend', 'pg_checkpoint'))
  AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')
ORDER BY r.rolname"""
_PG_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)
_PG_SCHEMAS = f"""SELECT n.nspname FROM pg_catalog.pg_namespace AS n
WHERE {_PG_USER_SCHEMAS} AND pg_catalog.has_schema_privilege(n.oid, 'CREATE')
ORDER BY n.nspname"""
_PG_TABLES = f"""WITH t AS (
  SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name,
         c.oid
  FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_PG_USER_SCHEMAS}
)
SELECT p.privilege, count(*), (array_agg(t.name ORDER BY t.name))[1:{_SHOWN}]
FROM t CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('TRIGGER'))
  AS p (privilege)
WHERE CASE WHEN p.privilege IN ('INSERT', 'UPDATE')
           THEN pg_catalog.has_any_column_privilege(t.oid, p.privilege)
           ELSE pg_catalog.has_table_privilege(t.oid, p.privilege) END
GROUP BY p.privilege ORDER BY p.privilege"""

_PG_ATTRIBUTES: tuple[tuple[int, str, FindingKind, str], ...] = (
    (1, "CREATEROLE", "admin", "creates and alters roles, so it can grant itself more"),
    (2, "CREATEDB", "write", "creates databases"),
    (3, "REPLICATION", "admin", "streams the whole cluster's changes and manages slots"),
    (4, "BYPASSRLS", "admin", "reads past every row-level security policy"),
)
_PG_ROLES: dict[str, tuple[FindingKind, str]] = {
    "pg_read_server_files": ("server_files", "reads any file on the server (pg_read_file, COPY)"),
    "pg_write_server_files": ("server_files", "writes any file on the server (COPY TO, lo_export)"),
    "pg_execute_server_program": ("server_files", "runs programs on the server (COPY PROGRAM)"),
    "pg_write_all_data": ("write", "writes every table"),
    "pg_signal_backend": ("admin", "cancels or terminates other sessions"),
    "pg_checkpoint": ("admin", "forces checkpoints"),
}


def _postgres(run: _Run) -> list[PrivilegeFinding]:
    role = run(_PG_ROLE)
    if not role:
        raise ConfigError("the login's role is not in pg_roles")  # pragma: no cover
    attrs = role[0]
    user, database, create_database = str(attrs[5]), str(attrs[6]), bool(attrs[7])
    if attrs[0]:
        return [
            PrivilegeFinding(
                "superuser",
                "SUPERUSER",
                f"role {user}",
                "bypasses every permission check: reads server files, runs programs, writes",
            )
        ]
    found = [
        PrivilegeFinding(kind, name, f"role {user}", why)
        for index, name, kind, why in _PG_ATTRIBUTES
        if attrs[index]
    ]
    for member_of, is_super in run(_PG_MEMBERSHIPS):
        if is_super:
            why = "SET ROLE to it bypasses every permission check"
            found.append(PrivilegeFinding("superuser", f"member of {member_of}", user, why))
        else:
            kind, why = _PG_ROLES[str(member_of)]
            found.append(PrivilegeFinding(kind, str(member_of), f"role {user}", why))
    if create_database:
        found.append(PrivilegeFinding("write", "CREATE", f"database {database}", "creates schemas"))
    schemas = [str(r[0]) for r in run(_PG_SCHEMAS)]
    if schemas:
        found.append(
            PrivilegeFinding(
                "write", "CREATE", f"schema {_listed(schemas)}", "creates tables, views, functions"
            )
        )
    for privilege, count, names in run(_PG_TABLES):
        shown = [str(n) for n in names or ()]
        more = int(count) - len(shown)
        scope = f"{count} table(s): {', '.join(shown)}" + (f" and {more} more" if more > 0 else "")
        why = "creates triggers" if privilege == "TRIGGER" else "changes table data"
        found.append(PrivilegeFinding("write", str(privilege), scope, why))
    return found


# --- MariaDB / MySQL -----------------------------------------------------------------------------

_MYSQL_READ = frozenset({"SELECT", "SHOW VIEW", "SHOW DATABASES", "USAGE"})
_MYSQL_FILES = frozenset({"FILE"})
_MYSQL_WRITES = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES",
        "CREATE VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE", "TRIGGER", "EVENT",
        "CREATE TEMPORARY TABLES", "LOCK TABLES", "DELETE HISTORY", "CREATE TABLESPACE",
    }
)  # fmt: skip
# The grantee string information_schema uses for the current login: 'user'@'host'.
_MYSQL_ME = (
    "CONCAT('''', LEFT(CURRENT_USER(), CHAR_LENGTH(CURRENT_USER()) - "
    "CHAR_LENGTH(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1), '''@''', "
    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
)
_MYSQL_GRANTS = f"""SELECT 'global', PRIVILEGE_TYPE, '' FROM information_schema.USER_PRIVILEGES
  WHERE GRANTEE = {_MYSQL_ME}
UNION ALL SELECT 'database', PRIVILEGE_TYPE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES
  WHERE GRANTEE = {_MYSQL_ME}
UNION ALL SELECT 'table', PRIVILEGE_TYPE, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME)
  FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {_MYSQL_ME}
UNION ALL SELECT 'column', PRIVILEGE_TYPE, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME)
  FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = {_MYSQL_ME}"""
_MARIADB_ROLES = (
    "SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES "
    "WHERE GRANTEE = CURRENT_USER() ORDER BY ROLE_NAME"
)
_GRANT_LINE = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<object>.+?) TO ", re.S)


def _mysql(run: _Run, *, mariadb: bool) -> list[PrivilegeFinding]:
    # (level, privilege, object, role it comes through or "")
    grants = [(str(lv), str(pv).upper(), str(ob), "") for lv, pv, ob in run(_MYSQL_GRANTS)]
    unreadable: list[str] = []
    if mariadb:
        for (role,) in run(_MARIADB_ROLES):
            quoted = "`" + str(role).replace("`", "``") + "`"
            try:
                lines = run(f"SHOW GRANTS FOR {quoted}")
            except ExecutionError:  # a role granted but not enabled: MariaDB hides its grants
                unreadable.append(str(role))
                continue
            for (line,) in lines:
                grants.extend(_parse_grant(str(line), via=str(role)))
    held: dict[tuple[str, str, str], set[str]] = {}
    for level, privilege, target, via in grants:
        if privilege not in _MYSQL_READ:
            held.setdefault((level, privilege, via), set()).add(target)
    findings = []
    for (level, privilege, via), targets in sorted(held.items(), key=_mysql_order):
        where = "all databases" if level == "global" else f"{level} {_listed(sorted(targets))}"
        scope = where + (f" (through role {via})" if via else "")
        kind = _mysql_kind(privilege)
        findings.append(PrivilegeFinding(kind, privilege, scope, _MYSQL_WHY[kind]))
    for role in unreadable:
        why = "its privileges cannot be read until it is enabled (SET ROLE), so they are unknown"
        findings.append(PrivilegeFinding("admin", f"role {role}", "granted to the login", why))
    return findings


_MYSQL_WHY: dict[FindingKind, str] = {
    "server_files": "reads and writes files on the server (LOAD_FILE, SELECT ... INTO OUTFILE)",
    "admin": "administers the server or other sessions",
    "write": "changes data or schema",
    "superuser": "everything",
}


def _mysql_kind(privilege: str) -> FindingKind:
    if privilege in _MYSQL_FILES:
        return "server_files"
    return "write" if privilege in _MYSQL_WRITES else "admin"


def _mysql_order(item: tuple[tuple[str, str, str], set[str]]) -> tuple[int, str, str, str]:
    (level, privilege, via), _ = item
    rank = {"server_files": 0, "admin": 1, "write": 2}[_mysql_kind(privilege)]
    return rank, via, level, privilege


def _parse_grant(line: str, *, via: str) -> list[tuple[str, str, str, str]]:
    """``(level, privilege, object, via)`` from one ``SHOW GRANTS`` line; a line granting a role
    (no ``ON``) gives nothing (``SHOW GRANTS FOR role`` lists the nested role's grants too)."""
    match = _GRANT_LINE.match(line)
    if match is None:
        return []
    target = match["object"].strip()
    kind, _, rest = target.partition(" ")
    if kind.upper() in ("PROCEDURE", "FUNCTION", "PACKAGE") and rest:
        level, target = "routine", rest
    elif target == "*.*":
        level = "global"
    elif target.endswith(".*"):
        level, target = "database", target[:-2]
    else:
        level = "table"
    target = target.replace("`", "")
    out = []
    for item in _split_privileges(match["privileges"]):
        privilege, paren, _columns = item.partition("(")
        out.append(("column" if paren else level, privilege.strip().upper(), target, via))
    return out


def _split_privileges(text: str) -> list[str]:
    """Split ``INSERT, UPDATE (`a`, `b`)`` on the commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current).strip())
    return [p for p in parts if p]


# --- Oracle (untested) ---------------------------------------------------------------------------

_ORACLE_READ_SYSTEM = frozenset(
    {
        "CREATE SESSION",
        "SET CONTAINER",
        "SELECT ANY TABLE",
        "READ ANY TABLE",
        "SELECT ANY DICTIONARY",
    }
)
_ORACLE_ADMIN_WORDS = frozenset(
    {"SYSTEM", "DATABASE", "USER", "ROLE", "GRANT", "SYSDBA", "SYSOPER", "AUDIT", "BECOME",
     "PRIVILEGE", "PROFILE", "RESOURCE", "TABLESPACE", "DIRECTORY", "LIBRARY", "ADMINISTER"}
)  # fmt: skip
_ORACLE_OBJECTS = """SELECT PRIVILEGE, COUNT(*) FROM (
  SELECT PRIVILEGE FROM USER_TAB_PRIVS_RECD
  UNION ALL SELECT PRIVILEGE FROM ROLE_TAB_PRIVS
) WHERE PRIVILEGE NOT IN ('SELECT', 'READ') GROUP BY PRIVILEGE ORDER BY PRIVILEGE"""


def _oracle(run: _Run) -> list[PrivilegeFinding]:
    found = []
    for (privilege,) in run("SELECT PRIVILEGE FROM SESSION_PRIVS ORDER BY PRIVILEGE"):
        name = str(privilege).upper()
        if name in _ORACLE_READ_SYSTEM:
            continue
        admin = bool(set(name.split()) & _ORACLE_ADMIN_WORDS)
        kind: FindingKind = "admin" if admin else "write"
        why = "administers the database" if admin else "changes data or schema"
        found.append(PrivilegeFinding(kind, name, "the database (system privilege)", why))
    for privilege, count in run(_ORACLE_OBJECTS):
        found.append(
            PrivilegeFinding(
                "write", str(privilege), f"{count} object(s) (object privilege)", "changes data"
            )
        )
    owned = run("SELECT COUNT(*) FROM USER_TABLES")
    if owned and int(owned[0][0]):
        found.append(
            PrivilegeFinding(
                "write", "OWNER", f"{owned[0][0]} table(s) of its own schema", "owners can write"
            )
        )
    directories = [str(r[0]) for r in run("SELECT DIRECTORY_NAME FROM ALL_DIRECTORIES ORDER BY 1")]
    if directories:
        found.append(
            PrivilegeFinding(
                "server_files",
                "DIRECTORY access",
                _listed(directories),
                "reads or writes server files (UTL_FILE, external tables, BFILE)",
            )
        )
    return found
