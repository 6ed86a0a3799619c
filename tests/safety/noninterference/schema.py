"""The noninterference schema, its data, its policy, and how a database of it is built.

Five small tables (tens of rows, so that cross joins stay fast and every table fits in one page
on every engine) with integers, text, reals, dates, NULLs and JSON::

    departments  id name budget location founded tags          granted to every role
    projects     id name department_id budget started ended    granted to every role
    assignments  employee_id project_id hours task             granted to every role
    employees    id name department_id manager_id hire_date rating     granted
                 salary email                                          masked (analyst) / denied
                 ssn bonus notes                                       denied (masked: masker)
    secrets      id employee_id token level payload             denied table (masked: masker)

Every role under test protects the same set of values (:data:`PROTECTED`), only *how* differs:
``viewer`` is denied them, ``analyst`` reads ``salary``/``email`` masked, ``masker`` reads all of
them masked and is denied nothing, ``sys`` is ``analyst`` plus a few columns of system
relations. So one pair of databases serves every role: a *variant* (``"a"`` or ``"b"``) decides
the protected values, and nothing else. Values of the system catalog that no role is granted
differ too where that is cheap: the DDL text in ``sqlite_master.sql`` carries the variant, the
default of ``secrets.level`` differs (``information_schema.columns.column_default``), and on
PostgreSQL an enum type exists only in variant ``a`` (for ``reg*`` probes).

``admin`` reads everything: it is only used on a *control* pair built from one variant twice,
where no value is protected and any difference is a harness bug.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COLUMNS",
    "ENGINES",
    "GRANTED_TABLES",
    "PROTECTED",
    "ROLES",
    "ROWS",
    "SYSTEM_GRANTS",
    "TABLES",
    "Col",
    "ddl",
    "hidden_objects",
    "insert_rows",
    "policy_mapping",
    "rows",
    "variant_ddl",
]

ENGINES = ("sqlite", "postgres", "mysql")


@dataclass(frozen=True, slots=True)
class Col:
    name: str
    kind: str  # int | text | real | date | json
    nullable: bool = True
    primary_key: bool = False


TABLES: dict[str, tuple[Col, ...]] = {
    "departments": (
        Col("id", "int", False, True), Col("name", "text", False), Col("budget", "real"),
        Col("location", "text"), Col("founded", "date"), Col("tags", "json"),
    ),
    "projects": (
        Col("id", "int", False, True), Col("name", "text", False), Col("department_id", "int"),
        Col("budget", "real"), Col("started", "date"), Col("ended", "date"),
    ),
    "assignments": (
        Col("employee_id", "int", False), Col("project_id", "int", False), Col("hours", "real"),
        Col("task", "text"),
    ),
    "employees": (
        Col("id", "int", False, True), Col("name", "text", False), Col("department_id", "int"),
        Col("manager_id", "int"), Col("hire_date", "date"), Col("rating", "int"),
        Col("salary", "int"), Col("bonus", "real"), Col("email", "text"), Col("ssn", "text"),
        Col("notes", "json"),
    ),
    "secrets": (
        Col("id", "int", False, True), Col("employee_id", "int"), Col("token", "text"),
        Col("level", "int"), Col("payload", "json"),
    ),
}  # fmt: skip

#: table -> column names, in declaration order.
COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(c.name for c in cols) for t, cols in TABLES.items()}
ROWS: dict[str, int] = {
    "departments": 6, "projects": 10, "assignments": 30, "employees": 24, "secrets": 12,
}  # fmt: skip

#: The (table, column) pairs no role under test may read in clear. They differ between the
#: variants, all but ``secrets.id`` (the primary key keeps the physical row order the same).
PROTECTED: frozenset[tuple[str, str]] = frozenset(
    {("employees", c) for c in ("salary", "bonus", "email", "ssn", "notes")}
    | {("secrets", c) for c in COLUMNS["secrets"]}
)
GRANTED_TABLES = ("departments", "projects", "assignments")
_EMPLOYEES_GRANTED = ["id", "name", "department_id", "manager_id", "hire_date", "rating"]

#: System relations (policy keys) and the columns the ``sys`` role is granted, per engine.
SYSTEM_GRANTS: dict[str, dict[str, list[str]]] = {
    "sqlite": {"sqlite_master": ["name", "type"]},
    "postgres": {
        "information_schema.tables": ["table_name", "table_type"],
        "information_schema.columns": ["table_name", "column_name"],
        "pg_catalog.pg_class": ["relname", "relkind"],
    },
    "mysql": {
        "information_schema.tables": ["table_name", "table_type"],
        "information_schema.columns": ["table_name", "column_name"],
    },
}
ROLES = ("viewer", "analyst", "masker", "sys")


def policy_mapping(engine: str) -> dict[str, Any]:
    """The role policy for ``engine`` (the format of :mod:`sqlagent.safety._policy`)."""
    granted: dict[str, list[str]] = {t: ["*"] for t in GRANTED_TABLES}
    granted["employees"] = list(_EMPLOYEES_GRANTED)
    return {
        "default_role": "viewer",
        "roles": {
            "viewer": {"tables": granted},
            "analyst": {"inherits": ["viewer"], "masked": {"employees": ["salary", "email"]}},
            "masker": {
                "tables": granted,
                "masked": {
                    "employees": ["salary", "bonus", "email", "ssn", "notes"],
                    "secrets": ["*"],
                },
            },
            "sys": {"inherits": ["analyst"], "tables": SYSTEM_GRANTS[engine]},
            "admin": {"tables": {"*": ["*"]}},
        },
    }


# -- data ------------------------------------------------------------------------------------------
_DEPARTMENTS = ("Engineering", "Sales", "Support", "Research", "Legal", "Operations")
_LOCATIONS = ("Berlin", "Paris", None, "Berlin", "Lisbon", "Oslo")
_FIRST = (
    "Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jin", "Kai", "Lea",
    "Max", "Nia", "Oto", "Pia", "Quin", "Rui", "Sol", "Teo", "Uma", "Vic", "Wes", "Ana",
)  # fmt: skip
_GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")
_TASKS = ("build", "review", "test", "lead")


def _date(base: str, days: int) -> dt.date:
    return dt.date.fromisoformat(base) + dt.timedelta(days=days)


def _granted_value(table: str, column: str, i: int) -> Any:
    if table == "departments":
        return {
            "id": i + 1,
            "name": _DEPARTMENTS[i],
            "budget": None if i == 5 else round(30000.25 + i * 17500.5, 2),
            "location": _LOCATIONS[i],
            "founded": _date("2001-03-15", i * 411),
            "tags": json.dumps(["core", _DEPARTMENTS[i][:3].lower()] if i % 2 else [i]),
        }[column]
    if table == "projects":
        return {
            "id": i + 1,
            "name": f"P-{_GREEK[i]}",
            "department_id": i % 6 + 1,
            "budget": round(5000.5 * (i % 4 + 1), 2),
            "started": _date("2020-01-06", i * 45),
            "ended": None if i % 2 == 0 else _date("2021-02-01", i * 30),
        }[column]
    if table == "assignments":
        return {
            "employee_id": (i * 7) % 24 + 1,
            "project_id": i % 10 + 1,
            "hours": None if i % 13 == 6 else (i * 2.5) % 40,
            "task": _TASKS[i % 4],
        }[column]
    if table == "employees":
        return {
            "id": i + 1,
            "name": _FIRST[i],  # "Ana" twice: ties on name
            "department_id": None if i == 7 else i % 6 + 1,
            "manager_id": None if i < 3 else i % 3 + 1,
            "hire_date": _date("2015-01-01", i * 97),
            "rating": None if i % 9 == 4 else (i * 3) % 5 + 1,
        }[column]
    raise KeyError((table, column))


def _protected_value(table: str, column: str, i: int, variant: str) -> Any:
    """Variants ``a`` and ``b`` disagree on (nearly) every row: values, order, NULLs, types of
    text (JSON or not, numeric or not)."""
    a = variant == "a"
    if table == "employees":
        if column == "salary":
            if a:
                return None if i % 11 == 5 else 30000 + (i * 7919) % 50000
            return None if i % 7 == 2 else 95000 - (i * 4391) % 60000
        if column == "bonus":
            if a:
                return None if i % 5 == 0 else round((i * 123.25) % 1000, 2)
            return None if i % 4 == 1 else round(900.5 - i * 31.75, 2)
        if column == "email":
            if a:
                return "1001" if i == 0 else f"{_FIRST[i].lower()}.{i}@corp-a.example"
            return f"u{(i * 13) % 97}@b.example.org"
        if column == "ssn":
            if a:
                return (
                    f"{(i * 37) % 900 + 100:03d}-{(i * 11) % 90 + 10:02d}-{(i * 173) % 9000 + 1000}"
                )
            return f"9{i:02d}-00-{(i * 29) % 10000:04d}"
        if column == "notes":
            if a:
                return json.dumps({"review": "good" if i % 3 else "poor", "score": i})
            return json.dumps({"flag": i % 3 == 0, "text": "x" * (i % 5)})
    if table == "secrets":
        if column == "id":
            # Not different: InnoDB stores rows in primary-key order, and the pair must keep
            # the same physical row order (see harness). Every other column of secrets differs.
            return i + 1
        if column == "employee_id":
            return (i * 5) % 24 + 1 if a else (i * 7 + 3) % 24 + 1
        if column == "token":
            return f"tok-a-{i * 31}" if a else f"T{i}-b"
        if column == "level":
            return i % 4 if a else None if i % 5 == 0 else (i * 3 + 1) % 5
        if column == "payload":
            return json.dumps({"k": i, "v": "a"}) if a else json.dumps([i, "b", None])
    raise KeyError((table, column))


def rows(table: str, variant: str) -> list[tuple[Any, ...]]:
    """The rows of ``table`` in insertion order (the same order in every variant)."""
    out = []
    for i in range(ROWS[table]):
        out.append(
            tuple(
                _protected_value(table, c, i, variant)
                if (table, c) in PROTECTED
                else _granted_value(table, c, i)
                for c in COLUMNS[table]
            )
        )
    return out


# -- DDL -------------------------------------------------------------------------------------------
_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"int": "INTEGER", "text": "TEXT", "real": "REAL", "date": "DATE", "json": "TEXT"},
    "postgres": {
        "int": "integer", "text": "text", "real": "double precision", "date": "date",
        "json": "jsonb",
    },
    "mysql": {
        "int": "INT", "text": "VARCHAR(120)", "real": "DOUBLE", "date": "DATE", "json": "JSON",
    },
}  # fmt: skip
_LEVEL_DEFAULT = {"a": 1, "b": 2}
_FILLFACTOR = {"a": 100, "b": 90}


def ddl(engine: str, variant: str, *, template: bool = False) -> list[str]:
    """CREATE TABLE statements for ``engine``.

    The variant shows only in what no role may read: a comment in the SQLite DDL of the tables
    that hold protected values (``sqlite_master.sql``) and the default of ``secrets.level``. On
    PostgreSQL ``template=True`` gives the variant-free tables of the template database (see
    :func:`variant_ddl`).
    """
    types = _TYPES[engine]
    out = []
    for table, cols in TABLES.items():
        parts = []
        for col in cols:
            text = f"{col.name} {types[col.kind]}"
            if col.primary_key:
                text += " PRIMARY KEY"
            elif not col.nullable:
                text += " NOT NULL"
            if table == "secrets" and col.name == "level" and not template:
                text += f" DEFAULT {_LEVEL_DEFAULT[variant]}"
            parts.append(text)
        body = ", ".join(parts)
        if engine == "sqlite" and any((table, c.name) in PROTECTED for c in cols):
            body += f" /* ni-variant {variant} */"
        suffix = ""
        if engine == "postgres":
            suffix = " WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
        elif engine == "mysql":
            suffix = " ENGINE=InnoDB"
        out.append(f"CREATE TABLE {table} ({body}){suffix}")
    return out


def variant_ddl(engine: str, variant: str) -> list[str]:
    """PostgreSQL: what makes a copy of the template one variant (run before the data)."""
    if engine != "postgres":
        return []
    return [
        f"ALTER TABLE secrets ALTER COLUMN level SET DEFAULT {_LEVEL_DEFAULT[variant]}",
        # pg_class.reloptions of the denied table: a column of a system view no role is granted
        f"ALTER TABLE secrets SET (fillfactor = {_FILLFACTOR[variant]})",
    ]


def hidden_objects(engine: str, variant: str) -> list[str]:
    """Objects outside every catalog a role sees that exist in variant ``a`` only (``reg*``
    probes on PostgreSQL must not be able to tell the two databases apart)."""
    if engine != "postgres" or variant != "a":
        return []
    return [
        "CREATE TYPE ni_hidden_kind AS ENUM ('low', 'high')",
        "CREATE SCHEMA ni_hidden_ns",
    ]


def insert_rows(engine: str, variant: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """(INSERT statement with DB-API placeholders, rows) per table, in a fixed order."""
    mark: Callable[[int], str] = (
        (lambda n: ", ".join("?" * n)) if engine == "sqlite" else (lambda n: ", ".join(["%s"] * n))
    )
    out = []
    for table in TABLES:
        cols = COLUMNS[table]
        out.append(
            (
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({mark(len(cols))})",
                rows(table, variant),
            )
        )
    return out
