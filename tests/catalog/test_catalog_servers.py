"""Reflection and sampling on the real PostgreSQL and MariaDB servers.

Each server gets its own ``sqlagent_catalog_test`` database, dropped afterwards; the tests skip
with the reason when a server does not answer (see tests/dbservers.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sqlagent.catalog import (
    Catalog,
    CatalogSource,
    ForeignKey,
    Table,
    reflect_catalog,
    sample_values,
)
from sqlagent.execution import ExecutionResult, ReadOnlyExecutor
from sqlagent.safety import Policy
from tests.dbservers import DB_SUFFIX, execute_sql, server_database

DB = "sqlagent_catalog_test"
TITLES = ("Analyst", "Engineer", "Manager", "Designer")

_COMMON = [
    """CREATE TABLE assignments (
        employee_id INTEGER NOT NULL, project VARCHAR(20) NOT NULL, hours INTEGER,
        PRIMARY KEY (employee_id, project),
        FOREIGN KEY (employee_id) REFERENCES employees (id))""",
    """CREATE TABLE timesheets (
        employee_id INTEGER, project VARCHAR(20), week INTEGER,
        FOREIGN KEY (employee_id, project) REFERENCES assignments (employee_id, project))""",
    "CREATE VIEW engineers AS SELECT id, title FROM employees WHERE department_id = 1",
]

POSTGRES = [
    "CREATE TABLE departments (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, region TEXT)",
    "COMMENT ON TABLE departments IS 'Company departments'",
    "COMMENT ON COLUMN departments.region IS 'Sales region'",
    """CREATE TABLE employees (
        id INTEGER PRIMARY KEY,
        department_id INTEGER NOT NULL REFERENCES departments (id),
        title VARCHAR(40) NOT NULL, risk VARCHAR(10) NOT NULL, secret VARCHAR(10) NOT NULL,
        email VARCHAR(80) NOT NULL, salary NUMERIC(10, 2))""",
    *_COMMON,
    'CREATE TABLE "Mixed Case" ("Id" INTEGER PRIMARY KEY, "Status" VARCHAR(10))',
    "COMMENT ON VIEW engineers IS 'Engineering staff'",
    "CREATE MATERIALIZED VIEW titles AS SELECT DISTINCT title FROM employees",
    "CREATE VIEW slow AS SELECT CAST('x' AS VARCHAR(5)) AS label FROM pg_sleep(5)",
    "CREATE SCHEMA sales",
    """CREATE TABLE sales.orders (id INTEGER PRIMARY KEY,
        department_id INTEGER REFERENCES public.departments (id), status VARCHAR(10))""",
    "CREATE TABLE sales.lines (order_id INTEGER REFERENCES sales.orders (id), n INTEGER)",
]

MARIADB = [
    """CREATE TABLE departments (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL,
        region TEXT COMMENT 'Sales region') COMMENT 'Company departments'""",
    """CREATE TABLE employees (
        id INTEGER PRIMARY KEY,
        department_id INTEGER NOT NULL,
        title VARCHAR(40) NOT NULL, risk VARCHAR(10) NOT NULL, secret VARCHAR(10) NOT NULL,
        email VARCHAR(80) NOT NULL, salary DECIMAL(10, 2),
        FOREIGN KEY (department_id) REFERENCES departments (id))""",
    *_COMMON,
    "CREATE TABLE `Mixed Case` (`Id` INTEGER PRIMARY KEY, `Status` VARCHAR(10))",
    "CREATE VIEW slow AS SELECT CAST('x' AS CHAR(5)) AS label FROM (SELECT SLEEP(5) AS z) AS t",
]

POLICY = """
default_role: support
roles:
  support:
    tables:
      departments: ["*"]
      employees: [id, department_id, title, email, salary]
      engineers: ["*"]
      "Mixed Case": ["*"]
      slow: ["*"]
    masked:
      employees: [risk]
"""


def _fill(url: str, kind: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in POSTGRES if kind == "postgres" else MARIADB:
                conn.execute(sa.text(statement))
            conn.execute(
                sa.text("INSERT INTO departments VALUES (:id, :name, :region)"),
                [
                    {"id": 1, "name": "Engineering", "region": "EU"},
                    {"id": 2, "name": "Sales", "region": "US"},
                    {"id": 3, "name": "Finance", "region": None},
                ],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO employees VALUES "
                    "(:id, :dept, :title, :risk, :secret, :email, :salary)"
                ),
                [
                    {
                        "id": i,
                        "dept": i % 3 + 1,
                        "title": TITLES[i % 4],
                        "risk": ("high", "low")[i % 2],
                        "secret": ("s1", "s2")[i % 2],
                        "email": f"person{i}@example.com",
                        "salary": 1000 + i,
                    }
                    for i in range(40)
                ],
            )
            mixed = '"Mixed Case"' if kind == "postgres" else "`Mixed Case`"
            conn.execute(sa.text(f"INSERT INTO {mixed} VALUES (1, 'open'), (2, 'closed')"))
            if kind == "postgres":
                conn.execute(sa.text("REFRESH MATERIALIZED VIEW titles"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with server_database("postgres", DB, fill=lambda url: _fill(url, "postgres")) as url:
        yield url


@pytest.fixture(scope="module")
def mysql_url() -> Iterator[str]:
    with server_database("mysql", DB, fill=lambda url: _fill(url, "mysql")) as url:
        yield url


def _table(catalog: Catalog, name: str) -> Table:
    table = catalog.table(name)
    assert table is not None, f"{name!r} not reflected; have {catalog.table_names}"
    return table


def _check_reflection(catalog: Catalog, kind: str) -> None:
    departments = _table(catalog, "departments")
    assert departments.comment == "Company departments"
    columns = [(c.name, c.type, c.nullable, c.primary_key, c.comment) for c in departments.columns]
    assert columns == [
        ("id", "INTEGER" if kind == "postgres" else "INTEGER(11)", False, True, None),
        ("name", "VARCHAR(50)", False, False, None),
        ("region", "TEXT", True, False, "Sales region"),
    ]
    employees = _table(catalog, "employees")
    assert employees.comment is None
    assert employees.column("salary").type == (  # type: ignore[union-attr]
        "NUMERIC(10, 2)" if kind == "postgres" else "DECIMAL(10, 2)"
    )
    assert employees.foreign_keys == (ForeignKey(("department_id",), "departments", ("id",)),)

    assignments = _table(catalog, "assignments")
    assert [c.name for c in assignments.columns if c.primary_key] == ["employee_id", "project"]
    assert assignments.foreign_keys == (ForeignKey(("employee_id",), "employees", ("id",)),)
    timesheets = _table(catalog, "timesheets")
    assert not any(c.primary_key for c in timesheets.columns)
    assert timesheets.foreign_keys == (
        ForeignKey(("employee_id", "project"), "assignments", ("employee_id", "project")),
    )

    mixed = _table(catalog, "Mixed Case")
    assert mixed.column_names == ("Id", "Status")
    assert mixed.column("Id").primary_key  # type: ignore[union-attr]

    engineers = _table(catalog, "engineers")
    assert engineers.is_view
    assert engineers.column_names == ("id", "title")
    assert not engineers.foreign_keys
    assert not any(c.primary_key for c in engineers.columns)
    assert not departments.is_view


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_reflection(pg_url: str) -> None:
    catalog = reflect_catalog(pg_url)
    assert catalog.table_names == (
        "Mixed Case", "assignments", "departments", "employees", "engineers", "slow",
        "timesheets", "titles",
    )  # fmt: skip
    _check_reflection(catalog, "postgres")
    assert _table(catalog, "engineers").comment == "Engineering staff"
    titles = _table(catalog, "titles")  # a materialized view
    assert titles.is_view
    assert titles.column_names == ("title",)
    assert all(t.schema is None for t in catalog)
    driverless = pg_url.replace("postgresql+psycopg://", "postgresql://")
    assert reflect_catalog(driverless) == catalog  # psycopg, as the executor uses


@pytest.mark.postgres
def test_postgres_reflection_of_another_schema(pg_url: str) -> None:
    catalog = reflect_catalog(pg_url, schema="sales")
    assert catalog.table_names == ("lines", "orders")
    assert {t.schema for t in catalog} == {"sales"}
    assert _table(catalog, "lines").foreign_keys == (ForeignKey(("order_id",), "orders", ("id",)),)
    assert _table(catalog, "orders").foreign_keys == ()  # public.departments is not in it
    public = reflect_catalog(pg_url, schema="public")
    assert _table(public, "employees").foreign_keys == (
        ForeignKey(("department_id",), "departments", ("id",)),
    )


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_reflection(mysql_url: str) -> None:
    catalog = reflect_catalog(mysql_url)
    assert catalog.table_names == (
        "Mixed Case", "assignments", "departments", "employees", "engineers", "slow",
        "timesheets",
    )  # fmt: skip
    _check_reflection(catalog, "mysql")
    assert _table(catalog, "engineers").comment is None  # MariaDB views have no comments
    driverless = mysql_url.replace("mysql+pymysql://", "mysql://")
    assert reflect_catalog(driverless) == catalog  # PyMySQL, as the executor uses
    named = reflect_catalog(mysql_url, schema=DB + DB_SUFFIX)
    assert {t.schema for t in named} == {DB + DB_SUFFIX}
    assert _table(named, "timesheets").foreign_keys == _table(catalog, "timesheets").foreign_keys


class RecordingExecutor:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.inner = ReadOnlyExecutor(url, timeout_s=timeout_s, max_rows=50)
        self.statements: list[str] = []

    @property
    def dialect(self) -> str:
        return self.inner.dialect

    def run(self, sql: str) -> ExecutionResult:
        self.statements.append(sql)
        return self.inner.run(sql)

    def close(self) -> None:
        self.inner.close()


def _check_sampling(url: str, dialect: str, caplog: pytest.LogCaptureFixture) -> None:
    catalog = reflect_catalog(url)
    access = Policy.from_text(POLICY).access("support", catalog, dialect)
    executor = RecordingExecutor(url, timeout_s=0.5)
    try:
        with caplog.at_level(logging.WARNING, logger="sqlagent.catalog"):
            sampled = sample_values(executor, catalog, access)
    finally:
        executor.close()
    assert "'slow'.'label': QueryTimeoutError" in caplog.text
    samples = {(t.name, c.name): c.samples for t in sampled for c in t.columns if c.samples}
    assert samples == {
        ("departments", "name"): ("Engineering", "Finance", "Sales"),
        ("departments", "region"): ("EU", "US"),
        ("employees", "title"): tuple(sorted(TITLES)),
        ("engineers", "title"): tuple(sorted(TITLES)),
        ("Mixed Case", "Status"): ("closed", "open"),
    }  # not email (40 distinct values), risk (masked), secret (denied), slow (time limit)
    assert sampled.table_names == ("Mixed Case", "departments", "employees", "engineers", "slow")
    queried = " ".join(executor.statements)
    assert "risk" not in queried
    assert "secret" not in queried
    assert any("slow" in s for s in executor.statements)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_sampling(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    _check_sampling(pg_url, "postgres", caplog)


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_sampling(mysql_url: str, caplog: pytest.LogCaptureFixture) -> None:
    _check_sampling(mysql_url, "mysql", caplog)


def _check_source_refresh(url: str, kind: str) -> None:
    with CatalogSource(url) as source:
        before = source.catalog()
        execute_sql(
            url,
            "CREATE TABLE added (id INTEGER PRIMARY KEY, kind TEXT)",
            "INSERT INTO added VALUES (1, 'a'), (2, 'b')",
        )
        try:
            assert source.catalog() is before
            after = source.refresh()
            assert "added" in after
            assert "added" not in before
            grants = Policy.from_text(
                "default_role: r\nroles:\n  r:\n    tables:\n      added: ['*']\n"
            ).access("r", after, kind)
            view = source.with_samples(grants)
            assert _table(view, "added").column("kind").samples == ("a", "b")  # type: ignore[union-attr]
        finally:
            execute_sql(url, "DROP TABLE added")


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_catalog_source(pg_url: str) -> None:
    _check_source_refresh(pg_url, "postgres")


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_catalog_source(mysql_url: str) -> None:
    _check_source_refresh(mysql_url, "mysql")
