"""Oracle catalogs and sampling, checked without a server (none is available here).

What is tested: how reflected names are turned back into Oracle's true names (SQLAlchemy reports
case-insensitive names in lower case), with SQLAlchemy's real Oracle dialect doing the
normalization behind a stand-in inspector; the sampling SQL written for Oracle (quoting,
``FETCH FIRST``, no ``;``), which must pass the Oracle executor's own query backstop and parse as
Oracle SQL; and clean errors when the python-oracledb driver is missing. Reflection queries and
sampling have never run against a real Oracle database (see docs/databases.md).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import pytest
import sqlglot
from sqlalchemy.dialects.oracle import CLOB, NUMBER, VARCHAR2
from sqlalchemy.dialects.oracle import oracledb as oracle_dialect
from sqlalchemy.engine.reflection import ObjectKind

from sqlagent.catalog import (
    Catalog,
    CatalogSource,
    ForeignKey,
    SampleOptions,
    Table,
    all_columns,
    reflect_catalog,
    sample_values,
)
from sqlagent.catalog._reflect import catalog_from_inspector
from sqlagent.catalog._sample import sampling_sql
from sqlagent.errors import CatalogError, ConfigError
from sqlagent.execution import ExecutionResult
from sqlagent.execution._oracle import _refuse_non_query
from sqlagent.safety import Policy

URL = "oracle+oracledb://scott:tiger@127.0.0.1:1/?service_name=FREEPDB1"
HAS_ORACLEDB = importlib.util.find_spec("oracledb") is not None


def _col(name: str, type_: Any, *, nullable: bool = True, comment: str | None = None) -> Any:
    return {"name": name, "type": type_, "nullable": nullable, "comment": comment}


# What an Oracle schema holds, by true name (as in ALL_TAB_COLUMNS).
TABLES: dict[str, dict[str, Any]] = {
    "EMPLOYEES": {
        "columns": [
            _col("ID", NUMBER(10), nullable=False),
            _col("DEPT_NAME", VARCHAR2(30), comment="Department"),
            _col("Nick Name", VARCHAR2(20)),
            _col("NOTES", CLOB()),
            _col("lower_case", VARCHAR2(5)),
        ],
        "pk": ["ID"],
        "fks": [],
        "comment": "Staff",
    },
    "MixedCase": {
        "columns": [_col("Id", NUMBER(10), nullable=False), _col("EMP_ID", NUMBER(10))],
        "pk": ["Id"],
        "fks": [
            {
                "constrained_columns": ["EMP_ID"],
                "referred_schema": "HR",
                "referred_table": "EMPLOYEES",
                "referred_columns": ["ID"],
            },
            {
                "constrained_columns": ["EMP_ID"],
                "referred_schema": "OPS",
                "referred_table": "AUDIT_LOG",
                "referred_columns": ["ID"],
            },
        ],
        "comment": None,
    },
}
VIEWS: dict[str, dict[str, Any]] = {
    "EMP_V": {"columns": [_col("DEPT_NAME", VARCHAR2(30))], "comment": "Departments only"},
}


class OracleInspector:
    """Answers like SQLAlchemy's Oracle inspector for schema ``HR``: names normalized by the real
    Oracle dialect (``EMPLOYEES`` -> ``employees``, ``lower_case`` -> quoted ``lower_case``)."""

    def __init__(self) -> None:
        self.dialect = oracle_dialect.dialect()
        self.default_schema_name = self.dialect.normalize_name("HR")

    def _n(self, name: str) -> Any:
        return self.dialect.normalize_name(name)

    def _relations(self, kind: ObjectKind) -> dict[str, dict[str, Any]]:
        return TABLES if kind is ObjectKind.TABLE else VIEWS

    def _multi(
        self,
        schema: str | None,
        kind: ObjectKind,
        filter_names: Sequence[str] | None,
        part: Any,
    ) -> dict[tuple[str | None, str], Any]:
        out = {}
        for true_name, rel in self._relations(kind).items():
            name = self._n(true_name)
            if filter_names is None or name in filter_names:
                out[(schema, name)] = part(rel)
        return out

    def get_multi_columns(
        self, *, schema: str | None, kind: ObjectKind, filter_names: Any = None
    ) -> Any:
        return self._multi(
            schema,
            kind,
            filter_names,
            lambda rel: [{**c, "name": self._n(c["name"])} for c in rel["columns"]],
        )

    def get_multi_pk_constraint(
        self, *, schema: str | None, kind: ObjectKind, filter_names: Any = None
    ) -> Any:
        return self._multi(
            schema,
            kind,
            filter_names,
            lambda rel: {"constrained_columns": [self._n(c) for c in rel["pk"]]},
        )

    def get_multi_foreign_keys(
        self, *, schema: str | None, kind: ObjectKind, filter_names: Any = None
    ) -> Any:
        def fks(rel: dict[str, Any]) -> list[dict[str, Any]]:
            # Oracle's dialect names the referred owner when a schema was asked for, or when
            # it is not the connected user's.
            return [
                {
                    "constrained_columns": [self._n(c) for c in fk["constrained_columns"]],
                    "referred_schema": (
                        self._n(fk["referred_schema"])
                        if schema is not None or fk["referred_schema"] != "HR"
                        else None
                    ),
                    "referred_table": self._n(fk["referred_table"]),
                    "referred_columns": [self._n(c) for c in fk["referred_columns"]],
                }
                for fk in rel["fks"]
            ]

        return self._multi(schema, kind, filter_names, fks)

    def get_multi_table_comment(
        self, *, schema: str | None, kind: ObjectKind, filter_names: Any = None
    ) -> Any:
        return self._multi(schema, kind, filter_names, lambda rel: {"text": rel["comment"]})

    def get_view_names(self, *, schema: str | None = None) -> list[str]:
        return [self._n(v) for v in VIEWS]

    def get_materialized_view_names(self, *, schema: str | None = None) -> list[str]:
        return []


def _reflect(schema: str | None = None) -> Catalog:
    return catalog_from_inspector(OracleInspector(), schema=schema)  # type: ignore[arg-type]


def _table(catalog: Catalog, name: str) -> Table:
    table = catalog.table(name)
    assert table is not None, f"{name!r} not in {catalog.table_names}"
    return table


def test_reflected_names_are_oracle_true_names() -> None:
    catalog = _reflect()
    assert catalog.table_names == ("EMPLOYEES", "EMP_V", "MixedCase")
    employees = _table(catalog, "EMPLOYEES")
    assert [(c.name, c.type, c.primary_key) for c in employees.columns] == [
        ("ID", "NUMBER(10)", True),
        ("DEPT_NAME", "VARCHAR2(30 CHAR)", False),
        ("Nick Name", "VARCHAR2(20 CHAR)", False),
        ("NOTES", "CLOB", False),
        ("lower_case", "VARCHAR2(5 CHAR)", False),  # a quoted lower-case name stays as it is
    ]
    assert employees.comment == "Staff"
    assert employees.column("DEPT_NAME").comment == "Department"  # type: ignore[union-attr]
    mixed = _table(catalog, "MixedCase")
    assert mixed.column_names == ("Id", "EMP_ID")
    assert mixed.column("Id").primary_key  # type: ignore[union-attr]
    # Same owner: kept, in true names; another owner's table is not in this catalog.
    assert mixed.foreign_keys == (ForeignKey(("EMP_ID",), "EMPLOYEES", ("ID",)),)
    view = _table(catalog, "EMP_V")
    assert view.is_view
    assert view.comment == "Departments only"


@pytest.mark.parametrize("schema", ["hr", "HR"])
def test_a_schema_is_stored_by_its_true_name(schema: str) -> None:
    catalog = _reflect(schema)
    assert {t.schema for t in catalog} == {"HR"}
    assert _table(catalog, "MixedCase").foreign_keys == (
        ForeignKey(("EMP_ID",), "EMPLOYEES", ("ID",)),
    )


class OracleExecutor:
    """Stands in for the Oracle executor: applies its query backstop and checks the SQL parses."""

    dialect = "oracle"

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.rows = tuple(rows)
        self.statements: list[str] = []

    def run(self, sql: str) -> ExecutionResult:
        _refuse_non_query(sql)
        assert not sql.rstrip().endswith(";")
        sqlglot.parse_one(sql, read="oracle")
        self.statements.append(sql)
        return ExecutionResult(("V", "N"), self.rows, len(self.rows), False, 1.0)

    def close(self) -> None:
        pass


def test_sampling_sql_for_oracle() -> None:
    catalog = _reflect("hr")
    executor = OracleExecutor([("Sales", 3), ("IT", 2)])
    sampled = sample_values(executor, catalog, all_columns(catalog))
    assert executor.statements == [
        'SELECT v, COUNT(*) AS n FROM (SELECT "DEPT_NAME" AS v FROM "HR"."EMPLOYEES" '
        'WHERE NOT "DEPT_NAME" IS NULL FETCH FIRST 10000 ROWS ONLY) s GROUP BY v '
        "FETCH FIRST 21 ROWS ONLY",
        'SELECT v, COUNT(*) AS n FROM (SELECT "Nick Name" AS v FROM "HR"."EMPLOYEES" '
        'WHERE NOT "Nick Name" IS NULL FETCH FIRST 10000 ROWS ONLY) s GROUP BY v '
        "FETCH FIRST 21 ROWS ONLY",
        # An all-lower-case catalog name means a case-insensitive one (see catalog_key), so a
        # true lower-case name is queried in upper case: a known limit of the convention.
        'SELECT v, COUNT(*) AS n FROM (SELECT "LOWER_CASE" AS v FROM "HR"."EMPLOYEES" '
        'WHERE NOT "LOWER_CASE" IS NULL FETCH FIRST 10000 ROWS ONLY) s GROUP BY v '
        "FETCH FIRST 21 ROWS ONLY",
        'SELECT v, COUNT(*) AS n FROM (SELECT "DEPT_NAME" AS v FROM "HR"."EMP_V" '
        'WHERE NOT "DEPT_NAME" IS NULL FETCH FIRST 10000 ROWS ONLY) s GROUP BY v '
        "FETCH FIRST 21 ROWS ONLY",
    ]  # not NOTES (a CLOB cannot be grouped on Oracle), not the NUMBER columns
    employees = _table(sampled, "EMPLOYEES")
    assert employees.column("DEPT_NAME").samples == ("IT", "Sales")  # type: ignore[union-attr]


def test_schema_file_names_are_case_insensitive_on_oracle() -> None:
    catalog = Catalog.from_mapping({"employees": {"dept_name": "VARCHAR2(30)", "id": "NUMBER"}})
    policy = Policy.from_text(
        "default_role: r\nroles:\n  r:\n    tables:\n      EMPLOYEES: [DEPT_NAME]\n"
    )
    access = policy.access("r", catalog, "oracle")
    executor = OracleExecutor([("Sales", 1)])
    sampled = sample_values(executor, catalog, access)
    assert executor.statements == [
        'SELECT v, COUNT(*) AS n FROM (SELECT "DEPT_NAME" AS v FROM "EMPLOYEES" '
        'WHERE NOT "DEPT_NAME" IS NULL FETCH FIRST 10000 ROWS ONLY) s GROUP BY v '
        "FETCH FIRST 21 ROWS ONLY"
    ]
    assert _table(sampled, "employees").column_names == ("dept_name",)


def test_mixed_case_table_and_options_in_oracle_sql() -> None:
    table = Table("MixedCase", (), schema="Reports")
    sql = sampling_sql(table, "Status", "oracle", SampleOptions(scan_rows=500, max_distinct=7))
    assert sql == (
        'SELECT v, COUNT(*) AS n FROM (SELECT "Status" AS v FROM "Reports"."MixedCase" '
        'WHERE NOT "Status" IS NULL FETCH FIRST 500 ROWS ONLY) s GROUP BY v '
        "FETCH FIRST 8 ROWS ONLY"
    )
    _refuse_non_query(sql)


@pytest.mark.skipif(HAS_ORACLEDB, reason="python-oracledb is installed here")
def test_without_the_driver_errors_are_clean() -> None:
    for url in (URL, URL.replace("oracle+oracledb://", "oracle://")):
        with pytest.raises(CatalogError, match="not installed"):
            reflect_catalog(url)
    with pytest.raises(CatalogError, match="not installed"):
        CatalogSource(URL).catalog()
    catalog = Catalog.from_mapping({"T": {"C": "VARCHAR2(10)"}})
    with pytest.raises(ConfigError, match="not installed"):
        sample_values(URL, catalog, all_columns(catalog))


@pytest.mark.skipif(not HAS_ORACLEDB, reason="python-oracledb is not installed here")
def test_with_the_driver_an_unreachable_server_is_a_catalog_error() -> None:
    # Thin mode needs no Oracle client; port 1 refuses the connection at once.
    with pytest.raises(CatalogError, match="cannot reflect"):
        reflect_catalog(URL)
