"""The data moat's mechanics: table resolution, ungrounded sources, and the role's derived tables.

These tests pin the rules the analyzer follows (the noninterference suite checks the property they
add up to on real engines):

* a schema-qualified name never means a CTE, and a CTE may not shadow a table the role reads
  only in part (engines disagree on which references such a name means);
* sources outside the catalog have known columns where they can be known (DUAL, table functions,
  system relations granted column by column), and a bare name next to a source of unknown
  columns must not reach a hidden column;
* in policy mode each table the role reads only in part is read through a derived table of
  exactly its granted columns (masked ones as the mask), so the database cannot see the rest.
"""

from __future__ import annotations

import pytest

from sqlagent import Catalog, Guard, Policy
from tests.conftest import FIXTURES
from tests.safety.sql_strategies import DIALECTS

CATALOG = Catalog.from_json(FIXTURES / "catalog.json")
POLICY = Policy.from_mapping(
    {
        "default_role": "viewer",
        "roles": {
            "viewer": {
                "tables": {
                    "employees": ["id", "first_name", "last_name", "department_id"],
                    "departments": ["*"],
                    "information_schema.tables": ["table_name"],
                    "sqlite_master": ["name", "type"],
                    "pg_catalog.pg_class": ["relname"],
                }
            },
            "analyst": {"inherits": ["viewer"], "masked": {"employees": ["salary"]}},
            "admin": {"tables": {"*": ["*"], "information_schema.tables": ["*"]}},
        },
    }
)


def check(sql: str, dialect: str = "sqlite", role: str | None = "viewer", policy: bool = True):  # type: ignore[no-untyped-def]
    guard = Guard(dialect=dialect, catalog=CATALOG, policy=POLICY if policy else None)
    return guard.check(sql, role=role)


# -- CTEs ------------------------------------------------------------------------------------------
SHADOWING = [
    "WITH employees AS (SELECT id, name AS national_id FROM departments) "
    "SELECT e.national_id FROM {schema}employees e",
    "WITH employees AS (SELECT id FROM departments) SELECT national_id FROM {schema}employees",
    "WITH RECURSIVE employees AS (SELECT 1 AS id UNION ALL SELECT id + 1 FROM employees "
    "WHERE id < 3) SELECT id FROM employees",
    "WITH a AS (SELECT id FROM employees), employees AS (SELECT 1 AS id) SELECT id FROM a",
    "SELECT (WITH employees AS (SELECT 1 AS id) SELECT max(id) FROM employees) AS x",
    "WITH d AS (SELECT 1 AS x) SELECT x FROM (WITH employees AS (SELECT x FROM d) "
    "SELECT x FROM employees) s",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("template", SHADOWING)
def test_a_cte_may_not_shadow_a_table_the_role_reads_in_part(dialect: str, template: str) -> None:
    schema = {"sqlite": "main.", "postgres": "public.", "mysql": "", "oracle": ""}[dialect]
    verdict = check(template.format(schema=schema), dialect)
    assert not verdict.allowed
    assert verdict.codes == ("table_denied",)
    assert "Rename the CTE" in verdict.violations[0].message


def test_a_cte_may_shadow_a_table_the_role_reads_whole() -> None:
    verdict = check(
        "WITH departments AS (SELECT id, name FROM departments) SELECT name FROM departments"
    )
    assert verdict.allowed, verdict.summary()


def test_a_qualified_name_is_the_table_not_the_cte() -> None:
    # Single-user mode: grounding follows the engine, so the real table's columns are what count.
    sql = "WITH employees AS (SELECT 1 AS x) SELECT national_id FROM main.employees"
    verdict = check(sql, policy=False)
    assert verdict.allowed, verdict.summary()
    assert verdict.columns == ("employees.national_id",)
    sql = "WITH employees AS (SELECT 1 AS x) SELECT x FROM main.employees"
    assert check(sql, policy=False).codes == ("unknown_column",)
    sql = "WITH employees AS (SELECT 1 AS x) SELECT x FROM employees"
    assert check(sql, policy=False).allowed


# -- sources outside the catalog -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("sqlite", "SELECT e.first_name, national_id FROM employees e, sqlite_master"),
        ("postgres", "SELECT e.first_name, national_id FROM employees e, pg_catalog.pg_class"),
        (
            "postgres",
            "SELECT e.first_name, national_id FROM employees e, information_schema.tables",
        ),
        ("mysql", "SELECT e.first_name, national_id FROM employees e, information_schema.tables"),
        ("mysql", "SELECT e.first_name, national_id FROM employees e, dual"),
        ("oracle", "SELECT e.first_name, national_id FROM employees e, dual"),
        ("postgres", "SELECT e.first_name, national_id FROM employees e, generate_series(1, 2) g"),
        (
            "postgres",
            "SELECT first_name FROM employees e WHERE national_id IN "
            "(SELECT g FROM generate_series(1, 2) g)",
        ),
        (
            "sqlite",
            "SELECT first_name FROM employees WHERE EXISTS "
            "(SELECT 1 FROM sqlite_master m WHERE m.name = national_id)",
        ),
    ],
)
def test_a_bare_name_next_to_an_ungrounded_source_reaches_no_hidden_column(
    dialect: str, sql: str
) -> None:
    verdict = check(sql, dialect)
    assert not verdict.allowed


@pytest.mark.parametrize(
    ("dialect", "sql", "allowed"),
    [
        ("sqlite", "SELECT name, type FROM sqlite_master", True),
        ("sqlite", "SELECT sql FROM sqlite_master", False),
        ("sqlite", "SELECT m.sql FROM sqlite_master m", False),
        ("sqlite", "SELECT * FROM sqlite_master", False),
        ("postgres", "SELECT relname FROM pg_catalog.pg_class", True),
        ("postgres", "SELECT relacl FROM pg_catalog.pg_class", False),
        ("postgres", "SELECT table_name FROM information_schema.tables", True),
        ("postgres", "SELECT t.table_type FROM information_schema.tables t", False),
        ("mysql", "SELECT TABLE_NAME FROM information_schema.tables", True),
        ("mysql", "SELECT table_rows FROM information_schema.tables", False),
    ],
)
def test_column_grants_on_system_relations_are_enforced(
    dialect: str, sql: str, allowed: bool
) -> None:
    verdict = check(sql, dialect)
    assert verdict.allowed is allowed, verdict.summary()
    if allowed:
        assert verdict.sql is not None
        assert "(SELECT " in verdict.sql  # read through a derived table of the granted columns
    else:
        assert set(verdict.codes) <= {"column_denied", "unknown_column"}, verdict


def test_a_system_relation_granted_whole_is_read_as_is() -> None:
    verdict = check(
        "SELECT table_name, table_type FROM information_schema.tables", "postgres", "admin"
    )
    assert verdict.allowed, verdict.summary()
    assert verdict.sql == (
        "SELECT table_name AS table_name, table_type AS table_type FROM information_schema.tables"
    )


@pytest.mark.parametrize("mode", ["single", "policy"])
def test_oracle_bare_names_are_never_function_calls(mode: str) -> None:
    role = "admin" if mode == "policy" else None
    policy = mode == "policy"
    assert check("SELECT some_function FROM dual", "oracle", role, policy).codes == (
        "unknown_column",
    )
    assert check("SELECT dummy FROM dual", "oracle", role, policy).allowed
    if mode == "single":
        assert check("SELECT table_name FROM all_tables", "oracle", None, False).codes == (
            "unknown_column",
        )
        assert check("SELECT t.table_name FROM all_tables t", "oracle", None, False).allowed


def test_table_functions_have_known_columns() -> None:
    for sql in (
        "SELECT g FROM generate_series(1, 3) g",
        "SELECT n FROM generate_series(1, 3) AS g(n)",
        "SELECT e.value FROM jsonb_array_elements(CAST('[1]' AS JSONB)) e",
    ):
        guard = Guard(dialect="postgres", catalog=CATALOG)
        verdict = guard.check(sql)
        # The function itself is judged by the allow-list; grounding must not be what refuses.
        assert not {"unknown_column", "unknown_table"} & set(verdict.codes), (sql, verdict)
    verdict = Guard(dialect="postgres", catalog=CATALOG).check(
        "SELECT g.nope FROM generate_series(1, 3) AS g(n)"
    )
    assert "unknown_column" in verdict.codes


# -- the role's derived tables ---------------------------------------------------------------------
def test_a_partly_readable_table_is_read_through_its_granted_columns() -> None:
    verdict = check("SELECT first_name, salary FROM employees", role="analyst")
    assert verdict.allowed, verdict.summary()
    # Only the granted columns the statement reads from the table, the masked one as the mask.
    assert verdict.sql == (
        "SELECT employees.first_name AS first_name, '***' AS salary FROM (SELECT "
        "employees.first_name AS first_name, '***' AS salary FROM employees AS employees) AS "
        "employees"
    )
    verdict = check("SELECT count(*) FROM employees", role="analyst")
    assert verdict.sql == (
        "SELECT COUNT(*) FROM (SELECT employees.id AS id FROM employees AS employees) AS employees"
    )
    # USING is rewritten as ON, so the joined column is one the statement reads.
    verdict = check("SELECT first_name FROM employees JOIN departments USING (id)", role="analyst")
    assert verdict.sql == (
        "SELECT employees.first_name AS first_name FROM (SELECT employees.id AS id, "
        "employees.first_name AS first_name FROM employees AS employees) AS employees JOIN "
        "departments ON employees.id = departments.id"
    )
    # A table the role reads whole and in clear is left as it is.
    verdict = check("SELECT name FROM departments", role="analyst")
    assert verdict.sql == "SELECT departments.name AS name FROM departments"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM employees",
        "SELECT e.first_name, d.name FROM employees e JOIN departments d ON d.id = e.department_id",
        "SELECT first_name FROM employees WHERE id IN (SELECT id FROM employees WHERE id > 1)",
        "WITH x AS (SELECT id, salary FROM employees) SELECT id, salary FROM x",
        "SELECT d.name, count(*) FROM (employees e JOIN departments d ON d.id = e.department_id) "
        "GROUP BY d.name",
    ],
)
def test_the_rewrite_is_a_fixed_point(dialect: str, sql: str) -> None:
    first = check(sql, dialect, "analyst")
    assert first.allowed, first.summary()
    assert first.sql is not None
    second = check(first.sql, dialect, "analyst")
    assert second.allowed, second.summary()
    assert second.sql == first.sql


def test_column_aliases_on_a_table_are_refused() -> None:
    """``employees AS e(a, b)`` names columns by position, which a role's view would shift."""
    verdict = check("SELECT e.d FROM employees AS e(a, b, c, d)", "postgres")
    assert verdict.codes == ("unknown_column",)
    assert "Column aliases" in verdict.violations[0].message
    assert check("SELECT n FROM generate_series(1, 2) AS g(n)", "postgres", policy=False).codes != (
        "unknown_column",
    )


# -- what runs is what was judged ------------------------------------------------------------------
def test_the_token_check_vouches_only_for_text_that_keeps_every_quoted_part() -> None:
    import sqlglot

    from sqlagent.safety._render import Quoted, faithful

    tree = sqlglot.parse_one("SELECT 'a'' OR ''b' AS x, \"Odd name\" FROM t", read="postgres")
    quoted = Quoted.of(tree)
    assert faithful(tree.sql("postgres"), "postgres", quoted)
    # A generator that failed to escape, to quote or to drop a comment is caught:
    assert not faithful("SELECT 'a' OR 'b' AS x, \"Odd name\" FROM t", "postgres", quoted)
    assert not faithful("SELECT 'a'' OR ''b' AS x, Odd name FROM t", "postgres", quoted)
    assert not faithful("SELECT 'a'' OR ''b' AS x, \"Odd name\" FROM t -- x", "postgres", quoted)
    assert not faithful(
        "SELECT 'a'' OR ''b', \"Odd name\" FROM t; DELETE FROM t", "postgres", quoted
    )
    assert not faithful("SELECT 'a'' OR ''b' AS x, \"Odd name\" INTO u FROM t", "postgres", quoted)
