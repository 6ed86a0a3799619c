"""The SQL dialects sqlagent targets, and their identifier rules."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from sqlagent.errors import ConfigError, DialectError

__all__ = [
    "DIALECTS",
    "analysis_dialect",
    "dialect_from_url",
    "is_system_relation",
    "catalog_key",
    "normalize_key",
    "resolve_dialect",
]

#: Accepted names -> sqlglot dialect name.
DIALECTS: dict[str, str] = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
}

# Schemas that hold the database's own catalog. They are never granted by "*" in a policy.
_SYSTEM_SCHEMAS: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"information_schema"}),
    "postgres": frozenset({"pg_catalog", "information_schema", "pg_toast"}),
    "mysql": frozenset({"mysql", "information_schema", "performance_schema", "sys"}),
    "oracle": frozenset({"sys", "system", "information_schema"}),
}
_SYSTEM_PREFIXES: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite_", "pragma_"),
    "postgres": ("pg_",),
    "mysql": (),
    "oracle": ("all_", "dba_", "user_", "v$", "gv$", "cdb_"),
}


def resolve_dialect(name: str) -> str:
    """Map a user-facing dialect name to sqlglot's; unknown names raise :class:`DialectError`."""
    key = name.strip().lower()
    if key not in DIALECTS:
        raise DialectError(
            f"unsupported dialect {name!r}; choose one of: sqlite, postgres, mysql, oracle"
        )
    return DIALECTS[key]


def dialect_from_url(url: str) -> str:
    """The dialect of a SQLAlchemy URL such as ``postgresql+psycopg://...``."""
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    return resolve_dialect(backend)


@functools.cache
def analysis_dialect(dialect: str) -> Dialect:
    """The sqlglot dialect used for name resolution.

    MySQL/MariaDB compare column names case-insensitively (and table names too on most
    installations), so resolution treats them case-insensitively; the others follow sqlglot's
    rules (PostgreSQL folds unquoted names to lower case, Oracle to upper case, SQLite ignores
    case).
    """
    if dialect == "mysql":
        return Dialect.get_or_raise("mysql, normalization_strategy=case_insensitive")
    return Dialect.get_or_raise(dialect)


def normalize_key(name: str, dialect: str, *, quoted: bool) -> str:
    """The key a name is compared by, under ``dialect``'s identifier rules."""
    ident = exp.Identifier(this=name, quoted=quoted)
    return analysis_dialect(dialect).normalize_identifier(ident).name


def catalog_key(name: str, dialect: str) -> str:
    """The comparison key of a name as the catalog spells it.

    Catalog names are exact (as if quoted), except that on Oracle an all-lower-case name means a
    case-insensitive one, which is how SQLAlchemy reports them and how people write schema files.
    """
    if dialect == "oracle" and name == name.lower():
        return name.upper()
    return normalize_key(name, dialect, quoted=True)


def is_system_relation(name: str, db: str | None, dialect: str) -> bool:
    """Whether a table reference names the database's own catalog (``pg_class``, ``mysql.user``)."""
    lname, ldb = name.lower(), (db or "").lower()
    if ldb and ldb in _SYSTEM_SCHEMAS[dialect]:
        return True
    return lname.startswith(_SYSTEM_PREFIXES[dialect]) or lname == "information_schema"
